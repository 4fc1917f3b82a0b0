"""The embedded default benchmark: a generated, factor-controlled, domain-incremental stream.

It models OpenLORIS-Object's four factors with three levels each:

* illumination (strong / normal / weak): a global gain, colour cast, directional light fall-off and,
  in weak light, sensor noise - strong light washes colours out, weak light darkens and tints blue;
* occlusion (0 % / 25 % / 50 %, any ``"N%"`` accepted): a flat occluder covering that fraction of the
  object's bounding box;
* object pixel size (large / medium / small): the object spans about 85 % / 50 % / 22 % of the frame;
* clutter (simple / normal / complex): a flat background, a smooth textured one with two distractor
  blobs, or a busy one with high-frequency texture and several distractor *objects of other classes*.

Every class is an object with its own silhouette, two colours and a stripe texture.  All tasks share the
classes; tasks differ by domain only (data-incremental, as in the challenge).  The default stream
mirrors the round-1 batch composition table (``ROUND1_STREAM``): factors the table names are fixed at
that level, the others stay at a neutral level (normal light, no occlusion, medium size, normal clutter).
Generation is deterministic from ``data_seed`` and vectorised, a few hundred milliseconds per task.

What the factors, their levels and the streams are, and how strongly each level acts, is data in core/streams.py
(``Knobs``, ``data.generator``: a small typed set of strengths, each defined per factor level and never per task,
since a knob per task could fit any accuracy matrix and would then predict nothing; their defaults are the
constants the generator always had, so the default stream is unchanged bit for bit). This module renders it. A
task's ``segment`` other than 0 gives it other viewpoints and backgrounds, as the dataset's segments of a level
differ.

Scenes (``Knobs.scenes_per_class`` S > 0): the dataset's images are frames of short videos (17 s at 30 fps per object
and level), and a batch's train and test images come from the same recordings. With S scenes per class, a task's
scenes (the object's size, place and pose, the background, the occluder, the light) are drawn once from the task's
own generator, shared by its train and test splits, and every image is a frame of one of its class's scenes: the
scene's draw moved by :data:`FRAME_JITTER` and with its own sensor noise. S = 0, the default, draws every image on
its own, bit for bit the stream before scenes existed.

Compositions (core/streams.py): a conjunction task renders every image with every level it names
(:func:`generate_task`, unchanged). A mixture task (:func:`generate_mixture`) is a round-1 batch as the dataset page
describes it, "drawn from 2-3 of the 12 factor sub-directories": each image comes from one (factor, level)
subdirectory the task names, in exact shares per class (:func:`share_counts`), and is rendered with that factor at its
level and the other three at the base level, ``BASE_LEVELS``: level 1, which the page says a factor's folders hold
the others at (normal light, 0 % occlusion, medium size and *simple* clutter in the July-2019 numbering of round 1's
data; NEUTRAL has normal clutter and stays the conjunctions' fill). A subdirectory's recordings belong to it, not to
a task, as a subdirectory's frames land in every batch that names it: with scenes, its scenes are seeded from the
instance, the subdirectory and the segment (:func:`recording_seed`), so two tasks naming it show frames of the same
scenes, while each split's frames (which scene, the camera's drift, the sensor noise) are drawn from the split's
own generator, so no frame is in two splits. Without scenes (S = 0) every image is its own draw, a recording of
one frame, and there is nothing to share.
"""
from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from dynnn_lib.core.streams import (DEFAULT_KNOBS, LEVELS, NEUTRAL, ROUND1_STREAM, Knobs,  # noqa: F401 (the factor
                                    describe, full_factors, occlusion_fraction,             # vocabulary lives there)
                                    subdirectory_factors)

GENERATOR_VERSION = 1

_PROTO = 24  # prototype resolution
# How far a frame strays from its scene's draw (uniform in +-): the object's size (relative), its centre (in half
# frames) and its in-plane pose (radians): a robot's camera drifting a little during one short recording.
FRAME_JITTER = {"scale": 0.05, "centre": 0.08, "angle": 0.15}
# (the scene of each image, how many scenes, the task's scene generator): see :func:`_rand`
Scenes = tuple[torch.Tensor, int, torch.Generator]


def _rand(n: int, g: torch.Generator, scenes: Scenes | None, *tail: int) -> torch.Tensor:
    """(n, *tail) uniform draws: one per image from the split's generator `g`, or with `scenes`, one per scene from the
    task's scene generator (the same for the task's train and test splits), each image taking its scene's."""
    if scenes is None:
        return torch.rand(n, *tail, generator=g)
    pick, count, gs = scenes
    return torch.rand(count, *tail, generator=gs)[pick]


def _randint(high: int, n: int, g: torch.Generator, scenes: Scenes | None) -> torch.Tensor:
    """Integers in [0, high), one per image or one per scene (as :func:`_rand`)."""
    if scenes is None:
        return torch.randint(high, (n,), generator=g)
    pick, count, gs = scenes
    return torch.randint(high, (count,), generator=gs)[pick]


def _farthest(candidates: torch.Tensor, chosen: list[torch.Tensor]) -> torch.Tensor:
    """The (2, 3) colour pair among `candidates` (k, 2, 3) farthest from every pair already `chosen` (distance of the
    six values, either order of the two colours): Mitchell's best-candidate draw."""
    if not chosen:
        return candidates[0]
    prev = torch.stack(chosen).flatten(1)
    flat, swapped = candidates.flatten(1), candidates.flip(1).flatten(1)
    nearest = torch.minimum(torch.cdist(flat, prev), torch.cdist(swapped, prev)).min(1).values
    return candidates[int(nearest.argmax())]


def class_prototypes(n_classes: int, data_seed: int, similarity: float = 0.0, candidates: int = 1) -> torch.Tensor:
    """(n_classes, 4, P, P) RGBA objects: silhouette (alpha), two colours and a stripe texture; `similarity`
    pulls every class's colours toward the mean over classes (the shapes stay their own). With `candidates` k > 1
    each class's colour pair is the best of k draws (:func:`_farthest`), so no two classes of an instance share
    their colours by chance (``Knobs.colour_candidates``); k = 1 is the independent draw, bit for bit."""
    g = torch.Generator().manual_seed(10_000 + data_seed)
    coords = torch.linspace(-1, 1, _PROTO)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    protos, pairs = [], []
    for _ in range(n_classes):
        mask = torch.zeros(_PROTO, _PROTO)
        for _ in range(3):  # union of three rotated ellipses
            cx, cy = (torch.rand(2, generator=g) - 0.5) * 0.8
            rx, ry = 0.25 + torch.rand(2, generator=g) * 0.5
            th = torch.rand(1, generator=g).item() * math.pi
            x = (xx - cx) * math.cos(th) + (yy - cy) * math.sin(th)
            y = -(xx - cx) * math.sin(th) + (yy - cy) * math.cos(th)
            mask = torch.maximum(mask, torch.sigmoid(8 * (1 - (x / rx) ** 2 - (y / ry) ** 2)))
        c1, c2 = pair = _farthest(torch.rand(candidates, 2, 3, generator=g) * 0.8 + 0.1, pairs)
        pairs.append(pair)
        th = torch.rand(1, generator=g).item() * math.pi
        freq = 1.0 + torch.rand(1, generator=g).item() * 2.5
        stripes = torch.sigmoid(6 * torch.sin(math.pi * freq * (xx * math.cos(th) + yy * math.sin(th))))
        rgb = c1[:, None, None] * stripes + c2[:, None, None] * (1 - stripes)
        protos.append(torch.cat([rgb, mask[None]], 0))
    out = torch.stack(protos)
    if similarity > 0:
        out[:, :3] = (1 - similarity) * out[:, :3] + similarity * out[:, :3].mean(0, keepdim=True)
    return out


def _place(protos: torch.Tensor, scale: torch.Tensor, center: torch.Tensor, angle: torch.Tensor, size: int) -> torch.Tensor:
    """Render RGBA prototypes onto a size x size canvas with given scale (fraction of frame), centre, angle."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    inv = 1.0 / scale
    theta = torch.zeros(len(protos), 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * inv, sin * inv
    theta[:, 1, 0], theta[:, 1, 1] = -sin * inv, cos * inv
    theta[:, :, 2] = -(theta[:, :, :2] @ center[:, :, None])[:, :, 0]
    grid = F.affine_grid(theta, [len(protos), 4, size, size], align_corners=False)
    return F.grid_sample(protos, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _smooth_noise(n: int, cells: int, size: int, g: torch.Generator, channels: int = 3) -> torch.Tensor:
    low = torch.rand(n, channels, cells, cells, generator=g)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _background(clutter: str, n: int, size: int, protos: torch.Tensor, g: torch.Generator,
                knobs: Knobs = DEFAULT_KNOBS, segment: int = 0) -> torch.Tensor:
    base = 0.25 + 0.5 * torch.rand(n, 3, 1, 1, generator=g)
    tint = base * (0.8 + 0.2 * torch.rand(n, 3, 1, 1, generator=g))
    if segment:  # another place: the background palette turns (a segment of the dataset is another recording)
        tint = tint * torch.tensor([1.25, 1.0, 0.75]).roll(segment % 3).view(1, 3, 1, 1)
    ramp = torch.linspace(-0.1, 0.1, size).view(1, 1, 1, size)
    bg = (tint + ramp).expand(n, 3, size, size).clone()
    if clutter == "simple":
        return bg.clamp(0, 1)
    if clutter == "normal":
        bg = 0.6 * bg + 0.4 * _smooth_noise(n, 4, size, g)
        n_distractors, distractor_protos = 2, _blobs(len(protos), g)
    else:  # complex: busy texture and parts of other objects
        bg = 0.4 * bg + 0.35 * _smooth_noise(n, 8, size, g) + knobs.complex_noise * torch.rand(n, 3, size, size, generator=g)
        n_distractors = knobs.complex_distractors
        distractor_protos = protos if knobs.complex_other_classes else _blobs(len(protos), g)
    for _ in range(n_distractors):
        idx = torch.randint(len(distractor_protos), (n,), generator=g)
        layer = _place(distractor_protos[idx], 0.12 + 0.13 * torch.rand(n, generator=g),
                       (torch.rand(n, 2, generator=g) - 0.5) * 1.8, torch.rand(n, generator=g) * 2 * math.pi, size)
        a = layer[:, 3:4]
        bg = bg * (1 - a) + layer[:, :3] * a
    return bg.clamp(0, 1)


def _blobs(n: int, g: torch.Generator) -> torch.Tensor:
    """Plain coloured discs used as distractors in 'normal' clutter."""
    coords = torch.linspace(-1, 1, _PROTO)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    disc = torch.sigmoid(8 * (1 - xx**2 - yy**2))
    colours = torch.rand(max(n, 4), 3, 1, 1, generator=g)
    return torch.cat([colours.expand(-1, 3, _PROTO, _PROTO), disc.expand(len(colours), 1, _PROTO, _PROTO)], 1)


def _illuminate(img: torch.Tensor, level: str, g: torch.Generator, knobs: Knobs = DEFAULT_KNOBS,
                scenes: Scenes | None = None) -> torch.Tensor:
    """The light's direction and exposure are the image's draw (or its scene's); sensor noise is every frame's own."""
    n, _, size, _ = img.shape
    angle = _rand(n, g, scenes) * 2 * math.pi
    coords = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    ramp = xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
    if level == "normal":
        gain = 0.9 + 0.2 * _rand(n, g, scenes, 1, 1, 1)
        return (img * gain * (1 + 0.1 * ramp[:, None])).clamp(0, 1)
    if level == "strong":  # over-exposed, warm, washed out
        gain = knobs.strong_gain + 0.2 * _rand(n, g, scenes, 1, 1, 1)
        cast = torch.tensor(knobs.strong_cast).view(1, 3, 1, 1)
        return (img * gain * cast * (1 + 0.25 * ramp[:, None]) + 0.08).clamp(0, 1)
    # weak: dark, blue cast, strong fall-off and sensor noise
    gain = knobs.weak_gain + 0.12 * _rand(n, g, scenes, 1, 1, 1)
    cast = torch.tensor(knobs.weak_cast).view(1, 3, 1, 1)
    out = img * gain * cast * (1 + 0.4 * ramp[:, None]) + knobs.weak_noise * torch.randn(img.shape, generator=g)
    return out.clamp(0, 1)


def render(factors: Mapping[str, str], labels: torch.Tensor, protos: torch.Tensor, size: int,
           g: torch.Generator, knobs: Knobs = DEFAULT_KNOBS, segment: int = 0,
           scenes: Scenes | None = None) -> torch.Tensor:
    """Render one image per label under the given factor levels; returns uint8 (N, 3, size, size). A segment
    other than 0 turns the objects to other viewpoints and the backgrounds to another palette. With `scenes`, each
    image is a frame of its scene (see the module's docstring)."""
    f = full_factors(factors)
    n = len(labels)
    scale = knobs.pixel_scale(f["pixel"]) * (0.9 + 0.2 * _rand(n, g, scenes))
    room = (1 - scale * 0.7).clamp(min=0)
    center = (_rand(n, g, scenes, 2) * 2 - 1) * room[:, None]
    angle = (_rand(n, g, scenes) - 0.5) * knobs.pose_spread
    if scenes is not None:  # a frame of its scene: the camera drifted a little
        jitter = lambda *shape: 2 * torch.rand(n, *shape, generator=g) - 1  # noqa: E731
        scale = scale * (1 + FRAME_JITTER["scale"] * jitter())
        center = center + FRAME_JITTER["centre"] * jitter(2)
        angle = angle + FRAME_JITTER["angle"] * jitter()
    if segment:  # other viewpoints: the objects seen turned by a third of a half-turn per segment
        angle = angle + segment * (math.pi / 6)
    obj = _place(protos[labels], scale, center, angle, size)
    if scenes is None:
        img = _background(f["clutter"], n, size, protos, g, knobs, segment)
    else:  # the scene's background, static during its recording
        img = _background(f["clutter"], scenes[1], size, protos, scenes[2], knobs, segment)[scenes[0]]
    alpha = obj[:, 3:4]
    img = img * (1 - alpha) + obj[:, :3] * alpha
    occ = min(occlusion_fraction(f["occlusion"]) * knobs.occlusion_scale, 0.95)
    if occ > 0:
        img = _occlude(img, occ, scale, center, g, scenes)
    img = _illuminate(img, f["illumination"], g, knobs, scenes)
    return (img * 255).round().to(torch.uint8)


def _occlude(img: torch.Tensor, fraction: float, scale: torch.Tensor, center: torch.Tensor,
             g: torch.Generator, scenes: Scenes | None = None) -> torch.Tensor:
    """Cover `fraction` of each object's bounding box with a flat occluder entering from one side."""
    n, _, size, _ = img.shape
    coords = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    half = scale[:, None, None]
    cx, cy = center[:, 0, None, None], center[:, 1, None, None]
    inside = ((xx - cx).abs() <= half) & ((yy - cy).abs() <= half)
    side = _randint(4, n, g, scenes)[:, None, None]
    depth = 2 * half * fraction
    cut = torch.where(side == 0, xx <= cx - half + depth,
          torch.where(side == 1, xx >= cx + half - depth,
          torch.where(side == 2, yy <= cy - half + depth, yy >= cy + half - depth)))
    mask = (inside & cut)[:, None].float()
    colour = 0.2 + 0.6 * _rand(n, g, scenes, 1, 1, 1)
    return img * (1 - mask) + colour * mask


def generate_task(factors: Mapping[str, str], n_classes: int, per_class: int, size: int, data_seed: int,
                  salt: int, knobs: Knobs = DEFAULT_KNOBS, segment: int = 0,
                  task: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced images for one task split; `salt` separates tasks and splits deterministically. With scenes
    (``knobs.scenes_per_class`` > 0) the splits of one `task` (default ``salt // 2``: salts 2t and 2t + 1 are task t's
    train and test splits) share its scenes; each image is a frame of a scene of its class, picked at random."""
    protos = class_prototypes(n_classes, data_seed, knobs.class_similarity, knobs.colour_candidates)
    g = torch.Generator().manual_seed(data_seed * 1_000_003 + salt)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    labels = labels[torch.randperm(len(labels), generator=g)]
    scenes = None
    if knobs.scenes_per_class:
        seed = data_seed * 1_000_003 + 500_009 + (salt // 2 if task is None else task)
        scenes = _scenes(labels, n_classes, knobs.scenes_per_class, g, seed)
    return render(factors, labels, protos, size, g, knobs, segment, scenes), labels


def _scenes(labels: torch.Tensor, n_classes: int, per: int, g: torch.Generator, seed: int) -> Scenes:
    """Each image a frame of one of its class's `per` scenes, picked from the split's `g`; the scenes are drawn from
    a generator seeded with `seed`, so every split given that seed shows the same recordings."""
    pick = labels * per + torch.randint(per, (len(labels),), generator=g)
    return pick, n_classes * per, torch.Generator().manual_seed(seed)


def _apportion(total: int, weights: Sequence[Fraction]) -> list[int]:
    """Largest remainder: `total` split in proportion to `weights`, each part the floor or the ceiling of its exact
    share, ties to the earlier weight."""
    quotas = [total * w / sum(weights) for w in weights]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda d: (counts[d] - quotas[d], d))
    for d in by_remainder[: total - sum(counts)]:
        counts[d] += 1
    return counts


def share_counts(weights: Sequence[float], n_classes: int, per_class: int) -> list[list[int]]:
    """How many of each class's `per_class` images come from each subdirectory: every count the floor or the
    ceiling of its exact share of the class, and the split's totals the largest-remainder split of all its images.
    Exact counts rather than independent draws, so a mixture's shares hold in every split of every instance. The
    images left over after the floors are dealt to the classes in turn (McNaughton's wrap-around): a subdirectory
    has at most one extra per class, since its extras number at most `n_classes`."""
    fractions = [Fraction(w) for w in weights]
    floors = [math.floor(per_class * w / sum(fractions)) for w in fractions]
    totals = _apportion(n_classes * per_class, fractions)
    extras = [d for d, total in enumerate(totals) for _ in range(total - n_classes * floors[d])]
    counts = [list(floors) for _ in range(n_classes)]
    for i, d in enumerate(extras):
        counts[i % n_classes][d] += 1
    return counts


def recording_seed(data_seed: int, factor: str, level: str, segment: int) -> int:
    """The seed of one subdirectory's recordings (scenes): from the instance, the subdirectory and its segment, never
    from a task, so every task naming the subdirectory shows the same recordings."""
    digest = hashlib.sha256(f"recordings/{data_seed}/{factor}/{level}/{segment}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generate_mixture(subdirectories: Sequence[tuple[str, str]], weights: Sequence[float], n_classes: int,
                     per_class: int, size: int, data_seed: int, salt: int, knobs: Knobs = DEFAULT_KNOBS,
                     segment: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Balanced images for one split of a mixture task: each from one of its (factor, level) `subdirectories`, by
    `weights` (:func:`share_counts`), rendered with that factor at its level and the others at the base level.
    Returns the images, the labels and each image's subdirectory (an index into `subdirectories`). The frames are
    drawn from the split's generator (`salt`: 2t, 2t + 1 for task t's train and test splits, as
    :func:`generate_task`); with scenes, the scenes are the subdirectory's (:func:`recording_seed`)."""
    protos = class_prototypes(n_classes, data_seed, knobs.class_similarity, knobs.colour_candidates)
    g = torch.Generator().manual_seed(data_seed * 1_000_003 + salt)
    counts = share_counts(weights, n_classes, per_class)
    labels, subdirectory = torch.tensor([(c, d) for c, row in enumerate(counts)
                                         for d, k in enumerate(row) for _ in range(k)]).T
    order = torch.randperm(len(labels), generator=g)
    labels, subdirectory = labels[order], subdirectory[order]
    images = torch.empty(len(labels), 3, size, size, dtype=torch.uint8)
    for d, (factor, level) in enumerate(subdirectories):
        where = (subdirectory == d).nonzero().flatten()
        if len(where):  # tiny splits can leave a subdirectory without an image of any class
            scenes = None
            if knobs.scenes_per_class:
                seed = recording_seed(data_seed, factor, level, segment)
                scenes = _scenes(labels[where], n_classes, knobs.scenes_per_class, g, seed)
            images[where] = render(subdirectory_factors(factor, level), labels[where], protos, size, g, knobs,
                                   segment, scenes)
    return images, labels, subdirectory

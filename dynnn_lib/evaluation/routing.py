"""Which head answers an image when the task is unknown: domain statistics and the test-time head rules.

After a task is trained, the frozen trunk's output on its training images is summarised per image by the
per-channel **mean and standard deviation** (style statistics: the factors here - light, clutter, size,
occlusion - are low-level), and per task by a Gaussian over those vectors (:class:`DomainStats`: mean and
covariance, no images kept).  The **router** sends a test image to the task whose Gaussian gives it the
highest likelihood (covariance shrunk towards its mean variance, ``ROUTER_SHRINKAGE``) and so to the head
responsible for that task: the head added for it, or the head it was distilled into.

Head rules, each a :class:`HeadRule` in the registry (``core.registry.HEAD_RULES``; a plugin's is one file with
one :func:`head_rule` function, imported with ``--import``: docs/writing-a-method.md), all evaluation-only (they
never change training, so a stored run is re-scored under any of them; see :mod:`dynnn_lib.evaluation.outputs`).
The built-ins (``HEAD_RULES``) live here because training also decides with them (``measure_before``, DynamicNN's
``known_rule``) and so they enter every run key; a plugin's rule only scores:

* ``router``    - per image, the head of the most likely domain (no task label);
* ``oracle``    - the task label is known (the round-1 challenge delivered one test file per batch): a seen
  task uses the head that learnt it, an unseen (future) task falls back to the router;
* ``mean_prob`` - the heads' softmax probabilities are averaged;
* ``max_conf``  - per image, the most confident head decides;
* ``last``      - only the newest head.

Measured on the embedded stream (expand@1, seed 0): the router sends 99 % of test images to the right head;
per-channel statistics of the trunk separated the domains better than raw-pixel statistics (58 % task
identification) or pooled features, and less shrinkage (0.01) beat more (0.1, 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from dynnn_lib.core import registry

ROUTER_SHRINKAGE = 0.01


def domain_features(trunk_out: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) trunk activations -> (N, 2C) per-channel mean and standard deviation (float64)."""
    f = trunk_out.double().flatten(2)
    spread = f.std(2) if f.shape[2] > 1 else torch.zeros_like(f[:, :, 0])  # a 1x1 map (tiny images) has no spread
    return torch.cat([f.mean(2), spread], 1)


@dataclass
class DomainStats:
    """A Gaussian over the domain features of one task's training images."""

    mean: torch.Tensor  # (D,) float64
    cov: torch.Tensor   # (D, D) float64
    n: int

    @classmethod
    def fit(cls, features: torch.Tensor) -> "DomainStats":
        f = features.double()
        cov = torch.cov(f.T) if len(f) > 1 else torch.zeros(f.shape[1], f.shape[1], dtype=torch.float64)
        return cls(mean=f.mean(0), cov=cov.reshape(f.shape[1], f.shape[1]), n=len(f))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "cov": self.cov, "n": self.n}

    @classmethod
    def from_dict(cls, d: dict) -> "DomainStats":
        return cls(mean=d["mean"], cov=d["cov"], n=int(d["n"]))


class Router:
    """Gaussian log-likelihood of each known task's domain for each image."""

    def __init__(self, domains: Sequence[DomainStats], shrinkage: float = ROUTER_SHRINKAGE):
        if not domains:
            raise ValueError("a router needs the statistics of at least one task")
        self.means = torch.stack([d.mean for d in domains])
        precisions, logdets = [], []
        for d in domains:
            dim = len(d.mean)
            scale = d.cov.diagonal().mean().clamp_min(1e-12)
            cov = (1 - shrinkage) * d.cov + shrinkage * scale * torch.eye(dim, dtype=torch.float64)
            precisions.append(torch.linalg.inv(cov))
            logdets.append(torch.logdet(cov))
        self.precisions = torch.stack(precisions)
        self.logdets = torch.stack(logdets)

    def log_likelihood(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, n_tasks) log-likelihood up to a shared constant."""
        diff = features.double()[:, None, :] - self.means[None]               # (N, T, D)
        maha = torch.einsum("ntd,tde,nte->nt", diff, self.precisions, diff)
        return -0.5 * (maha + self.logdets[None])

    def task_of(self, features: torch.Tensor) -> torch.Tensor:
        """(N,) most likely known task of each image."""
        return self.log_likelihood(features).argmax(1)


@dataclass
class HeadView:
    """What a head rule reads for one row of the matrix and one task's test images."""

    logits: torch.Tensor               # (n_heads, N, C) every head's logits on the images
    routed: torch.Tensor | None        # (N,) the head the router sends each image to (rules with ``reads_router``)
    responsible: int | None = None     # the head that learnt these images' task, for rules with ``needs_label``
    #                                    when the task was trained already (None: an unseen task)


@dataclass(frozen=True)
class HeadRule:
    """A test-time head rule: a function of the stored outputs, (HeadView) -> (N,) predicted class. Its
    docstring is its definition (``HeadRule.definition``)."""

    name: str
    choose: Callable[[HeadView], torch.Tensor]
    reads_router: bool = False         # needs the router's head per image (computed once per row, then shared)
    needs_label: bool = False          # needs the task label (like the oracle): never used for training decisions

    @property
    def definition(self) -> str:
        return " ".join((self.choose.__doc__ or self.name).split())


def head_rule(reads_router: bool = False, needs_label: bool = False) -> Callable[[Callable], HeadRule]:
    """Register a function (HeadView) -> (N,) predicted class as a head rule named after the function; the
    built-ins below come through this door, as a plugin's rule does."""
    def register(fn: Callable[[HeadView], torch.Tensor]) -> HeadRule:
        return registry.HEAD_RULES.add(HeadRule(fn.__name__, fn, reads_router, needs_label))
    return register


def _by_head(logits: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
    return logits[heads, torch.arange(logits.shape[1])].argmax(-1)


@head_rule(reads_router=True)
def router(v: HeadView) -> torch.Tensor:
    """Per image, the head of the most likely domain (no task label)."""
    return _by_head(v.logits, v.routed)


@head_rule(reads_router=True, needs_label=True)
def oracle(v: HeadView) -> torch.Tensor:
    """The task label is known: a seen task uses the head that learnt it, an unseen task falls back to the
    router."""
    heads = v.routed if v.responsible is None else torch.full_like(v.routed, v.responsible)
    return _by_head(v.logits, heads)


@head_rule()
def mean_prob(v: HeadView) -> torch.Tensor:
    """The heads' softmax probabilities are averaged."""
    return v.logits.float().softmax(-1).mean(0).argmax(-1)


@head_rule()
def max_conf(v: HeadView) -> torch.Tensor:
    """Per image, the most confident head decides."""
    probs = v.logits.float().softmax(-1)
    best = probs.max(-1).values.argmax(0)
    return probs[best, torch.arange(probs.shape[1])].argmax(-1)


@head_rule()
def last(v: HeadView) -> torch.Tensor:
    """Only the newest head."""
    return v.logits[-1].argmax(-1)


# the built-in rules (training's decisions may use the label-free ones: they are in every run key)
HEAD_RULES = tuple(registry.HEAD_RULES.table)
LABEL_FREE_RULES = tuple(r for r in HEAD_RULES if not registry.HEAD_RULES.table[r].needs_label)


def get_rule(name: str) -> HeadRule:
    """The registered head rule `name`, built in or a plugin's (one-line ConfigError naming the others)."""
    return registry.HEAD_RULES.get(name)


def apply_rule(rule: HeadRule, logits: torch.Tensor, routed: torch.Tensor | None = None,
               responsible: int | None = None) -> torch.Tensor:
    """(n_heads, N, C) logits -> (N,) predicted class under `rule`; one head and no router: nothing to choose."""
    if rule.reads_router and routed is None:
        raise ValueError(f"head rule {rule.name!r} needs the routed head of each image")
    if len(logits) == 1 and not rule.reads_router:
        return logits[-1].argmax(-1)
    return rule.choose(HeadView(logits, routed, responsible if rule.needs_label else None))


def combine(rule: str, logits: torch.Tensor, routed_head: torch.Tensor | None = None) -> torch.Tensor:
    """(n_heads, N, C) logits -> (N,) predicted class under the head rule named `rule`.

    `routed_head` (N,) is the head each image goes to, for ``router``/``oracle`` (see :func:`routed_heads`; the
    oracle replaces it by the responsible head for seen tasks, evaluation.Outputs.score).
    """
    return apply_rule(get_rule(rule), logits, routed_head)


def routed_heads(task_heads: Sequence[int], domains: Sequence[DomainStats], features: torch.Tensor,
                 shrinkage: float = ROUTER_SHRINKAGE) -> torch.Tensor:
    """(N,) the head the router sends each image to: the head responsible for the image's most likely known task
    (`task_heads[k]` is responsible for task k, `domains[k]` holds its statistics). One head: nothing to route."""
    heads = torch.as_tensor(list(task_heads))
    if len(set(task_heads)) == 1:
        return heads[0].repeat(len(features))
    return heads[Router(domains[:len(heads)], shrinkage).task_of(features)]

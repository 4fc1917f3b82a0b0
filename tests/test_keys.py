"""A result is its configuration's own: every key is derived from what trains (the code of every module under the
layers training imports, a method's own classes and all its parameters), and a run in a shared runs folder equals,
bit for bit, the same configuration trained alone in a fresh one, whatever else trained there before."""
import dataclasses
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny
from dynnn_lib import run
from dynnn_lib.core import fingerprint
from dynnn_lib.core.registry import _REGISTRY
from dynnn_lib.methods.base import register
from dynnn_lib.methods.dynamicnn.frozen_trunk import FrozenTrunkMethod, Params as DynParams
from dynnn_lib.methods.dynamicnn.kd import KD
from dynnn_lib.methods.dynamicnn.combined import Combined
from dynnn_lib.methods.finetune import Finetune
from test_prefixes import _same_run


# ------------------------------------------------------------------ user methods, as notebook 07 teaches them
class AlwaysExpand(FrozenTrunkMethod):
    """Overrides `choose` only: a new head on every task."""

    name = "t-always-expand"
    expands = True

    def choose(self, ctx, before):
        return "expand"


class SmoothFinetune(Finetune):
    """Changes the loss: label smoothing."""

    name = "t-smooth-finetune"

    def train_task(self, ctx):
        y = ctx.y
        epochs = ctx.fit(ctx.network(), lambda out, idx: F.cross_entropy(out, y[idx], label_smoothing=0.3),
                         ctx.task.train_x)
        return ctx.log("finetune", epochs)


class LateExpand(KD):
    """Adds a parameter that changes training: distil until task `expand_from`, then expand."""

    name = "t-late-expand"
    expands = True

    @dataclasses.dataclass(frozen=True)
    class Params(DynParams):
        expand_from: int = 2

    def choose(self, ctx, before):
        return "expand" if ctx.t >= self.params.expand_from else "kd"


class RenamedCombined(Combined):
    """Overrides nothing but its name: still its own class, keyed by its own code."""

    name = "t-renamed-combined"


class ShrinkOnEnd(Finetune):
    """Consolidates by changing weights: end_task halves the first head's weights after every task (task 0 too)."""

    name = "t-shrink-on-end"

    def end_task(self, ctx):
        with torch.no_grad():
            for p in ctx.model.heads[0].parameters():
                p.mul_(0.5)


# a notebook cell: a class whose loss reads a module global (ALPHA), defined in a namespace of its own
NOTEBOOK = {"__name__": "__main__", "F": F, "Finetune": Finetune, "ALPHA": 0.0}
exec("""
class GlobalSmooth(Finetune):
    name = "t-global-smooth"

    def train_task(self, ctx):
        y = ctx.y
        epochs = ctx.fit(ctx.network(), lambda out, idx: F.cross_entropy(out, y[idx], label_smoothing=ALPHA),
                         ctx.task.train_x)
        return ctx.log("finetune", epochs)
""", NOTEBOOK)
GlobalSmooth = NOTEBOOK["GlobalSmooth"]

USER = (AlwaysExpand, SmoothFinetune, LateExpand, RenamedCombined, ShrinkOnEnd, GlobalSmooth)


@pytest.fixture(scope="module", autouse=True)
def _user_methods():
    for cls in USER:
        register(cls)
    yield
    for cls in USER:
        _REGISTRY.pop(cls.name, None)


def _actions(res):
    return [log["action"] for log in res.logs]


# ------------------------------------------------------------------ the reported case
@pytest.mark.parametrize("first", ["kd", "t-always-expand"])
def test_a_subclass_overriding_choose_never_resumes_from_kd_prefixes(first, tmp_path):
    """A `choose`-only subclass trained where kd's prefixes exist (and kd where the subclass's exist) gets its own
    result: expand on every task, heads 0, 1, 2; the same as trained alone."""
    mine, kd = tiny(method="t-always-expand", kd_head="routed"), tiny(method="kd", kd_head="routed")
    order = [kd, mine] if first == "kd" else [mine, kd]
    shared = {c.method: run(c, tmp_path / "shared") for c in order}
    assert _actions(shared["t-always-expand"]) == ["full", "expand", "expand"]
    assert list(shared["t-always-expand"].task_heads) == [0, 1, 2]
    assert _actions(shared["kd"]) == ["full", "kd", "kd"] and shared["kd"].expanded_at == []
    for c in order:
        assert shared[c.method].timings.get("reused_tasks", 0) <= 1  # task 0 at most: it is every method's
        _same_run(shared[c.method], run(c, tmp_path / f"alone-{c.method}"))


# ------------------------------------------------------------------ keys derived from what trains
BUILTIN_CONFIGS = [dict(method="kd"), dict(method="kd", kd_head="routed"), dict(method="combined", expand_at=[1]),
                   dict(method="combined", expand_at=[2]), dict(method="expand", expand_at=[1, 2]),
                   dict(method="combined", expand_threshold=0.5), dict(method="finetune")]


@pytest.mark.parametrize("cls", USER, ids=lambda c: c.__name__)
def test_any_subclass_keys_every_task_with_its_own_code_and_parameters(cls):
    cfg = tiny(method=cls.name, **({"expand_at": [2]} if cls is RenamedCombined else {}))
    keys = cfg.prefix_keys(3)
    for t in (1, 2):
        recipe = cls.task_recipe(cfg, t)
        assert recipe == {"method": cls.name, "code": fingerprint.class_fingerprint(cls),
                          "params": dict(cfg.method_params)}
    builtin = [tiny(**kw).prefix_keys(3) for kw in BUILTIN_CONFIGS]
    assert all(keys[0] == b[0] for b in builtin)  # task 0 is every method's
    assert all(k not in b for k in keys[1:] for b in builtin)


def test_a_subclass_parameter_and_a_subclass_edit_enter_its_keys():
    base = tiny(method="t-late-expand")
    assert base.method_params["expand_from"] == 2
    other = tiny(method="t-late-expand", method_params={"expand_from": 1})
    assert other.prefix_keys(3)[1] != base.prefix_keys(3)[1] and other.key() != base.key()

    def made(scale):  # one factory, two classes: the same file, other closures
        class Scaled(SmoothFinetune):
            name = "t-scaled"

            def train_task(self, ctx):
                y = ctx.y
                return ctx.log("finetune", ctx.fit(ctx.network(), lambda out, idx: scale * F.cross_entropy(out, y[idx]),
                                                   ctx.task.train_x))
        return Scaled

    fp = fingerprint.class_fingerprint
    assert fp(made(1.0)) == fp(made(1.0)) != fp(made(2.0))
    assert fp(RenamedCombined) != fp(Combined) and fp(LateExpand) != fp(KD)


def test_only_the_exact_builtin_variants_share_tasks_across_variants():
    kd, late = tiny(method="kd").prefix_keys(3), tiny(method="combined", expand_at=[2]).prefix_keys(3)
    assert kd[:2] == late[:2] and kd[2] != late[2]  # the built-ins: kd on task 1 in both
    renamed = tiny(method="t-renamed-combined", expand_at=[2]).prefix_keys(3)
    assert renamed[0] == kd[0] and renamed[1] not in (kd[1], late[1])


def test_the_modules_in_every_key_are_derived_from_what_training_imports():
    """The shared modules are engine/train.py and what it imports, followed module by module, less the registered
    extensions (each in the keys of its runs): scoring, reports and verify are not among them."""
    shared, own = set(fingerprint.shared_modules()), fingerprint.extension_modules()
    assert {"methods/lwf.py", "methods/dynamicnn/frozen_trunk.py", "methods/dynamicnn/__init__.py",
            "data/sources/synthetic.py"} <= own
    assert not own & shared and {"methods/base.py", "methods/training.py", "engine/train.py", "data/synthetic.py",
                                 "evaluation/routing.py"} <= shared
    assert not {"engine/verify.py", "engine/executors.py", "evaluation/stats.py", "evaluation/metrics.py",
                "engine/runner.py", "engine/results.py"} & shared
    assert "data/sources/synthetic.py" in fingerprint.shared_modules(fingerprint.DATA_ENTRY)
    probe = fingerprint.PACKAGE / "data" / "_key_probe_module.py"  # a module training imports: no list to edit
    train = fingerprint.PACKAGE / "engine" / "train.py"
    source, key = train.read_bytes(), tiny(method="kd").key()
    try:
        probe.write_text("SCALE = 1.0\n")
        assert tiny(method="kd").key() == key  # nothing trains with it yet
        train.write_bytes(source + b"\nfrom dynnn_lib.data import _key_probe_module  # noqa: E402,F401\n")
        assert "data/_key_probe_module.py" in fingerprint.shared_modules()
        assert tiny(method="kd").key() != key
    finally:
        train.write_bytes(source)
        probe.unlink(missing_ok=True)
    assert tiny(method="kd").key() == key


# ------------------------------------------------------------------ the property: shared equals alone
_ALONE: dict[str, object] = {}
_ALONE_DIR = Path(tempfile.mkdtemp(prefix="dynnn-alone-"))

CHOICES = [
    *BUILTIN_CONFIGS,
    dict(method="kd", kd_head="worst", kd_temperature=4.0),
    dict(method="combined", expand_threshold=0.95),
    dict(method="lwf"),
    dict(method="t-always-expand"), dict(method="t-smooth-finetune"),
    dict(method="t-late-expand"), dict(method="t-late-expand", method_params={"expand_from": 1}),
    dict(method="t-renamed-combined", expand_at=[2]),
    dict(method="t-shrink-on-end"), dict(method="lwf", optimizer_state="keep"), dict(method="kd", optimizer_state="keep"),
    dict(method="finetune", optimizer_state="keep"), dict(method="finetune", threads=2),
    dict(method="t-global-smooth"),
]
ALPHAS = (0.0, 0.3)  # the notebook global, set before a run as a cell would


def _alone(cfg):
    """The configuration trained alone in a fresh folder (once per key in this module)."""
    if cfg.key() not in _ALONE:
        _ALONE[cfg.key()] = run(cfg, _ALONE_DIR / cfg.key())
    return _ALONE[cfg.key()]


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(range(len(CHOICES))), st.sampled_from([0, 1]), st.sampled_from(ALPHAS)),
                min_size=2, max_size=4, unique=True))
def test_every_result_in_a_shared_folder_equals_its_configuration_trained_alone(order):
    """Built-in methods with drawn parameters and schedules, the automatic rule, Adam's state kept across tasks, two
    thread counts, user subclasses (choose only, another loss, a new parameter, an end_task that changes weights)
    and a notebook class whose loss reads a global edited between runs, trained in a drawn order into one runs
    folder in one process: each result is bit-identical to the same configuration trained alone."""
    with tempfile.TemporaryDirectory(prefix="dynnn-shared-") as shared:
        for i, seed, alpha in order:
            NOTEBOOK["ALPHA"] = alpha  # the cell edited and run again: the class's key reads it
            cfg = tiny(seed=seed, **CHOICES[i])
            _same_run(run(cfg, shared), _alone(cfg))
    NOTEBOOK["ALPHA"] = 0.0


# ------------------------------------------------------------------ dynnn verify
def test_verify_finds_cached_runs_identical_and_a_wrong_one_different(tmp_path, monkeypatch, capsys):
    from dynnn_lib.cli import main
    from dynnn_lib.engine.verify import IDENTICAL, MISMATCH, choose, verify

    runs = tmp_path / "runs"
    good = [tiny(method="kd"), tiny(method="combined", expand_at=[2])]
    for cfg in good:
        run(cfg, runs)
    checks = verify(choose(runs, [], 2), jobs=1, progress=False)
    assert [c.status for c in checks] == [IDENTICAL, IDENTICAL]
    assert main(["verify", "--sample", "5", "--runs-dir", str(runs), "--jobs", "1", "--no-progress"]) == 0
    assert "2 identical" in capsys.readouterr().out

    # a key that missed what trained: the cached result is another method's (the class of bug keys must prevent)
    wrong = tiny(method="kd", seed=1)
    with monkeypatch.context() as m:
        m.setattr(KD, "choose", lambda self, ctx, before: "expand")
        patched = wrong.key()  # the patched class is its own code: its own key
        run(wrong, runs)
    assert patched != wrong.key()
    (runs / patched).rename(runs / wrong.key())  # a key that missed the patch: its result filed as kd's
    [check] = verify(choose(runs, [wrong.key()[:8]], None), jobs=1, progress=False)
    assert check.status == MISMATCH and "actions" in check.detail
    assert main(["verify", wrong.key(), "--runs-dir", str(runs), "--jobs", "1", "--no-progress"]) == 1
    assert main(["verify", "--runs-dir", str(runs)]) == 2  # nothing named, nothing drawn: one line
    assert "--sample N" in capsys.readouterr().err

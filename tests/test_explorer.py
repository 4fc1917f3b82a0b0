"""The explorer's callbacks, driven without a browser."""
import json

import numpy as np
import pytest

from conftest import TINY_DATA
from dynnn_lib.workbench.explorer import Explorer

BASE = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": TINY_DATA}


@pytest.mark.parametrize("live", [True, False])
def test_selecting_expansion_tasks_trains_then_updates_the_heatmap(tmp_path, live):
    ex = Explorer(base=BASE, n_tasks=3, runs_dir=tmp_path, live=live)
    assert "not trained yet" in ex.status.value and not ex.train_button.disabled
    assert np.isnan(np.array(ex.fig.data[0].z, dtype=float)).all()
    # the empty heatmap is sent to the browser as JSON: gaps must be null, never NaN (JupyterLab rejected it)
    json.dumps(ex.fig.to_plotly_json()["data"], allow_nan=False)

    ex.expand.value = (1,)
    assert ex.values()["method"] == "combined" and ex.values()["method_params"]["expand_at"] == [1]
    ex.train_button.click()
    assert ex.status.value == "expanded: 1"
    z_expand = np.array(ex.fig.data[0].z, dtype=float)
    assert z_expand.shape == (3, 3) and not np.isnan(z_expand).any()
    assert "expanded: 1 | square" in ex.fig.layout.title.text
    assert "square" in ex.summary.value and ex.train_button.disabled

    ex.expand.value = ()                     # no expansion = distillation only: not cached yet
    assert ex.values()["method"] == "kd" and "press Train" in ex.status.value
    ex.train()
    assert ex.fig.layout.title.text.startswith("expanded: none | square")
    ex.expand.value = (1,)                   # back to a cached selection: updates from the cache at once
    assert ex.status.value == "expanded: 1"
    np.testing.assert_array_equal(np.array(ex.fig.data[0].z, dtype=float), z_expand)
    assert ex.fig.layout.title.text.startswith("expanded: 1 | square")


def test_controls_map_to_config(tmp_path):
    ex = Explorer(base=BASE, n_tasks=3, runs_dir=tmp_path, live=False)
    ex.kd_head.value = "worst"
    ex.lr_trick.value = True
    ex.seeds.value = 2
    cfgs = ex.configs()
    assert [c.seed for c in cfgs] == [0, 1]
    assert cfgs[0].params().kd_head == "worst" and cfgs[0].lr_trick and cfgs[0].data.n_tasks == 3


def test_switching_the_head_rule_rescores_without_training(tmp_path, monkeypatch):
    ex = Explorer(base=BASE, n_tasks=3, runs_dir=tmp_path, live=False)
    ex.expand.value = (1,)
    assert ex.train()
    z_router = np.array(ex.fig.data[0].z, dtype=float)
    import dynnn_lib.methods as methods

    def no_training(*a, **k):
        raise AssertionError("a head rule change must not train")
    monkeypatch.setattr(methods, "train_task", no_training)
    monkeypatch.setattr("dynnn_lib.engine.train.train_task", no_training)
    for rule in ("oracle", "mean_prob", "last"):
        ex.head_rule.value = rule
        assert ex.status.value == "expanded: 1" and f"head rule {rule}" in ex.fig.layout.title.text
    assert "routing acc." in ex.summary.value
    assert np.array(ex.fig.data[0].z, dtype=float).shape == z_router.shape


def test_train_button_recovers_when_training_fails(tmp_path, monkeypatch):
    ex = Explorer(base=BASE, n_tasks=3, runs_dir=tmp_path, live=False)

    def broken(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr("dynnn_lib.workbench.explorer.run", broken)
    ex.expand.value = (1,)
    assert ex.train() is False
    assert "training failed: disk full" in ex.status.value and not ex.train_button.disabled


def test_threshold_and_ce_controls_map_to_the_automatic_rule(tmp_path):
    ex = Explorer(base=BASE, n_tasks=3, runs_dir=tmp_path, live=False)
    ex.threshold.value = 0.5
    ex.ce_on.value = "unknown"
    cfg = ex.configs()[0]
    p = cfg.params()
    assert p.expand_threshold == 0.5 and p.expand_at == () and p.ce_on == "unknown"
    assert ex.label() == "expanded: auto < 0.50"


def test_the_method_menu_offers_baselines_and_a_method_registered_in_the_session(tmp_path):
    import dataclasses

    import torch.nn.functional as F

    from dynnn_lib import Method, register
    from dynnn_lib.core.registry import _REGISTRY

    @register
    class Quiet(Method):
        """Finetune at half the loss."""

        name = "quiet_test"

        @dataclasses.dataclass(frozen=True)
        class Params:
            scale: float = 0.5

        def train_task(self, ctx):
            y = ctx.y
            fn = lambda out, idx: self.params.scale * F.cross_entropy(out, y[idx])  # noqa: E731
            return ctx.log("quiet", ctx.fit(ctx.network(), fn, ctx.task.train_x))

    try:
        ex = Explorer(base=BASE, n_tasks=3, runs_dir=tmp_path, live=False)
        assert {"DynamicNN", "lwf", "ewc", "replay", "joint", "finetune", "quiet_test"} <= set(ex.method.options)
        ex.expand.value = (1,)
        ex.method.value = "quiet_test"          # the expansion controls do not apply to it
        assert ex.expand.disabled and ex.values()["method"] == "quiet_test" and "method_params" not in ex.values()
        assert ex.train() and ex.status.value == "method: quiet_test"
        ex.method.value = "DynamicNN"
        assert not ex.expand.disabled and ex.values()["method"] == "combined"
    finally:
        _REGISTRY.pop("quiet_test", None)


def test_a_toggle_trains_only_from_the_first_task_it_touches_and_draws_rows_as_they_come(tmp_path, monkeypatch):
    ex = Explorer(base={**BASE, "data": {**TINY_DATA, "n_tasks": 4}}, n_tasks=4, runs_dir=tmp_path, live=False)
    ex.expand.value = (1,)
    assert ex.train() and ex.activity.value.startswith("last training") and "trained 0–3" in ex.activity.value
    import dynnn_lib.engine.train as runner

    trained, drawn = [], []
    real_train_task = runner.train_task

    def spy(model, task, *a, **k):
        trained.append(task.index)
        drawn.append(np.array(ex.fig.data[0].z, dtype=float))  # what the heatmap showed when task t started
        return real_train_task(model, task, *a, **k)
    monkeypatch.setattr(runner, "train_task", spy)
    ex.expand.value = (1, 3)                  # expand@[1] trained tasks 0..2 alike: only task 3 trains
    assert ex.train() and trained == [3]
    assert "seed 0: reused tasks 0–2, trained 3–3" in ex.activity.value
    assert not np.isnan(drawn[0][:3]).any() and np.isnan(drawn[0][3]).all()  # reused rows drawn before training
    trained.clear()
    ex.kd_head.value = "worst"                # distillation acts from task 2 on (task 1 expands)
    assert ex.train() and trained == [2, 3]
    assert np.isnan(drawn[-1][3]).all() and not np.isnan(drawn[-1][2]).any()  # row 2 drawn when task 2 ended


def test_a_subclass_of_dynamicnn_gets_the_controls_its_params_have(tmp_path):
    """A DynamicNN subclass written elsewhere (notebook 07's kind) is on the method menu with DynamicNN's controls,
    derived from its Params and its class (a subclass that never expands gets no expansion controls); the choices
    are DynamicNN's own definitions."""
    import dataclasses

    from dynnn_lib.core.registry import _REGISTRY
    from dynnn_lib.methods import register
    from dynnn_lib.methods.dynamicnn import FrozenTrunkMethod, Params as DynamicNNParams
    from dynnn_lib.methods.dynamicnn.frozen_trunk import CE_ON, KD_HEADS

    @register
    class Mine(FrozenTrunkMethod):
        """Expands where DynamicNN's schedule says, with a parameter of its own."""

        name = "mine_dynamicnn_test"
        expands = True

        @dataclasses.dataclass(frozen=True)
        class Params(DynamicNNParams):
            margin: float = 0.1

    @register
    class NeverExpands(FrozenTrunkMethod):
        """Distils only."""

        name = "never_expands_test"

    try:
        ex = Explorer(base=BASE, n_tasks=3, runs_dir=tmp_path, live=False)
        assert ex.kd_head.options == KD_HEADS and ex.ce_on.options == CE_ON
        assert {"mine_dynamicnn_test", "never_expands_test"} <= set(ex.method.options)
        ex.method.value = "mine_dynamicnn_test"
        assert not ex.expand.disabled and not ex.kd_head.disabled and not ex.threshold.disabled
        ex.expand.value, ex.kd_head.value = (2,), "worst"
        values = ex.values()
        assert values["method"] == "mine_dynamicnn_test"
        assert values["method_params"] == {"kd_head": "worst", "ce_on": "all", "expand_at": [2]}
        assert ex.configs()[0].params().margin == 0.1 and ex.configs()[0].params().expand_at == (2,)
        assert ex.train() and ex.status.value == "method: mine_dynamicnn_test, expanded: [2]"
        ex.method.value = "never_expands_test"
        assert ex.expand.disabled and ex.threshold.disabled and not ex.kd_head.disabled
        assert ex.values()["method_params"] == {"kd_head": "worst", "ce_on": "all"}
        ex.method.value = "lwf"
        assert ex.expand.disabled and ex.kd_head.disabled and "method_params" not in ex.values()
    finally:
        _REGISTRY.pop("mine_dynamicnn_test", None)
        _REGISTRY.pop("never_expands_test", None)

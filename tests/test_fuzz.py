"""Any configuration either runs or fails with a DynnnError - never an unhandled exception."""
from hypothesis import HealthCheck, given, settings, strategies as st

from dynnn_lib import DynnnError, from_dict, run

odd_floats = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e40])
small_ints = st.one_of(st.integers(-2, 3), st.just(0), st.floats(-1, 3), st.text(max_size=2), st.none(), st.booleans())
configs = st.fixed_dictionaries(
    {},
    optional={
        "method": st.sampled_from(["finetune", "expand", "kd", "combined", "bogus", ""]),
        "expand_at": st.lists(st.one_of(st.integers(-2, 5), st.text(max_size=1)), max_size=3),
        "expand_threshold": st.one_of(st.none(), st.floats(-1, 2), odd_floats),
        "kd_head": st.sampled_from(["best", "worst", "x"]),
        "ce_on": st.sampled_from(["all", "unknown", "none"]),
        "head_rule": st.sampled_from(["router", "oracle", "max_conf", "mean_prob", "last", "y"]),
        "head_init": st.sampled_from(["copy", "scratch", "z"]),
        "base_lr": st.one_of(st.floats(-1, 1), odd_floats, st.text(max_size=1)),
        "inc_lr": st.one_of(st.floats(-1, 1), odd_floats),
        "kd_temperature": st.one_of(st.floats(-1, 10), odd_floats),
        "kd_weight": small_ints,
        "base_milestones": st.lists(small_ints, max_size=2),
        "batch_size": small_ints,
        "seed": small_ints,
        "unknown_field": st.integers(),
        "data": st.fixed_dictionaries({}, optional={"n_tasks": small_ints, "n_classes": small_ints,
                                                    "image_size": st.sampled_from([8, 16, 20, "a"]),
                                                    "bogus": st.integers()}),
    },
)

BASE = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False}
BASE_DATA = {"n_tasks": 2, "n_classes": 2, "train_per_class": 2, "test_per_class": 1}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=configs)
def test_any_config_runs_or_fails_with_our_error(values, tmp_path_factory):
    values = {**BASE, **values}
    data = values.get("data", {})
    values["data"] = {**BASE_DATA, **(data if isinstance(data, dict) else {})}
    runs = tmp_path_factory.mktemp("fuzz")
    try:
        cfg = from_dict(values)
        cfg = cfg.replace(data={"n_tasks": min(cfg.data.n_tasks or 2, 3), "n_classes": min(cfg.data.n_classes, 3)})
        res = run(cfg, runs)
    except DynnnError:
        return
    assert res.matrix.shape[0] == res.matrix.shape[1]

"""Bad configuration values fail at the edge with one line naming the fix."""
import pytest

from conftest import tiny
from dynnn_lib import ConfigError, RunConfig, from_dict, run
from dynnn_lib.experiments.paper import VARIANTS


@pytest.mark.parametrize("values, message", [
    ({"method": "magic"}, "method='magic' is not registered; choose one of: combined, ewc, expand, finetune,"),
    ({"method": "combined", "expand_at": [-1]}, "negative task index"),
    ({"method": "combined", "expand_at": []}, "needs expansion tasks"),
    ({"method": "combined", "expand_at": [1, 1]}, "lists a task twice"),
    ({"method": "combined", "expand_at": [0]}, "task 0 always trains the full network"),
    ({"method": "combined", "expand_at": ["one"]}, "must be task indices"),
    ({"method": "kd", "expand_at": [1]}, "never expands"),
    ({"method": "combined", "expand_at": [1], "expand_threshold": 0.5}, "not both"),
    ({"method": "kd", "expand_threshold": 0.5}, "only applies to methods"),
    ({"method": "combined", "expand_threshold": 1.5}, "fraction in (0, 1]"),
    ({"base_epochs": 0}, "base_epochs=0 must be a positive integer"),
    ({"inc_epochs": -2}, "inc_epochs=-2 must be a positive integer"),
    ({"base_lr": 0}, "base_lr=0 must be a positive number"),
    ({"inc_lr": -0.1}, "inc_lr=-0.1 must be a positive number"),
    ({"base_lr": 1e40}, "base_lr=1e+40 is not a usable learning rate; use a value in (0, 10]"),
    ({"lr_gamma": 3.0}, "lr_gamma=3.0 would raise the learning rate"),
    ({"base_epochs": 2.5}, "must be a positive integer"),
    ({"base_milestones": [9, 3]}, "strictly increasing"),
    ({"kd_head": "middle"}, "kd_head='middle' is not valid"),
    ({"head_rule": "vote"}, "choose one of: last, max_conf, mean_prob, oracle, router (a plugin: import"),
    ({"seed": -1}, "seed=-1"),
    ({"typo_param": 3}, "unknown parameter typo_param; valid names:"),
    ({"data": {"n_task": 3}}, "unknown parameter data.n_task"),
    ({"data": {"n_tasks": 1}}, "incremental learning needs a stream of at least 2 tasks"),
    ({"data": {"source": "imagenet"}}, "data.source='imagenet' is not registered"),
    ({"data": {"image_size": 4}}, "too small"),
])
def test_bad_config_one_line_error(values, message):
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_expansion_task_out_of_range_is_checked_against_the_stream(runs_dir):
    cfg = tiny(method="combined", expand_at=[7])  # tiny stream has 3 tasks
    with pytest.raises(ConfigError, match=r"out of range: the stream has 3 tasks \(0..2\)"):
        run(cfg, runs_dir)


def test_defaults_are_valid_and_every_seed_variant_builds():
    RunConfig()
    for overrides in VARIANTS.values():
        from_dict(overrides)


def test_config_key_is_stable_and_sensitive():
    a, b = tiny(), from_dict(tiny().to_dict())
    assert a.key() == b.key()
    assert a.key() != tiny(seed=1).key()
    assert a.key() != a.replace(data={"n_classes": 5}).key()


def test_lists_from_yaml_become_tuples():
    cfg = from_dict({"method": "combined", "expand_at": [1, 3]})
    assert cfg.params().expand_at == (1, 3) and cfg.method_params["expand_at"] == (1, 3)


def test_all_tasks_spelled_out_is_the_same_run_as_the_default():
    """The explorer says n_tasks=9, the reproduction leaves it unset: one experiment, one cache entry."""
    assert from_dict({"data": {"n_tasks": 9}}).key() == RunConfig().key()
    assert from_dict({"data": {"n_tasks": 4}}).key() != RunConfig().key()


def test_dynamicnns_parameters_are_its_own_method_params_and_written_there():
    cfg = from_dict({"method": "combined", "method_params": {"expand_at": [1], "kd_head": "worst"}})
    assert cfg.params().kd_head == "worst" and cfg.params().expand_at == (1,)
    d = cfg.to_dict()
    assert "kd_head" not in d and "expand_at" not in d and d["method_params"]["kd_head"] == "worst"
    # the short form (a name of the method's Params at the top level) is the same configuration
    assert from_dict({"method": "combined", "expand_at": [1], "kd_head": "worst"}).key() == cfg.key()
    # a method that does not read DynamicNN's parameters refuses them (one line), and its key ignores them
    with pytest.raises(ConfigError, match="kd_head='worst' is not a parameter of method 'lwf'"):
        from_dict({"method": "lwf", "kd_head": "worst"})
    with pytest.raises(ConfigError, match="unknown parameter method_params.kd_head"):
        from_dict({"method": "lwf", "method_params": {"kd_head": "worst"}})


def _old_config(**changes):
    """config.json as written before issue 19: DynamicNN's parameters as top-level fields of every config, the head
    rule under its old name head_combine."""
    old = {("head_combine" if k == "head_rule" else k): v for k, v in tiny().to_dict().items() if k != "method_params"}
    old.update({"method_params": {}, "expand_at": [], "expand_threshold": None, "kd_head": "best",
                "kd_temperature": 2.0, "kd_weight": 1.0, "ce_on": "all", "known_rule": "router", "head_init": "copy"})
    old.update(changes)
    return old


def test_configs_and_results_written_before_dynamicnns_params_moved_are_migrated_on_load(tmp_path):
    import json

    from dynnn_lib.engine.results import load_result
    from dynnn_lib.core.store import write_json_checked

    new = tiny(method="combined", expand_at=[1], kd_head="routed", known_rule="mean_prob")
    old = _old_config(method="combined", expand_at=[1], kd_head="routed", known_rule="mean_prob")
    assert from_dict(old) == new and from_dict(json.loads(json.dumps(old))).key() == new.key()
    lwf = _old_config(method="lwf")  # DynamicNN's fields at their defaults: never read by LwF, dropped
    assert from_dict(lwf) == tiny(method="lwf") and from_dict(_old_config(method="finetune")) == tiny()

    body = {"status": "complete", "config": old, "task_names": ["a", "b", "c"], "logs": [],
            "matrix": [[1.0, None, None], [0.5, 1.0, None], [0.5, 0.5, 1.0]]}
    write_json_checked(tmp_path / "result.json", body)
    assert load_result(tmp_path / "result.json").config == new


def test_old_configs_that_cannot_be_migrated_are_refused_in_one_line(tmp_path):
    from dynnn_lib.core.errors import ResultCorrupt
    from dynnn_lib.engine.results import load_result
    from dynnn_lib.core.store import write_json_checked

    odd = _old_config(method="lwf", kd_head="worst")  # a DynamicNN value on a method that never read it
    with pytest.raises(ConfigError, match="kd_head='worst' is not a parameter of method 'lwf'"):
        from_dict(odd)
    write_json_checked(tmp_path / "result.json", {"status": "complete", "config": odd, "task_names": ["a", "b"],
                                                  "logs": [], "matrix": [[1.0, None], [0.5, 1.0]]})
    with pytest.raises(ResultCorrupt) as e:
        load_result(tmp_path / "result.json")
    assert "does not match the result schema" in str(e.value) and "\n" not in str(e.value)


def test_data_configs_written_before_sources_had_parameters_are_read_into_params():
    """Every stored result holds the old flat data fields (all of them, defaults included): each source reads its own
    into data.params and drops the others where they hold their old defaults; a changed value it does not read is
    an error naming the source that has it."""
    old = {"source": "synthetic", "root": None, "n_tasks": 3, "stream": "round1", "generator": {}, "image_size": 32,
           "resize": True, "n_classes": 4, "train_per_class": 8, "test_per_class": 4, "data_seed": 1,
           "cache_dir": None, "factor": None, "decide_on": "validation", "load_workers": 2}
    cfg = from_dict({"method": "kd", "data": old})
    assert cfg.data.params == {"stream": "round1", "generator": {}, "n_classes": 4, "train_per_class": 8,
                               "test_per_class": 4, "data_seed": 1}
    assert cfg.data.n_classes == 4 and cfg.data.stream == "round1" and from_dict(cfg.to_dict()) == cfg
    real = {**old, "source": "openloris-benchmark1", "root": "/x", "factor": "pixel", "stream": None, "n_tasks": None}
    assert from_dict({"data": real}).data.params == {"factor": "pixel", "stream": None}
    with pytest.raises(ConfigError, match="data.stream only applies to data.source='openloris-benchmark1' or "
                                          "'openloris-benchmark2' or 'synthetic', not 'openloris-round1'; drop it"):
        from_dict({"data": {**real, "source": "openloris-round1", "factor": None, "stream": "round1"}})
    with pytest.raises(AttributeError, match="data.factor is not a setting of data.source='synthetic'"):
        cfg.data.factor

"""How tests/data/pre_plugin_results.json was made: run once at commit 7f1e4ca, before the methods moved to
dynnn_lib/methods/ (issue 10). tests/test_plugins.py checks that the plugins reproduce these matrices bit for bit."""
import json, tempfile, platform
from dynnn_lib.config import from_dict
from dynnn_lib.runner import run
BASE = {"base_epochs": 2, "inc_epochs": 2, "base_milestones": [2], "inc_milestones": [2], "pretrained": False,
        "data": {"n_tasks": 4, "n_classes": 4, "train_per_class": 16, "test_per_class": 8}}
CASES = {
 "finetune": {"method": "finetune"},
 "expand@1,3": {"method": "expand", "expand_at": [1, 3]},
 "expand@2 scratch": {"method": "expand", "expand_at": [2], "head_init": "scratch"},
 "kd best": {"method": "kd"},
 "kd worst ce unknown": {"method": "kd", "kd_head": "worst", "ce_on": "unknown"},
 "combined@1 lr trick": {"method": "combined", "expand_at": [1], "lr_trick": True},
 "combined auto<0.5 routed": {"method": "combined", "expand_threshold": 0.5, "kd_head": "routed", "seed": 1},
 "kd mean_prob known": {"method": "kd", "known_rule": "mean_prob", "seed": 2},
}
out = {"base": BASE, "machine": "<model name|cpu family|model|stepping, /proc/cpuinfo>", "cases": {}}
with tempfile.TemporaryDirectory() as d:
    for name, ov in CASES.items():
        res = run(from_dict({**BASE, **ov}), d)
        out["cases"][name] = {"overrides": ov, "matrices": {k: v.tolist() for k, v in res.matrices.items()},
                              "routing": res.routing.tolist(), "task_heads": res.task_heads,
                              "actions": [l["action"] for l in res.logs], "heads": [l["head"] for l in res.logs],
                              "final_loss": [l["final_loss"] for l in res.logs]}
        print(name, [l["action"] for l in res.logs], res.matrices["router"][-1])
json.dump(out, open("tests/data/pre_plugin_results.json", "w"), indent=0)

"""Record the reference runs of this machine's CPU: tests/data/reference_runs/<cpu>.json.

    .venv/bin/python tests/data/make_reference_runs.py

Eight small runs (every built-in DynamicNN variant and finetune, several head, KD and known rules) with their
matrices under every head rule, routing, heads, actions and final losses. tests/test_plugins.py compares a fresh
run with them: bit for bit against the file of the CPU it runs on (a real property: same code, same machine, same
thread count), within measured tolerances against the files of other CPUs (float kernels differ between CPU
generations). Record a file when the code is meant to change no number (a refactor: issue 19's "same numbers"),
before the change, on the machine you have.

The first file, amd-epyc-family25-model1-stepping1.json, was made at commit 7f1e4ca by the single-file methods.py,
before the methods became plugins (issue 10); the plugins reproduced it bit for bit on that CPU.
intel-r-xeon-r-processor-family6-model167-stepping1.json was made at commit 3841fb1, before the loss got the batch
it trains on (fit's Samples and Batch) and before data sources became plugins; both changes reproduced it bit for
bit on that CPU (the baselines lwf, ewc, online EWC, replay and joint too, compared outside this file).
intel-r-xeon-r-processor-family6-model207-stepping2.json was made at commit ea20c72; its eight cases equal the model-167
file's bit for bit (matrices and final losses): that CPU's float kernels give this one's numbers, and nothing since
3841fb1 changed them.
"""
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dynnn_lib.core.config import from_dict  # noqa: E402
from dynnn_lib.core.fingerprint import cpu, git_state  # noqa: E402
from dynnn_lib.engine.runner import run  # noqa: E402

BASE = {"base_epochs": 2, "inc_epochs": 2, "base_milestones": [2], "inc_milestones": [2], "pretrained": False,
        # the files were recorded on round1 (the default stream then); it stays the stream they are checked on
        "data": {"stream": "round1", "n_tasks": 4, "n_classes": 4, "train_per_class": 16, "test_per_class": 8}}
CASES = {  # DynamicNN's parameters in method_params (issue 19; the files were recorded with them top-level)
    "finetune": {"method": "finetune"},
    "expand@1,3": {"method": "expand", "method_params": {"expand_at": [1, 3]}},
    "expand@2 scratch": {"method": "expand", "method_params": {"expand_at": [2], "head_init": "scratch"}},
    "kd best": {"method": "kd"},
    "kd worst ce unknown": {"method": "kd", "method_params": {"kd_head": "worst", "ce_on": "unknown"}},
    "combined@1 lr trick": {"method": "combined", "method_params": {"expand_at": [1]}, "lr_trick": True},
    "combined auto<0.5 routed": {"method": "combined", "method_params": {"expand_threshold": 0.5, "kd_head": "routed"},
                                 "seed": 1},
    "kd mean_prob known": {"method": "kd", "method_params": {"known_rule": "mean_prob"}, "seed": 2},
}
REFERENCES = Path(__file__).parent / "reference_runs"


def slug(c: dict) -> str:
    vendor = re.sub(r"[^a-z0-9]+", "-", c["model"].lower()).strip("-")
    return f"{vendor}-family{c['family']}-model{c['model_number']}-stepping{c['stepping']}"


def record() -> dict:
    import torch

    torch.set_num_threads(1)  # as the test suite (conftest.py) and every run (DYNNN_THREADS=1)
    out = {"base": BASE, "machine": cpu()["signature"], "commit": git_state()["commit"], "cases": {}}
    with tempfile.TemporaryDirectory() as d:
        for name, ov in CASES.items():
            res = run(from_dict({**BASE, **ov}), d)
            out["cases"][name] = {"overrides": ov, "matrices": {k: v.tolist() for k, v in res.matrices.items()},
                                  "routing": res.routing.tolist(), "task_heads": res.task_heads,
                                  "actions": [l["action"] for l in res.logs], "heads": [l["head"] for l in res.logs],
                                  "final_loss": [l["final_loss"] for l in res.logs]}
            print(name, [l["action"] for l in res.logs], res.matrices["router"][-1])
    return out


if __name__ == "__main__":
    path = REFERENCES / f"{slug(cpu())}.json"
    path.write_text(json.dumps(record(), indent=0))
    print(f"wrote {path}")

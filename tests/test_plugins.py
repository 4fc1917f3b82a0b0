"""Methods as plugins: the built-ins reproduce their pre-plugin matrices, a user method runs everywhere."""
import json
from pathlib import Path

import numpy as np
import pytest

from dynnn_lib import run
from dynnn_lib.config import from_dict

REFERENCE = json.loads((Path(__file__).parent / "data" / "pre_plugin_results.json").read_text())


def _cpu_model() -> str:
    """model name|family|model|stepping of the first CPU (float kernels differ between CPU generations)."""
    info = {}
    try:
        for line in open("/proc/cpuinfo"):
            if not line.strip() and info:
                break
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown"
    return "|".join(info.get(k, "?") for k in ("model name", "cpu family", "model", "stepping"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE["cases"]))
def test_builtin_methods_reproduce_their_matrices_from_before_the_move(name, tmp_path):
    """tests/data/pre_plugin_results.json was made by the single-file methods.py (commit 7f1e4ca). On the machine
    that made it the plugins must match bit for bit; elsewhere float summation may differ, so a prediction may
    flip: then at most one test image per task (1/32) is allowed to differ."""
    case = REFERENCE["cases"][name]
    res = run(from_dict({**REFERENCE["base"], **case["overrides"]}), tmp_path)
    assert [log["action"] for log in res.logs] == case["actions"]
    assert [log["head"] for log in res.logs] == case["heads"]
    assert res.task_heads == case["task_heads"]
    same_machine = _cpu_model() == REFERENCE["machine"]
    for rule, expected in case["matrices"].items():
        got, want = res.matrices[rule], np.array(expected, dtype=float)
        if same_machine:
            np.testing.assert_array_equal(np.nan_to_num(got, nan=-1), np.nan_to_num(want, nan=-1), err_msg=rule)
        else:
            np.testing.assert_allclose(got, want, atol=1 / 32 + 1e-9, err_msg=rule)
    np.testing.assert_allclose([log["final_loss"] for log in res.logs], case["final_loss"], rtol=1e-5)

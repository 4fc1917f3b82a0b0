"""The stand-in's arms: what each arm trains, and the measures a look reports (experiments/arms.py)."""
import numpy as np
import pytest

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.experiments import arms
from dynnn_lib.experiments.objective import flat_line
from dynnn_lib.experiments.paper import PAPER_DYNAMICNN, PAPER_FINETUNE


def test_each_arm_is_a_composition_and_a_learner_on_the_default_stand_in():
    ft, v2 = arms.arm_configs("M-neutral", 101)
    assert ft.method == "finetune" and v2.method == "combined" and list(v2.method_params["expand_at"]) == [1, 3]
    assert ft.data.stream == v2.data.stream == "round1-calibrated-mixture" and ft.data.data_seed == 101
    assert ft.pretrained == "neutral" and arms.arm_configs("C-today", 101)[0].pretrained is True
    lite = arms.arm_configs("C-lite0", 100)[0]
    assert (lite.backbone, lite.pretrained, lite.data.stream) == ("efficientnet_lite0", "imagenet", "round1-calibrated")
    assert len({arms.arm_configs(a, 100)[0].key() for a in arms.ARMS}) == 6
    with pytest.raises(ConfigError, match="unknown arm 'X-today'; choose from: C-today"):
        arms.arm_configs("X-today", 100)


def test_a_look_scores_the_paper_as_perfect_and_the_flat_line_as_skill_0():
    paper = arms.score_instance(PAPER_FINETUNE[0], PAPER_DYNAMICNN[0])
    assert paper["objective"] == 0 and paper["skill"] == 1 and paper["finetune_45"] == 0
    assert paper["history_effect"] == pytest.approx(23.33, abs=0.01)  # tasks 0-2: 98.0 after task 8, 74.7 after 3
    ft, v2 = flat_line()
    flat = arms.score_instance(ft, v2)
    assert flat["skill"] == pytest.approx(0, abs=1e-12) and flat["history_effect"] == pytest.approx(0, abs=1e-9)
    assert np.isclose(flat["objective"], 5.98, atol=0.005)

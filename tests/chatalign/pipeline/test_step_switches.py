"""`steps.NAME.enabled=true|false` on the command line turns a step of the pipeline recipe on or off (the quickstart's
second round with fresh preferences, without editing the file); a step name that is not there is a one-line error
naming the nearest one."""

from pathlib import Path

import pytest

from chatalign.errors import ConfigError
from chatalign.pipeline.config import load_pipeline

QUICKSTART = Path(__file__).resolve().parents[3] / "recipes" / "quickstart" / "pipeline.yaml"
LOOP = ["prefs_round2", "reward_helpful_round2", "reward_safety_round2", "rlhf_round2"]


def test_the_loop_steps_turn_on_by_name_and_gatt_then_reads_round_2(tmp_path):
    off = load_pipeline(QUICKSTART, [f"output_dir={tmp_path}"])
    assert [s.name for s in off.steps if not s.enabled] == ["dpo", *LOOP]
    on = load_pipeline(QUICKSTART, [f"output_dir={tmp_path}", *(f"steps.{n}.enabled=true" for n in LOOP),
                                    "steps.safety.enabled=false"])
    assert [s.name for s in on.steps if not s.enabled] == ["dpo", "safety"]
    gatt = next(s for s in on.steps if s.name == "gatt")
    assert on.expand(gatt)["model.name"] == str(on.step_dir("rlhf_round2"))  # ${last.rlhf}


def test_a_misspelt_step_or_a_value_that_is_not_a_boolean_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"steps\.prefs_round3\.enabled: no step named 'prefs_round3' \(did you "
                                          r"mean prefs_round2\?\)"):
        load_pipeline(QUICKSTART, [f"output_dir={tmp_path}", "steps.prefs_round3.enabled=true"])
    with pytest.raises(ConfigError, match=r"steps\.dpo\.enabled: true or false, not 'yes please'"):
        load_pipeline(QUICKSTART, [f"output_dir={tmp_path}", "steps.dpo.enabled=yes please"])

"""DeepSpeed is an optional extra: without it a recipe that turns it on fails at validation with one line naming
the key and the extra, and the launch path that needs it says the same instead of an ImportError."""

from __future__ import annotations

import sys

import pytest

from chatalign.errors import UserError
from chatalign.training.config import DeepSpeedConfig
from chatalign.training.distributed import import_deepspeed


def test_without_deepspeed_the_key_and_the_extra_are_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # as on an install without the extra
    with pytest.raises(ValueError, match=r"deepspeed.enabled: DeepSpeed is not installed.*chatalign\[deepspeed\]"):
        DeepSpeedConfig(enabled=True)
    assert DeepSpeedConfig(enabled=False).enabled is False  # one process trains without it
    with pytest.raises(UserError, match=r"pip install 'chatalign\[deepspeed\]'"):
        import_deepspeed()


def test_with_deepspeed_installed_it_is_the_real_module():
    pytest.importorskip("deepspeed", reason="the deepspeed extra is in the dev install")
    assert import_deepspeed().__name__ == "deepspeed" and DeepSpeedConfig(enabled=True).enabled

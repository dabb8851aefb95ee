"""Recipe overrides may come before and after options, as users type them; anything else unknown is refused."""

import pytest

from chatalign.cli.main import build_parser, parse_arguments


def test_overrides_after_options_join_the_ones_before():
    args = parse_arguments(build_parser(), ["plan", "--config", "r.yaml", "mode=ppo", "--gpus", "2",
                                            "ppo.micro_batch=1", "ppo.lora.enabled=true"])
    assert args.gpus == 2
    assert args.overrides == ["mode=ppo", "ppo.micro_batch=1", "ppo.lora.enabled=true"]  # order kept: last wins


def test_unknown_flag_or_word_is_still_refused(capsys):
    for argv in (["plan", "--config", "r.yaml", "--gpus", "2", "--bogus"],
                 ["plan", "--config", "r.yaml", "a=1", "--gpus", "2", "stray"],
                 ["data", "validate", "f.jsonl", "--kind", "conversation", "x=1"]):  # no overrides there
        with pytest.raises(SystemExit) as exc:
            parse_arguments(build_parser(), argv)
        assert exc.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_every_command_and_flag_has_help():
    import argparse

    def missing(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from missing(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                yield f"{path} {'/'.join(action.option_strings) or action.dest}"

    assert list(missing(build_parser(), "chatalign")) == []

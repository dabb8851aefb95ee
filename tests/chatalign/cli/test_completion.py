"""`chatalign completion bash` completes commands, subcommands, flags and recipe files in a real bash."""

import subprocess

from chatalign.cli.main import main

COMPLETE = """
source "$1"
complete_words() {
  COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
  COMPREPLY=(); _shtab_chatalign; echo "${COMPREPLY[*]}"
}
complete_words chatalign s
complete_words chatalign rlhf ''
complete_words chatalign sft --con
complete_words chatalign sft --config recipes/
"""


def test_bash_completes_commands_flags_and_recipes(tmp_path, capsys):
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "chatalign.bash"
    script.write_text(capsys.readouterr().out)
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "sft.yaml").write_text("stage: sft\n")
    out = subprocess.run(["bash", "-c", COMPLETE, "complete", str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines == ["sft safety", "round rs ppo eval status", "--config", "recipes/sft.yaml"], lines

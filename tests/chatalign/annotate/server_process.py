"""Start `chatalign annotate` as a user does (a real server in its own process) and find its URL."""

import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def annotate_server(comparisons: Path, *extra: str):
    proc = subprocess.Popen([sys.executable, "-m", "chatalign.cli", "annotate", str(comparisons), "--port", "0",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
            if found:
                yield proc, found.group(1)
                break
        else:
            raise AssertionError("the server did not start:\n" + "".join(seen))
    finally:
        proc.kill()
        proc.wait(timeout=30)

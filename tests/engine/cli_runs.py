"""Running the engine's CLI as a real subprocess, and what a hostile run must never do."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@dataclass
class Run:
    code: int
    events: list[dict]
    stderr: str

    @property
    def message(self) -> str:
        """The message of the final ``error`` line ("" when the run did not end in one)."""
        last = self.events[-1] if self.events else {}
        return last.get("message", "") if last.get("type") == "error" else ""

    def refused(self, *fragments: str) -> bool:
        """Exit 2 with one error line of kind bad_input naming every fragment, and no traceback."""
        return (self.code == 2 and self.events[-1]["kind"] == "bad_input"
                and all(f in self.message for f in fragments) and "Traceback" not in self.stderr)


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None) -> Run:
    """``python -m pix2pix_qgis ARGS --progress json``; every stdout line must be a protocol line."""
    proc = subprocess.run([sys.executable, "-m", "pix2pix_qgis", *args, "--progress", "json"], capture_output=True,
                          text=True, env=ENV, timeout=timeout, cwd=cwd)
    return Run(proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr)


def fingerprint(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file at or under ``paths`` (and the kind of anything else): to prove inputs unchanged."""
    found = {}
    for root in paths:
        try:
            mode = os.lstat(root).st_mode
        except OSError:  # absent, or a name no filesystem can hold
            found[str(root)] = "absent"
            continue
        for path in [root, *sorted(root.rglob("*"))] if stat.S_ISDIR(mode) else [root]:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[str(path)] = "link→" + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = f"mode {st.st_mode:o} rdev {st.st_rdev}"
    return found

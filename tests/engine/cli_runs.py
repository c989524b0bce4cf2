"""Running the engine's CLI as a real subprocess (plainly, or under torchrun), reading its JSON lines, and what
a hostile run must never do."""

from __future__ import annotations

import hashlib
import json
import os
import signal
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


def cli_process(*args: str, python: str = sys.executable, **kwargs) -> subprocess.CompletedProcess:
    """``python -m pix2pix_qgis ARGS`` as it finished, for tests of the raw streams (any ``--progress``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([python, "-m", "pix2pix_qgis", *args], capture_output=True, text=True, env=env,
                          timeout=120, **kwargs)


def events(stdout: str) -> list[dict]:
    """Every stdout line as a protocol event (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in stdout.splitlines()]


def json_lines(stdout: str) -> list[dict]:
    """The JSON lines of stdout, skipping others (torchrun and its ranks print lines of their own)."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def translate_cli(source: Path, model: Path, out: Path) -> tuple[int, dict]:
    """``translate`` on the CPU: its exit code and its last JSON line."""
    proc = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "translate", str(source), str(model), str(out),
                           "--device", "cpu", "--progress", "json"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    return proc.returncode, json.loads(proc.stdout.splitlines()[-1])


def torchrun(*args: str) -> list[str]:
    """The torchrun command line for ``args`` (its script beside this Python, or ``-m torch.distributed.run``)."""
    launcher = Path(sys.executable).with_name("torchrun")
    head = [str(launcher)] if launcher.exists() else [sys.executable, "-m", "torch.distributed.run"]
    return [*head, "--standalone", *args]


def torchrun_stopped_at_step(*args: str, step: int = 2) -> tuple[int, list[dict]]:
    """Run torchrun with ``args`` (``--progress json``), SIGTERM it once a JSON line reports ``step``: its exit
    code and every JSON line it printed, those after the signal included."""
    proc = subprocess.Popen(torchrun(*args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=engine_env())
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("{") and json.loads(line).get("step", 0) >= step:
            proc.send_signal(signal.SIGTERM)
            break
    lines += proc.stdout.readlines()
    return proc.wait(timeout=120), json_lines("".join(lines))


def engine_env(**extra: str) -> dict[str, str]:
    """The environment of a torchrun'd engine: this checkout first, one OpenMP thread per rank, plus ``extra``."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


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

"""The CLI as a subprocess: the JSON-lines protocol, exit codes, doctor, missing deps, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..cli_runs import REPO, cli_process, events


def test_export_streams_json_lines_and_ends_with_result(make_raster, tmp_path, rng):
    path = make_raster("a.tif", rng.integers(0, 255, (2, 128, 128), dtype="uint8"))
    proc = cli_process("export", str(path), str(path), str(tmp_path / "out"), "--tile-size", "32", "--stride", "16",
                       "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    lines = events(proc.stdout)  # every stdout line parses as JSON
    kinds = [e["type"] for e in lines]
    assert kinds[-1] == "result" and "progress" in kinds and "error" not in kinds
    fractions = [e["fraction"] for e in lines if e["type"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    result = lines[-1]["result"]
    assert result["chips"] == result["train"] + result["validation"] > 0
    assert Path(result["manifest"]).is_file()


def test_bad_input_exits_2_with_an_error_line(tmp_path):
    proc = cli_process("export", str(tmp_path / "nope.tif"), str(tmp_path / "b.tif"), str(tmp_path / "out"),
                       "--progress", "json")
    assert proc.returncode == 2
    last = events(proc.stdout)[-1]
    assert last["type"] == "error" and last["kind"] == "bad_input" and "nope.tif does not exist" in last["message"]
    assert not (tmp_path / "out").exists()


def test_terminal_mode_prints_a_readable_error(tmp_path):
    proc = cli_process("export", str(tmp_path / "nope.tif"), str(tmp_path / "b.tif"), str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: The input (A) raster") and "Traceback" not in proc.stderr


def test_doctor_reports_versions_and_devices():
    proc = cli_process("doctor", "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    report = events(proc.stdout)[-1]["result"]
    assert report["ok"] is True and report["torch"] and report["rasterio"] and report["gdal"]
    assert report["devices"][0]["name"] == "cpu" and isinstance(report["cuda_available"], bool)


def test_missing_dependency_names_interpreter_and_fix(tmp_path):
    # A bare virtual environment: the engine's code is on PYTHONPATH, its dependencies are not.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = str(tmp_path / "bare" / "bin" / "python")
    proc = cli_process("export", "a.tif", "b.tif", "out", "--progress", "json", python=bare)
    assert proc.returncode == 3
    error = events(proc.stdout)[-1]
    assert error["kind"] == "missing_dependency" and error["module"] in {"numpy", "rasterio", "shapely"}
    assert bare in error["message"] and f'"{bare}" -m pip install -r' in error["fix"]
    assert str(REPO / "requirements.txt") in error["fix"]
    plain = cli_process("export", "a.tif", "b.tif", "out", python=bare)
    assert plain.returncode == 3 and f"{bare} lacks the module" in plain.stderr
    doctor = cli_process("doctor", "--progress", "json", python=bare)
    report = events(doctor.stdout)[-1]["result"]
    assert doctor.returncode == 3 and report["ok"] is False and report["torch"] is None


def test_sigterm_cancels_early_and_leaves_nothing(make_raster, tmp_path, rng):
    path = make_raster("a.tif", rng.integers(0, 255, (1, 1500, 1500), dtype="uint8"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pix2pix_qgis", "export", str(path), str(path),
                             str(tmp_path / "out"), "--tile-size", "16", "--stride", "8", "--progress", "json"],
                            stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if json.loads(line)["type"] == "progress":
            break
    proc.send_signal(signal.SIGTERM)
    rest = events(proc.stdout.read())
    # Stopped cooperatively, long before the ~35 000 chips were written (how fast is a benchmark's
    # question, not a test's: a loaded machine makes any wall-clock bound flaky).
    assert proc.wait(timeout=60) == 130
    assert rest[-1]["kind"] == "cancelled"
    assert max((e["fraction"] for e in rest if e["type"] == "progress"), default=0.0) < 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]


def test_numpy_arrays_in_results_are_serialised():
    from pix2pix_qgis.core.progress import JsonLinesProgress

    class Sink:
        text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    sink = Sink()
    JsonLinesProgress(sink).emit({"type": "result", "result": {"n": np.int64(3), "x": np.float32(0.5)}})
    assert json.loads(sink.text) == {"type": "result", "result": {"n": 3, "x": 0.5}}


def test_translate_and_evaluate_commands_report_results(tmp_path, rng):
    from ..builders import write_raster
    from ..models import write_model

    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 70, 50), dtype="uint8"))
    proc = cli_process("translate", str(source), str(model), str(tmp_path / "out.tif"), "--overlap", "8",
                       "--batch-size", "2", "--device", "cpu", "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    result = events(proc.stdout)[-1]["result"]
    assert (result["width"], result["height"], result["device"]) == (50, 70, "cpu")
    proc = cli_process("evaluate", str(tmp_path / "out.tif"), str(source), "--report", str(tmp_path / "m.json"),
                       "--html", str(tmp_path / "m.html"), "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    result = events(proc.stdout)[-1]["result"]
    assert result["pixels"] == 70 * 50 and Path(result["html"]).is_file()
    assert json.loads((tmp_path / "m.json").read_text())["mae"] == result["mae"]
    bad = cli_process("translate", str(source), str(model), str(tmp_path / "x.tif"), "--tile-size", "20",
                      "--progress", "json")
    assert bad.returncode == 2 and "multiples of 2^3 = 8 px" in events(bad.stdout)[-1]["message"]

"""A full disk: a real small tmpfs mounted for the test; every write must fail clearly and leave nothing.

Needs root (or CAP_SYS_ADMIN) to mount; elsewhere the tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.chips.export import export_chips
from pix2pix_qgis.chips.spec import ChipSpec
from pix2pix_qgis.infer.translate import TranslateSpec, translate_raster
from pix2pix_qgis.model.checkpoint import checkpoint_path, load_checkpoint
from pix2pix_qgis.train.config import TrainConfig
from pix2pix_qgis.train.loop import train

from ..builders import mapping_chips, write_raster
from ..cli_runs import REPO
from ..models import write_model


@pytest.fixture
def mount_small(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``mount_small("1m")`` mounts a tmpfs of that size under tmp_path; all are unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the full-disk test needs root")
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"small disk {len(mounts)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def small_disk(mount_small: Callable[[str], Path]) -> Path:
    return mount_small("1m")


def fill(disk: Path, leave: int) -> None:
    """Leave about ``leave`` bytes free on ``disk``."""
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_translation_onto_a_full_disk_fails_clearly_and_leaves_nothing(small_disk, tmp_path, rng):
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    source = write_raster(tmp_path / "in.tif", rng.integers(0, 255, (3, 700, 700), dtype="uint8"),
                          photometric="RGB")
    out = small_disk / "out.tif"
    with pytest.raises(Pix2PixError) as caught:
        translate_raster(source, model, out, TranslateSpec(device="cpu", overlap=8, creation_options={
            "COMPRESS": "NONE"}))
    message = str(caught.value)
    assert f"The disk holding {small_disk} is full" in message and str(out) in message
    assert "free" in message and "needs up to about 1.4 MiB" in message
    assert list(small_disk.iterdir()) == []  # no output, no partial, no lock


def test_export_onto_a_full_disk_fails_clearly_and_leaves_nothing(small_disk, tmp_path, rng):
    source = write_raster(tmp_path / "a.tif", rng.integers(0, 255, (3, 512, 512), dtype="uint8"),
                          photometric="RGB")
    out = small_disk / "chips"
    with pytest.raises(Pix2PixError, match=f"The disk holding {small_disk} is full"):
        export_chips(source, source, out, ChipSpec(tile_size=64, stride=32))
    assert list(small_disk.iterdir()) == []


def test_a_checkpoint_on_a_full_disk_fails_clearly_and_keeps_the_previous_one(mount_small, tmp_path):
    small_disk = mount_small("16m")
    chips = mapping_chips(tmp_path, size=64, tile=32, validation=0.0)
    model = small_disk / "model.p2p"
    train(chips, model, TrainConfig(epochs=1, ngf=4, ndf=4, device="cpu"))
    before = checkpoint_path(model).read_bytes()
    model.unlink()
    fill(small_disk, 4096)
    with pytest.raises(Pix2PixError, match=f"The disk holding {small_disk} is full"):
        train(chips, model, TrainConfig(epochs=2, ngf=4, ndf=4, device="cpu"), resume=True)
    assert checkpoint_path(model).read_bytes() == before  # still the complete previous checkpoint
    load_checkpoint(checkpoint_path(model))
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "model.p2p.ckpt"]


def test_the_cli_reports_a_full_disk_as_bad_input(small_disk, tmp_path, rng):
    model = write_model(tmp_path / "m.p2p", chip=32, depth=3)
    source = write_raster(tmp_path / "in.tif", rng.random((3, 400, 400), dtype=np.float32))
    proc = subprocess.run([sys.executable, "-m", "pix2pix_qgis", "translate", str(source), str(model),
                           str(small_disk / "out.tif"), "--device", "cpu", "--dtype", "float32", "--progress", "json"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout.splitlines()[-1])
    assert error["kind"] == "bad_input" and "is full" in error["message"]
    assert list(small_disk.iterdir()) == []

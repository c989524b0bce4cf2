#!/usr/bin/env python
"""Run arcgis.learn 2.4.4's REAL prepare_data(dataset_type='Pix2Pix') / Pix2Pix / fit(1) on export folders.

Usage (with /work/scratch13/arcgis-venv):
    arcgis-venv/bin/python esri_check.py FOLDER [FOLDER2] [--dataset-type Pix2Pix|none] [--no-fit]
        [--in-place] [--batch-size 2] [--epochs 1] [--lr 1e-4] [--seed 0] [--out result.json]

Prints one JSON object (also written to --out): per stage ("prepare_data", "batch", "model", "fit")
either the measured values or the exact exception (type, message, last frames). By default each
folder is copied to a temporary directory first, so arcgis.learn's own writes
(esri_normalization_stats_{a,b}.json, models/, ...) do not touch the original; the JSON lists the
files arcgis.learn added ("written_by_arcgis"). --in-place runs on the folder itself.
Two folders: prepare_data([F1, F2]) — arcgis.learn's multi-folder path (merge_emd_and_stats).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import esri_shims  # noqa: E402

SHIM_NOTES = esri_shims.apply()


def _exc(e: BaseException) -> dict:
    tb = traceback.extract_tb(e.__traceback__)
    frames = [f"{Path(f.filename).as_posix().split('site-packages/')[-1]}:{f.lineno} {f.name}: {f.line}"
              for f in tb[-6:]]
    return {"ok": False, "error_type": type(e).__name__, "error": str(e)[:2000], "frames": frames}


def _listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def _tensor_info(t) -> dict:
    import torch

    if isinstance(t, torch.Tensor):
        tf = t.float()
        return {"shape": list(t.shape), "dtype": str(t.dtype), "min": float(tf.min()), "max": float(tf.max()),
                "mean": float(tf.mean())}
    if isinstance(t, (list, tuple)):
        return [_tensor_info(x) for x in t]
    return repr(t)[:200]


def _tolist(v):
    try:
        return v.tolist()
    except AttributeError:
        return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--dataset-type", default="Pix2Pix", help="'none' lets arcgis.learn detect it")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4, help="given explicitly so fit() skips lr_find")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument("--in-place", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    import arcgis
    import torch
    from arcgis.learn import Pix2Pix, prepare_data

    result: dict = {"arcgis": arcgis.__version__, "torch": torch.__version__, "shims": SHIM_NOTES,
                    "folders": args.folders, "dataset_type_arg": args.dataset_type}
    tmp = None
    folders = [Path(f).resolve() for f in args.folders]
    if not args.in_place:
        tmp = Path(tempfile.mkdtemp(prefix="esri_check_"))
        copies = []
        for i, f in enumerate(folders):
            dst = tmp / f"{i}_{f.name}"
            shutil.copytree(f, dst)
            copies.append(dst)
        folders = copies
    before = {str(f): _listing(f) for f in folders}
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    cwd = os.getcwd()
    os.chdir(tmp or folders[0].parent)  # arcgis.learn may write relative to cwd
    data = None
    model = None
    try:
        t0 = time.time()
        path = folders[0] if len(folders) == 1 else folders
        dtype = None if args.dataset_type.lower() == "none" else args.dataset_type
        try:
            data = prepare_data(path, dataset_type=dtype, batch_size=args.batch_size)
            info = {"ok": True, "seconds": round(time.time() - t0, 2),
                    "dataset_type": getattr(data, "_dataset_type", None),
                    "train_chips": len(data.train_ds), "valid_chips": len(data.valid_ds),
                    "chip_size": getattr(data, "chip_size", None), "n_channel": getattr(data, "n_channel", None),
                    "is_multispectral": getattr(data, "_is_multispectral", None),
                    "imagery_type": getattr(data, "_imagery_type", None)}
            stats = {}
            for role in ("a", "b"):
                bs = getattr(data, f"batch_stats_{role}", None) or {}
                stats[role] = {k: _tolist(v) for k, v in bs.items() if v is not None}
            info["stats_used"] = stats
            try:
                first = data.train_ds.image_list_A[0], data.train_ds.image_list_B[0]
                info["first_train_pair"] = [Path(first[0]).name, Path(first[1]).name,
                                            Path(first[0]).parent.name, Path(first[1]).parent.name]
            except Exception as e:  # noqa: BLE001
                info["first_train_pair"] = repr(e)
            result["prepare_data"] = info
        except Exception as e:  # noqa: BLE001
            result["prepare_data"] = _exc(e)
        if data is not None:
            try:
                xb, yb = next(iter(data.train_dl))
                result["batch"] = {"ok": True, "x": _tensor_info(xb), "y": _tensor_info(yb)}
            except Exception as e:  # noqa: BLE001
                result["batch"] = _exc(e)
            try:
                t0 = time.time()
                model = Pix2Pix(data)
                n = sum(p.numel() for p in model.learn.model.parameters())
                result["model"] = {"ok": True, "parameters": n, "seconds": round(time.time() - t0, 2)}
            except Exception as e:  # noqa: BLE001
                result["model"] = _exc(e)
        if model is not None and not args.no_fit:
            try:
                t0 = time.time()
                model.fit(args.epochs, lr=args.lr, checkpoint=False)
                rec = model.learn.recorder
                names = list(getattr(rec, "metrics_names", []) or [])
                result["fit"] = {"ok": True, "seconds": round(time.time() - t0, 1),
                                 "train_loss_last": float(rec.losses[-1]) if rec.losses else None,
                                 "valid_loss": [_tolist(v) for v in rec.val_losses],
                                 "metrics_names": names, "metrics": [[_tolist(m) for m in row] for row in rec.metrics]}
            except Exception as e:  # noqa: BLE001
                result["fit"] = _exc(e)
    finally:
        os.chdir(cwd)
        after = {str(f): _listing(f) for f in folders}
        result["written_by_arcgis"] = {k: sorted(after[k] - before[k]) for k in after}
        result["deleted_by_arcgis"] = {k: sorted(before[k] - after[k]) for k in after}
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Minimal shims so that arcgis.learn 2.4.4 (pure-Python PyPI wheel) runs on this CPU-only Debian box.

Esri's own code is NOT modified; every shim only supplies what a plain ``pip install`` lacks.
Import this module BEFORE anything imports torchvision/fastai/arcgis.  ``apply()`` is idempotent.

1. torchvision 0.28.0 (the only torchvision for torch 2.13.0 on PyPI) is a CUDA build: its
   ``_C.so`` needs libtorch_cuda.so/libc10_cuda.so, which torch 2.13.0+cpu lacks, so it does not
   load, and ``torchvision/_meta_registrations.py`` L163/L177 then fail on
   ``register_fake("torchvision::nms"/"qnms")`` ("operator torchvision::nms does not exist").
   Shim: define the two operator schemas (as in torchvision's csrc) with a pure-PyTorch CPU nms.
   All other torchvision ops (roi_align, deform_conv2d, ...) stay unavailable (their meta
   registrations are guarded by ``_has_ops()``); transforms and models work. Pix2Pix needs none.
2. ``arcgis.learn._utils.nearest_neighbors`` (compiled, absent from the PyPI wheel) is imported at
   module level by ``models/_rand_lanet_utils.py`` L36, which ``models/__init__`` pulls in; without
   it ``from arcgis.learn import Pix2Pix`` fails. Shim: a stub module whose knn_batch raises.
3. ``models/_arcgis_model.py`` passes ``mixed_precision=`` to fastai's ``fit_one_cycle``; Esri's
   conda fastai 1.0.63 fork accepts it, PyPI fastai 1.0.61 does not. Shim: drop the argument.
4. ``_data_utils/pix2pix_data.py`` uses ``num_workers = os.cpu_count() - 4`` on Linux, negative on
   this 2-core box. Shim: ``os.cpu_count`` returns at least 4 (so num_workers >= 0).
5. osgeo (GDAL) is Debian's python3-gdal 3.6.2, symlinked into the venv's site-packages
   (done at install time, see README); it needs numpy 1.x, hence numpy 1.26.4.
"""

from __future__ import annotations

import os
import sys
import types

_APPLIED = False
NOTES: list[str] = []


def _torchvision_ops() -> None:
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018  (already there: real _C loaded)
        NOTES.append("torchvision ops: real _C loaded, no shim")
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")  # kept alive in module global below
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

    def nms_cpu(dets, scores, iou_threshold):
        order = scores.argsort(descending=True)
        keep = []
        x1, y1, x2, y2 = dets.unbind(1)
        areas = (x2 - x1) * (y2 - y1)
        suppressed = torch.zeros(len(dets), dtype=torch.bool)
        for i in order.tolist():
            if suppressed[i]:
                continue
            keep.append(i)
            xx1, yy1 = torch.maximum(x1[i], x1), torch.maximum(y1[i], y1)
            xx2, yy2 = torch.minimum(x2[i], x2), torch.minimum(y2[i], y2)
            inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
            iou = inter / (areas[i] + areas - inter)
            suppressed |= iou > iou_threshold
        return torch.tensor(keep, dtype=torch.int64)

    lib.impl("nms", nms_cpu, "CPU")
    globals()["_TV_LIB"] = lib
    NOTES.append("torchvision ops: CUDA-built _C.so cannot load on torch+cpu; defined torchvision::nms/qnms "
                 "schemas (python CPU nms); other torchvision C++ ops unavailable")


def _nearest_neighbors_stub() -> None:
    name = "arcgis.learn._utils.nearest_neighbors"
    if name in sys.modules:
        return
    stub = types.ModuleType(name)

    def knn_batch(*args, **kwargs):
        raise RuntimeError("esri_shims: compiled arcgis.learn._utils.nearest_neighbors is absent from the PyPI "
                           "wheel (point-cloud RandLA-Net only)")

    stub.knn_batch = knn_batch
    sys.modules[name] = stub
    NOTES.append("arcgis.learn._utils.nearest_neighbors: stub module (compiled, missing from PyPI wheel)")


def _cpu_count() -> None:
    real = os.cpu_count

    def cpu_count():
        return max(real() or 1, 4)

    os.cpu_count = cpu_count
    NOTES.append(f"os.cpu_count: {real()} -> {cpu_count()} (pix2pix_data.py uses cpu_count()-4 workers)")


def _fit_one_cycle() -> None:
    import fastai.basic_train as fbt
    import fastai.train as ft

    original = ft.fit_one_cycle
    if getattr(original, "_esri_shim", False):
        return

    def fit_one_cycle(learn, *args, mixed_precision=None, **kwargs):  # noqa: ARG001
        return original(learn, *args, **kwargs)

    fit_one_cycle._esri_shim = True
    ft.fit_one_cycle = fit_one_cycle
    fbt.Learner.fit_one_cycle = fit_one_cycle
    NOTES.append("fastai fit_one_cycle: drops Esri-fork-only 'mixed_precision' kwarg")


def apply() -> list[str]:
    global _APPLIED
    if _APPLIED:
        return NOTES
    _cpu_count()
    _torchvision_ops()
    _nearest_neighbors_stub()
    _fit_one_cycle()
    _APPLIED = True
    return NOTES

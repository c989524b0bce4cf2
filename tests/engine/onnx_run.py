"""Run an ONNX file once in this interpreter's onnxruntime (for ``ort117.run``).

    python -S onnx_run.py MODEL.onnx IN.npy OUT.npy

Saves the first output and prints onnxruntime's version.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort

model, source, out = sys.argv[1:4]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
np.save(out, session.run(None, {session.get_inputs()[0].name: np.load(source)})[0])
print(json.dumps({"onnxruntime": ort.__version__}))

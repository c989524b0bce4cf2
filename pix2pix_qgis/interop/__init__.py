"""Models in and out: the reference pix2pix's checkpoints, ONNX export and its cache.
"""

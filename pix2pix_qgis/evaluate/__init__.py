"""Metrics and raster-to-raster evaluation: masked MAE, RMSE, bias, R², PSNR and SSIM,
used by training's validation and by the ``evaluate`` command.
"""

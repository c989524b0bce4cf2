"""Stage 4, translation of whole rasters: the tile plan, inference backends, the mosaic
(strips in, blended blocks out) and ``translate_raster``.
"""

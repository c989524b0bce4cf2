"""Stage 1, rasters → chips folder: what to export, the spatial split, statistics, the
manifest and the Esri side files (written with our export, read from ArcGIS Pro's).
"""

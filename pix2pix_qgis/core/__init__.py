"""Infrastructure every stage shares, without torch: the raster grid and validity rule,
atomic outputs and locks, JSON schemas, progress reporting, launch detection, masks, HTML pages.
"""

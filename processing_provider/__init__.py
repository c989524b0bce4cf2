"""The QGIS side: a Processing provider whose algorithms run the engine as a subprocess.

Nothing here imports torch (or the engine): torch inside QGIS's own Python clashes on NumPy
ABI and DLLs. Every algorithm calls ``pix2pix_qgis`` in a separate interpreter and maps its
JSON-lines progress onto ``QgsProcessingFeedback``.
"""

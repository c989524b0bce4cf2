"""QGIS plugin entry point (folder name ``pix2pix_toolbox``).

Import-light on purpose: QGIS and ``qgis_process`` call ``classFactory`` at start-up (with
``iface`` None under ``qgis_process``), so nothing heavy and nothing GUI happens here.
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS's entry point: the plugin object for ``iface`` (None under ``qgis_process``)."""
    from .plugin import Pix2PixPlugin

    return Pix2PixPlugin(iface)

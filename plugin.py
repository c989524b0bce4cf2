"""The plugin object: registers the Processing provider; no GUI of its own."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication


class Pix2PixPlugin:
    """The QGIS plugin: registers the Pix2Pix Processing provider and removes it on unload."""
    def __init__(self, iface: Any) -> None:
        self.iface = iface  # None under qgis_process; never touched here
        self.provider = None

    def initProcessing(self) -> None:  # noqa: N802 (QGIS's name)
        """Called by qgis_process (headless) and by initGui; registers the provider once."""
        if self.provider is None:
            from .processing_provider.provider import Pix2PixProvider

            self.provider = Pix2PixProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        """Called by the QGIS desktop; the plugin has no GUI of its own, only the provider."""
        self.initProcessing()

    def unload(self) -> None:
        """Remove the provider from the Processing registry (plugin disabled or reloaded)."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

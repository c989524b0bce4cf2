"""How translated rasters look when Processing loads them: RGB composite for 3 bands, stretched grey otherwise.

A ``QgsProcessingLayerPostProcessorInterface`` runs in the main thread when the layer is
loaded. The processing context takes ownership of each one (and deletes it), but the Python
half of the object must stay alive until then, so recent instances are kept here.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from qgis.core import (
    QgsMultiBandColorRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsSingleBandGrayRenderer,
)

from .compat import CUMULATIVE_CUT, DATA_TYPE_BYTE, STRETCH_TO_MIN_MAX


def apply_renderer(layer: QgsRasterLayer) -> None:
    """3 bands: RGB composite (true colour for 8-bit, 2–98 % stretch otherwise); else band 1, stretched grey."""
    provider = layer.dataProvider()
    if layer.bandCount() == 3:
        layer.setRenderer(QgsMultiBandColorRenderer(provider, 1, 2, 3))
        if provider.dataType(1) != DATA_TYPE_BYTE:
            layer.setContrastEnhancement(STRETCH_TO_MIN_MAX, CUMULATIVE_CUT)
    else:
        layer.setRenderer(QgsSingleBandGrayRenderer(provider, 1))
        layer.setContrastEnhancement(STRETCH_TO_MIN_MAX, CUMULATIVE_CUT)
    layer.triggerRepaint()


class RasterStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles a raster output when Processing loads it into the project (see :func:`apply_renderer`)."""
    def postProcessLayer(self, layer: Any, context: Any, feedback: Any) -> None:  # noqa: N802 (QGIS's name)
        """Give a loaded, valid raster output the plugin's renderer."""
        if isinstance(layer, QgsRasterLayer) and layer.isValid():
            apply_renderer(layer)


_ALIVE: deque[RasterStyler] = deque(maxlen=1024)


def style_on_load(context: Any, output: str) -> None:
    """Attach the renderer choice to ``output`` if Processing will load it."""
    if output and context.willLoadLayerOnCompletion(output):
        styler = RasterStyler()
        _ALIVE.append(styler)
        context.layerToLoadOnCompletionDetails(output).setPostProcessor(styler)

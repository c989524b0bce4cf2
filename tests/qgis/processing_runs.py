"""Running the provider's algorithms as Processing runs them (``processing.run``), with a feedback that
keeps what they reported: shared by the QGIS test modules, which never import each other."""

from __future__ import annotations

import time
from typing import Any


def run(algorithm: str, parameters: dict, feedback=None) -> dict:
    import processing
    from qgis.core import QgsProcessingFeedback

    return processing.run(algorithm, parameters, feedback=feedback or QgsProcessingFeedback())


def recording_feedback(cancel_after_progress: bool = False) -> Any:
    """A QgsProcessingFeedback that keeps what the run reported: ``infos``, ``console`` (stray engine output),
    ``errors`` (errors and warnings), ``progress_values`` (percent, every call) and ``cancelled_at``
    (``time.monotonic()`` of the cancel that ``cancel_after_progress`` makes at the first progress above 0).

    Progress is recorded in ``setProgress`` rather than from the ``progressChanged`` signal: the signal skips
    values within 0.1 % of the last one, and a test that runs the engine runner in its own thread has no event
    loop to deliver it, while ``setProgress`` runs in whichever thread reports.
    """
    from qgis.core import QgsProcessingFeedback

    class Recording(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.infos: list[str] = []
            self.console: list[str] = []
            self.errors: list[str] = []
            self.progress_values: list[float] = []
            self.cancelled_at: float | None = None

        def setProgress(self, value: float) -> None:  # noqa: N802
            super().setProgress(value)
            self.progress_values.append(value)
            if cancel_after_progress and value > 0 and self.cancelled_at is None:
                self.cancelled_at = time.monotonic()
                self.cancel()

        def pushInfo(self, info: str) -> None:  # noqa: N802
            self.infos.append(info)

        def pushConsoleInfo(self, info: str) -> None:  # noqa: N802
            self.console.append(info)

        def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802,N803
            self.errors.append(error)

        def pushWarning(self, warning: str) -> None:  # noqa: N802
            self.errors.append(warning)

    return Recording()

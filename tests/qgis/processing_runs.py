"""Running the provider's algorithms as Processing runs them (``processing.run``), with a feedback that
keeps what they reported: shared by the QGIS test modules, which never import each other."""

from __future__ import annotations

import time


def run(algorithm: str, parameters: dict, feedback=None) -> dict:
    import processing
    from qgis.core import QgsProcessingFeedback

    return processing.run(algorithm, parameters, feedback=feedback or QgsProcessingFeedback())


class RecordingFeedback:
    """A QgsProcessingFeedback that keeps what the algorithm reported."""

    def __new__(cls, cancel_after_progress: bool = False):
        from qgis.core import QgsProcessingFeedback

        class Recording(QgsProcessingFeedback):
            def __init__(self) -> None:
                super().__init__()
                self.infos: list[str] = []
                self.errors: list[str] = []
                self.progress_values: list[float] = []
                self.cancelled_at: float | None = None

            def pushInfo(self, info: str) -> None:  # noqa: N802
                self.infos.append(info)

            def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802,N803
                self.errors.append(error)

            def pushWarning(self, warning: str) -> None:  # noqa: N802
                self.errors.append(warning)

        feedback = Recording()
        if cancel_after_progress:
            def on_progress(value: float) -> None:
                feedback.progress_values.append(value)
                if value > 0 and feedback.cancelled_at is None:
                    feedback.cancelled_at = time.monotonic()
                    feedback.cancel()

            feedback.progressChanged.connect(on_progress)
        else:
            feedback.progressChanged.connect(feedback.progress_values.append)
        return feedback

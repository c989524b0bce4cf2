"""Pix2Pix › Train Pix2Pix (``pix2pix:train``)."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsProcessingOutputNumber, QgsProcessingParameterFile, QgsProcessingParameterFileDestination

from ...pix2pix_qgis.contract.tables import TRAIN
from ..compat import FILE_FOLDER
from ..engine import run_engine
from .base import EngineAlgorithm

TRAIN_GRACE_S = 120.0  # a cancelled run finishes its step and saves its checkpoint


class TrainAlgorithm(EngineAlgorithm):
    """Train Pix2Pix: trains on a chips folder and writes a ``.p2p`` model (``train``)."""
    COMMAND = TRAIN
    HIDDEN = frozenset({"LAMBDA_CYCLE", "LAMBDA_IDENTITY"})  # CycleGAN's (Train CycleGAN)
    CHIPS, OUTPUT_MODEL, OUTPUT_HTML = "CHIPS", "OUTPUT_MODEL", "OUTPUT_HTML"

    def name(self) -> str:
        """Stable id ``pix2pix:train`` (scripts and models use it; never translated)."""
        return "train"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Train Pix2Pix")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Train a Pix2Pix model on exported chips and save it as a .p2p file.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("pix2pix,deep learning,train,gan,u-net,patchgan,model").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Trains Pix2Pix (U-Net generator, 70×70 PatchGAN discriminator, GAN loss + λ·L1) on the chips "
            "folder written by <i>Export paired chips</i> (or an ArcGIS <i>Export Tiles</i> folder), and writes "
            "the epoch that scores best on the validation chips as one <b>.p2p</b> model file.</p>"
            "<p>Progress shows the losses of every step; each epoch ends with validation MAE, RMSE, PSNR and "
            "SSIM in the target's units. Cancel stops after the current step and keeps a checkpoint "
            "(<i>model</i>.p2p.ckpt); tick <b>Resume</b> to continue it.</p>"
            "<p><b>Epochs</b>: 50–200 is typical. <b>Batch size</b>: 1–16; larger needs more memory. "
            "<b>NGF</b> (advanced): 64 is the reference; 16–32 trains several times faster on a CPU. "
            "<b>λ L1</b>: 100 keeps outputs close to the target; lower values let the GAN add texture. "
            "<b>Precision</b> (advanced): auto trains in mixed precision on a GPU and in float32 on the CPU; "
            "bfloat16 needs a CPU with AVX512-BF16 or AMX (or a recent GPU) and is refused elsewhere.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        """Declare the parameters and outputs.

        Chips folder, model and report destinations, the ``train`` table's options, and the best-epoch and
        validation-metric outputs.
        """
        self.declare({
            self.CHIPS: lambda name, label: QgsProcessingParameterFile(name, label, behavior=FILE_FOLDER),
            self.OUTPUT_MODEL: lambda name, label: QgsProcessingParameterFileDestination(
                name, label, self.tr("Pix2Pix model (*.p2p)")),
            self.OUTPUT_HTML: lambda name, label: QgsProcessingParameterFileDestination(
                name, label, self.tr("HTML files (*.html)"), optional=True),
        })
        for name, (_, label) in self.numeric_outputs().items():
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(label)))

    def numeric_outputs(self) -> dict[str, tuple[str, str]]:
        """{output name: (key in the engine's result, label)} of the numbers the algorithm returns."""
        return {"BEST_EPOCH": ("best_epoch", "Best epoch"), "VAL_MAE": ("val_mae", "Validation MAE (target units)"),
                "VAL_PSNR": ("val_psnr", "Validation PSNR (dB)"), "VAL_SSIM": ("val_ssim", "Validation SSIM")}

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``train`` with a long grace period for the last checkpoint on cancel.

        Returns the model, report and the numbers of :meth:`numeric_outputs`.
        """
        chips = self.parameterAsFile(parameters, self.CHIPS, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        command = ["train", chips, output, *self.table_arguments(parameters, context),
                   *self.argv(self.OUTPUT_HTML, report)]
        result = run_engine(command, feedback, [output, report] if report else [output], TRAIN_GRACE_S)
        numbers = {name: result.get(key) for name, (key, _) in self.numeric_outputs().items()}
        outputs = {self.OUTPUT_MODEL: output, **numbers}
        if report:
            outputs[self.OUTPUT_HTML] = report
        return outputs

"""Pix2Pix › Train Pix2Pix (``pix2pix:train``)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from ..compat import FILE_FOLDER, NUMBER_DOUBLE, NUMBER_INTEGER, make_advanced
from ..engine import run_engine
from .base import EngineAlgorithm

DEVICES = ["auto", "cpu", "cuda"]
GAN_MODES = ["vanilla", "lsgan", "hinge"]
UPSAMPLES = ["transpose", "resize"]
TRAIN_GRACE_S = 120.0  # a cancelled run finishes its step and saves its checkpoint


class TrainAlgorithm(EngineAlgorithm):
    CHIPS, OUTPUT_MODEL, EPOCHS, BATCH_SIZE = "CHIPS", "OUTPUT_MODEL", "EPOCHS", "BATCH_SIZE"
    LR, LAMBDA_L1, NGF, DEVICE, RESUME, SEED = "LR", "LAMBDA_L1", "NGF", "DEVICE", "RESUME", "SEED"
    OUTPUT_HTML = "OUTPUT_HTML"
    GAN_MODE, LAMBDA_FEAT, UPSAMPLE, D_SCALES = "GAN_MODE", "LAMBDA_FEAT", "UPSAMPLE", "D_SCALES"
    SPECTRAL_NORM = "SPECTRAL_NORM"

    def name(self) -> str:
        return "train"

    def displayName(self) -> str:
        return self.tr("Train Pix2Pix")

    def shortDescription(self) -> str:
        return self.tr("Train a Pix2Pix model on exported chips and save it as a .p2p file.")

    def tags(self) -> list[str]:
        return self.tr("pix2pix,deep learning,train,gan,u-net,patchgan,model").split(",")

    def help_text(self) -> str:
        return self.tr(
            "<p>Trains Pix2Pix (U-Net generator, 70×70 PatchGAN discriminator, GAN loss + λ·L1) on the chips "
            "folder written by <i>Export paired chips</i> (or an ArcGIS <i>Export Tiles</i> folder), and writes "
            "the epoch that scores best on the validation chips as one <b>.p2p</b> model file.</p>"
            "<p>Progress shows the losses of every step; each epoch ends with validation MAE, RMSE, PSNR and "
            "SSIM in the target's units. Cancel stops after the current step and keeps a checkpoint "
            "(<i>model</i>.p2p.ckpt); tick <b>Resume</b> to continue it.</p>"
            "<p><b>Epochs</b>: 50–200 is typical. <b>Batch size</b>: 1–16; larger needs more memory. "
            "<b>NGF</b> (advanced): 64 is the reference; 16–32 trains several times faster on a CPU. "
            "<b>λ L1</b>: 100 keeps outputs close to the target; lower values let the GAN add texture.</p>"
            "<p>pix2pixHD options (advanced): <b>Upsampling</b> <i>resize</i> (bilinear resize + convolution) "
            "avoids the checkerboard pattern of transposed convolutions; <b>Discriminator scales</b> 2–3 judge "
            "the result also at half and quarter resolution; <b>λ feature matching</b> (pix2pixHD: 10) steadies "
            "training; <b>GAN loss</b> lsgan or hinge, and <b>spectral normalisation</b>, steady the "
            "discriminator. BENCHMARKS.md, “Choosing the defaults”, measures each on held-out regions.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        add = self.addParameter
        add(QgsProcessingParameterFile(self.CHIPS, self.tr("Chips folder (from Export paired chips)"),
                                       behavior=FILE_FOLDER))
        add(QgsProcessingParameterNumber(self.EPOCHS, self.tr("Epochs"), NUMBER_INTEGER, 50, minValue=1,
                                         maxValue=100000))
        add(QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"), NUMBER_INTEGER, 4, minValue=1,
                                         maxValue=1024))
        add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), DEVICES, defaultValue="auto",
                                       usesStaticStrings=True))
        add(QgsProcessingParameterBoolean(self.RESUME, self.tr("Resume from the checkpoint"), False))
        add(make_advanced(QgsProcessingParameterNumber(self.LR, self.tr("Learning rate"), NUMBER_DOUBLE, 2e-4,
                                                       minValue=1e-7, maxValue=1.0)))
        add(make_advanced(QgsProcessingParameterNumber(self.LAMBDA_L1, self.tr("λ L1 (weight of the L1 loss)"),
                                                       NUMBER_DOUBLE, 100.0, minValue=0.0)))
        add(make_advanced(QgsProcessingParameterNumber(self.NGF, self.tr("NGF (generator filters)"),
                                                       NUMBER_INTEGER, 64, minValue=1, maxValue=512)))
        add(make_advanced(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), NUMBER_INTEGER, 0,
                                                       minValue=0)))
        add(make_advanced(QgsProcessingParameterEnum(self.UPSAMPLE, self.tr("Upsampling"), UPSAMPLES,
                                                     defaultValue="transpose", usesStaticStrings=True)))
        add(make_advanced(QgsProcessingParameterNumber(self.D_SCALES, self.tr("Discriminator scales"),
                                                       NUMBER_INTEGER, 1, minValue=1, maxValue=3)))
        add(make_advanced(QgsProcessingParameterEnum(self.GAN_MODE, self.tr("GAN loss"), GAN_MODES,
                                                     defaultValue="vanilla", usesStaticStrings=True)))
        add(make_advanced(QgsProcessingParameterNumber(self.LAMBDA_FEAT, self.tr("λ feature matching"),
                                                       NUMBER_DOUBLE, 0.0, minValue=0.0)))
        add(make_advanced(QgsProcessingParameterBoolean(self.SPECTRAL_NORM,
                                                        self.tr("Spectral normalisation in the discriminator"),
                                                        False)))
        add(QgsProcessingParameterFileDestination(self.OUTPUT_MODEL, self.tr("Model file"),
                                                  self.tr("Pix2Pix model (*.p2p)")))
        add(QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Training report"),
                                                  self.tr("HTML files (*.html)"), optional=True))
        self.addOutput(QgsProcessingOutputNumber("BEST_EPOCH", self.tr("Best epoch")))
        self.addOutput(QgsProcessingOutputNumber("VAL_MAE", self.tr("Validation MAE (target units)")))
        self.addOutput(QgsProcessingOutputNumber("VAL_PSNR", self.tr("Validation PSNR (dB)")))
        self.addOutput(QgsProcessingOutputNumber("VAL_SSIM", self.tr("Validation SSIM")))
        for parameter, text in {
            "CHIPS": "The OUTPUT folder of Export paired chips (with chips.json), or a folder with images/ and "
                     "images2/ exported by ArcGIS Pro.",
            "EPOCHS": "Passes over the training chips. The learning rate is constant for the first half, then "
                      "decays linearly to zero.",
            "BATCH_SIZE": "Chips per optimisation step.",
            "DEVICE": "auto uses the first CUDA GPU when PyTorch sees one, else the CPU.",
            "RESUME": "Continue the training saved in MODEL.p2p.ckpt (after a cancel or to add epochs).",
            "LR": "Adam learning rate (β1 0.5), 0.0002 in the pix2pix paper.",
            "LAMBDA_L1": "Weight of the L1 term against the adversarial term (100 in the paper).",
            "NGF": "Filters in the generator's first layer; cost grows with its square.",
            "SEED": "Seed of initialisation, chip order and augmentation: the same seed repeats a CPU run.",
            "UPSAMPLE": "transpose: the reference's transposed convolutions (can leave a 2-pixel checkerboard); "
                        "resize: bilinear resize + 3×3 convolution, no checkerboard, ~1.4× slower.",
            "D_SCALES": "PatchGAN discriminators at full, half and quarter resolution (pix2pixHD). Chips must be "
                        "at least 32 px at the coarsest scale (64 px for 2, 128 px for 3).",
            "GAN_MODE": "vanilla: binary cross-entropy (the reference); lsgan: least squares (pix2pixHD); "
                        "hinge: usually with spectral normalisation.",
            "LAMBDA_FEAT": "Weight of pix2pixHD's feature-matching loss; 0 turns it off, pix2pixHD uses 10.",
            "SPECTRAL_NORM": "Bounds each discriminator layer (Miyato et al. 2018); steadies GAN training.",
            "OUTPUT_MODEL": "The .p2p model file that Translate raster uses.",
            "OUTPUT_HTML": "A report with the metrics per epoch, loss curves and validation previews.",
        }.items():
            self.parameterDefinition(parameter).setHelp(self.tr(text))

    def processAlgorithm(self, parameters: dict[str, Any], context: Any, feedback: Any) -> dict[str, Any]:
        chips = self.parameterAsFile(parameters, self.CHIPS, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        command = [
            "train", chips, output,
            "--epochs", str(self.parameterAsInt(parameters, self.EPOCHS, context)),
            "--batch-size", str(self.parameterAsInt(parameters, self.BATCH_SIZE, context)),
            "--lr", repr(self.parameterAsDouble(parameters, self.LR, context)),
            "--lambda-l1", repr(self.parameterAsDouble(parameters, self.LAMBDA_L1, context)),
            "--ngf", str(self.parameterAsInt(parameters, self.NGF, context)),
            "--device", self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            "--seed", str(self.parameterAsInt(parameters, self.SEED, context)),
            "--upsample", self.parameterAsEnumString(parameters, self.UPSAMPLE, context) or "transpose",
            "--d-scales", str(self.parameterAsInt(parameters, self.D_SCALES, context)),
            "--gan-mode", self.parameterAsEnumString(parameters, self.GAN_MODE, context) or "vanilla",
            "--lambda-feat", repr(self.parameterAsDouble(parameters, self.LAMBDA_FEAT, context)),
            "--spectral-norm" if self.parameterAsBoolean(parameters, self.SPECTRAL_NORM, context)
            else "--no-spectral-norm",
        ]
        if self.parameterAsBoolean(parameters, self.RESUME, context):
            command.append("--resume")
        if report:
            command += ["--report", report]
        result = run_engine(command, feedback, [output, report] if report else [output], TRAIN_GRACE_S)
        outputs = {
            self.OUTPUT_MODEL: output,
            "BEST_EPOCH": result.get("best_epoch"),
            "VAL_MAE": result.get("val_mae"),
            "VAL_PSNR": result.get("val_psnr"),
            "VAL_SSIM": result.get("val_ssim"),
        }
        if report:
            outputs[self.OUTPUT_HTML] = report
        return outputs

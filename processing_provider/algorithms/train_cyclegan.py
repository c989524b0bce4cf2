"""Pix2Pix › Train CycleGAN (``pix2pix:traincyclegan``): the ``train`` command with ``--model cyclegan``."""

from __future__ import annotations

from .train import TrainAlgorithm


class TrainCycleGANAlgorithm(TrainAlgorithm):
    """Train CycleGAN: trains both generators on an unpaired chips folder and writes one ``.p2p`` (``train``).

    The same engine command, progress, cancel, checkpoint and resume as Train Pix2Pix; only the
    model type is fixed and the Pix2Pix-only options (they need pairs) are not shown.
    """

    HIDDEN = frozenset({"LAMBDA_L1", "LAMBDA_FEAT"})  # losses against the paired target: CycleGAN has none
    FIXED = {"MODEL_TYPE": "cyclegan"}

    def name(self) -> str:
        """Stable id ``pix2pix:traincyclegan`` (scripts and models use it; never translated)."""
        return "traincyclegan"

    def displayName(self) -> str:
        """The tool's translated name in the Processing toolbox."""
        return self.tr("Train CycleGAN (unpaired)")

    def shortDescription(self) -> str:
        """One translated line: the toolbox tooltip and the modeler's description."""
        return self.tr("Train a CycleGAN on unpaired chips of two rasters; one .p2p translates A→B and B→A.")

    def tags(self) -> list[str]:
        """Translated words the toolbox search matches besides the name."""
        return self.tr("cyclegan,unpaired,deep learning,train,gan,resnet,patchgan,model,sar,domain").split(",")

    def help_text(self) -> str:
        """What the tool does, what each option trades and typical values (translated HTML)."""
        return self.tr(
            "<p>Trains a CycleGAN (Zhu et al. 2017) on the folder written by <i>Export unpaired chips</i> (or an "
            "ArcGIS CycleGAN export with A/images and B/images): two rasters that need not overlap, be taken at "
            "the same time or register exactly. Two generators (A→B and B→A, ResNet blocks as the reference by "
            "default) and two PatchGAN discriminators learn with a least-squares GAN loss, cycle consistency "
            "(A→B→A should give A back, weight <b>λ cycle</b>, 10) and an identity loss (0.5 × λ cycle). The "
            "one <b>.p2p</b> file translates both ways: <i>Translate raster</i> with <b>Direction</b> a2b or "
            "b2a.</p>"
            "<p>Use it when no pixel-aligned pair exists (SAR and optical months apart, a historic scan that does "
            "not register, two sensors over different areas). Where aligned pairs exist, Train Pix2Pix learns "
            "the exact mapping and is usually more accurate (BENCHMARKS.md, docs/cyclegan.md).</p>"
            "<p>Progress shows the losses of every step. Without pairs no validation metric picks an epoch: the "
            "last one is kept, as in the reference. Cancel stops after the current step and keeps a checkpoint "
            "(<i>model</i>.p2p.ckpt); tick <b>Resume</b> to continue it.</p>"
            "<p><b>Epochs</b>: the reference trains 100 + 100; a CPU needs far fewer, small chips and a small "
            "<b>NGF</b> (advanced; 16–32). Each step costs about four Pix2Pix steps (two generators, each run "
            "three times). <b>Precision</b> (advanced): as in Train Pix2Pix.</p>"
        )

    def numeric_outputs(self) -> dict[str, tuple[str, str]]:
        """The epoch kept (the last: without pairs no validation metric picks one) and the validation chips'
        cycle errors, the one check CycleGAN can make without pairs."""
        return {"KEPT_EPOCH": ("kept_epoch", "Epoch kept (the last)"),
                "VAL_CYCLE_A": ("val_cycle_A", "Validation cycle error A→B→A (L1, normalised units)"),
                "VAL_CYCLE_B": ("val_cycle_B", "Validation cycle error B→A→B (L1, normalised units)")}

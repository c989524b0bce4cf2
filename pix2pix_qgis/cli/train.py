"""``pix2pix-qgis train CHIPS OUTPUT_MODEL``: the command line of :func:`training.train`.

Registered by ``cli.build_parser`` through :func:`add_train_parser`; like every command,
its handler takes ``(args, progress)`` and returns the result dict that the CLI prints or
sends as the JSON ``result`` line.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..contract.tables import TRAIN
from ..core.launch import Launch
from ..core.progress import Progress
from .options import Parser, add_command, options_of, values


def add_train_parser(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    """Register the ``train`` subcommand."""
    add_command(
        commands, common, TRAIN, _run_train, help="train a Pix2Pix (or, with --model cyclegan, a CycleGAN) model",
        description="Train a Pix2Pix model (U-Net generator, 70×70 PatchGAN) on CHIPS, the folder written by "
                    "'export' (or an Esri Export Tiles folder with images/ and images2/), and write the epoch that "
                    "scores best on the validation chips to OUTPUT_MODEL (.p2p). With --model cyclegan, train a "
                    "CycleGAN (two ResNet generators A→B and B→A, two PatchGANs, cycle consistency) on the unpaired "
                    "chips of 'export-unpaired' (or Esri's A/images and B/images) and write both directions to "
                    "OUTPUT_MODEL; translate --direction b2a uses the second. The training state is saved in "
                    "OUTPUT_MODEL.ckpt at epoch ends (at most every 2 minutes), at the end and when cancelled; "
                    "--resume continues from it. Under torchrun either model trains data-parallel (each process "
                    "its own share of the chips, gradients averaged, the first process writes): "
                    "torchrun --nproc-per-node N -m pix2pix_qgis train … [--model cyclegan] (docs/scale-out.md).",
    )


def _run_train(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..core.paths import check_run_paths
    from ..model.checkpoint import checkpoint_path
    from ..train.config import TrainConfig
    from ..train.cyclegan import train_cyclegan
    from ..train.loop import train

    given = values(TRAIN, args)
    config = options_of(TrainConfig, given)
    chips, output, resume = given["chips"], given["output_model"], given["resume"]
    # The report is written after training: its path is checked now, not after hours of work.
    check_run_paths(inputs={"chips folder": chips}, files={
        "model": output, "checkpoint": checkpoint_path(output), "report": given["report"]})
    launch = Launch.from_env()
    cyclegan = config.model_type == "cyclegan"
    if launch is None:
        result = (train_cyclegan if cyclegan else train)(chips, output, config, progress, resume=resume)
    else:  # one rank of `torchrun -m pix2pix_qgis train …`
        from ..scale.cycle_ddp import train_cyclegan_distributed
        from ..scale.ddp import train_distributed

        run = train_cyclegan_distributed if cyclegan else train_distributed
        result = run(launch, chips, output, config, progress, resume=resume)
        if launch.rank:
            return {}  # rank 0 reports the run
    if given["report"]:
        from ..core.html import write_html
        from ..train.report import training_report

        result["report"] = write_html(given["report"], training_report(result["output"]))
    return result

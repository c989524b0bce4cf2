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
        commands, common, TRAIN, _run_train, help="train a Pix2Pix model on exported chips",
        description="Train a Pix2Pix model (U-Net generator, 70×70 PatchGAN) on CHIPS, the folder written by "
                    "'export' (or an Esri Export Tiles folder with images/ and images2/), and write the epoch that "
                    "scores best on the validation chips to OUTPUT_MODEL (.p2p). The training state is saved in "
                    "OUTPUT_MODEL.ckpt at epoch ends (at most every 2 minutes), at the end and when cancelled; "
                    "--resume continues from it. Under torchrun it trains data-parallel: "
                    "torchrun --nproc-per-node N -m pix2pix_qgis train … (docs/scale-out.md).",
    )


def _run_train(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..train.config import TrainConfig
    from ..train.loop import train

    given = values(TRAIN, args)
    config = options_of(TrainConfig, given)
    chips, output, resume = given["chips"], given["output_model"], given["resume"]
    launch = Launch.from_env()
    if launch is None:
        result = train(chips, output, config, progress, resume=resume)
    else:  # one rank of `torchrun -m pix2pix_qgis train …`
        from ..scale.ddp import train_distributed

        result = train_distributed(launch, chips, output, config, progress, resume=resume)
        if launch.rank:
            return {}  # rank 0 reports the run
    if given["report"]:
        from ..core.html import write_html
        from ..train.report import training_report

        result["report"] = write_html(given["report"], training_report(result["output"]))
    return result

"""Command line of distributed translation: ``translate … --part I/N`` and ``assemble PARTS… OUTPUT.vrt``.

``cli.build_parser`` registers ``assemble`` through :func:`add_assemble_parser`; the
translate command runs one part through :func:`part_of` and :func:`translate_part_from_args`.
Handlers take ``(args, progress)`` and return the result dict, like every command.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..contract.tables import ASSEMBLE
from ..core.launch import Launch
from ..core.progress import Progress
from .options import Parser, add_command


def part_of(args: argparse.Namespace) -> tuple[int, int] | None:
    """The part this process translates: ``--part``, else its rank under torchrun, else None (the whole raster)."""
    if args.part:
        return args.part  # parsed and checked by ``scale.parts.parse_part``
    launch = Launch.from_env()
    return (launch.rank, launch.world_size) if launch else None


def translate_part_from_args(args: argparse.Namespace, spec: Any, part: tuple[int, int],
                             progress: Progress) -> dict[str, Any]:
    """Run one part; under torchrun, ``auto``/``cuda`` means the GPU of this process's LOCAL_RANK."""
    from ..scale.parts import translate_part

    launch = Launch.from_env()
    if launch is not None and spec.device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            spec = dataclasses.replace(spec, device=f"cuda:{launch.local_rank % torch.cuda.device_count()}")
    return translate_part(args.input, args.model, args.output, dataclasses.replace(spec, part=part), progress)


def add_assemble_parser(commands: argparse._SubParsersAction[Parser], common: Parser) -> None:
    """Register the ``assemble`` subcommand."""
    add_command(commands, common, ASSEMBLE, _run_assemble,
                help="join the parts of a distributed translation (VRT, optional COG)",
                description="Check that the parts written by 'translate … FOLDER --part I/N' are complete and "
                            "consistent (all N, one run, one grid, no gap or overlap) and join them into OUTPUT "
                            "(.vrt, paths relative to it), and with --cog also into one Cloud Optimized GeoTIFF.")


def _run_assemble(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..scale.assemble import assemble_parts

    return assemble_parts(args.parts, args.output, args.cog, progress)

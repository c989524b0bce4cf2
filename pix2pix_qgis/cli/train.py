"""``pix2pix-qgis train CHIPS OUTPUT_MODEL``: the command line of :func:`training.train`.

Registered by ``cli.build_parser`` through :func:`add_train_parser`; like every command,
its handler takes ``(args, progress)`` and returns the result dict that the CLI prints or
sends as the JSON ``result`` line.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core.launch import Launch
from ..core.progress import Progress


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, not {value}")
    return value


def add_train_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register the ``train`` subcommand."""
    p = commands.add_parser(
        "train", parents=[common], help="train a Pix2Pix model on exported chips",
        description="Train a Pix2Pix model (U-Net generator, 70×70 PatchGAN) on CHIPS, the folder written by "
                    "'export' (or an Esri Export Tiles folder with images/ and images2/), and write the epoch that "
                    "scores best on the validation chips to OUTPUT_MODEL (.p2p). The training state is saved in "
                    "OUTPUT_MODEL.ckpt at epoch ends (at most every 2 minutes), at the end and when cancelled; "
                    "--resume continues from it. Under torchrun it trains data-parallel: "
                    "torchrun --nproc-per-node N -m pix2pix_qgis train … (docs/scale-out.md).",
    )
    p.add_argument("chips", metavar="CHIPS", help="chips folder from 'export'")
    p.add_argument("output", metavar="OUTPUT_MODEL", help="model package to write (.p2p)")
    p.add_argument("--epochs", type=_positive_int, default=50, help="epochs in total (default 50)")
    p.add_argument("--epochs-decay", type=int, default=None,
                   help="last epochs over which the learning rate decays linearly to 0 (default: half of --epochs)")
    p.add_argument("--batch-size", type=_positive_int, default=4, help="chips per step (default 4)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 0.0002)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    p.add_argument("--lambda-l1", type=float, default=100.0,
                   help="weight of the L1 term against the adversarial term (default 100)")
    p.add_argument("--gan-mode", choices=["vanilla", "lsgan"], default="vanilla",
                   help="adversarial loss: vanilla (BCE, the reference) or lsgan (least squares)")
    p.add_argument("--ngf", type=_positive_int, default=64,
                   help="generator filters in the first layer (default 64; 16–32 train ~4–16× faster on CPU)")
    p.add_argument("--ndf", type=_positive_int, default=64,
                   help="discriminator filters in the first layer (default 64)")
    p.add_argument("--depth", type=int, default=None,
                   help="U-Net levels; chip sides must be multiples of 2^depth (default: deepest ≤ 8 that fits)")
    p.add_argument("--norm", choices=["batch", "instance"], default="batch",
                   help="normalisation layers (default batch, as the reference)")
    p.add_argument("--no-dropout", action="store_true", help="train the generator without dropout")
    p.add_argument("--no-augment", action="store_true",
                   help="no flips and 90° rotations (use for imagery whose orientation matters, e.g. SAR look "
                        "direction or labelled maps)")
    p.add_argument("--best-metric", choices=["l1", "mae", "rmse", "psnr", "ssim"], default="l1",
                   help="validation metric that picks the epoch kept (default l1)")
    p.add_argument("--patience", type=_positive_int, default=None,
                   help="stop when the best metric has not improved for this many epochs (default: never)")
    p.add_argument("--validation", type=float, default=0.1,
                   help="held-out fraction for an Esri folder without chips.json (default 0.1)")
    p.add_argument("--device", default="auto", help="auto (default: CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, default=None,
                   help="processes reading chips (default: none on the CPU, up to 4 with CUDA)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, order and augmentation (default 0)")
    p.add_argument("--no-amp", action="store_true", help="on CUDA, train in float32 instead of mixed precision")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_MODEL.ckpt")
    p.add_argument("--checkpoint-minutes", type=float, default=2.0,
                   help="save the checkpoint at the first epoch end after this many minutes "
                        "(default 2; 0: every epoch)")
    p.add_argument("--report", metavar="HTML", help="also write an HTML report (metrics, losses, previews)")
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    from ..core.paths import check_run_paths
    from ..model.checkpoint import checkpoint_path
    from ..train.config import TrainConfig
    from ..train.loop import train

    # The report is written after training: its path is checked now, not after hours of work.
    check_run_paths(inputs={"chips folder": args.chips}, files={
        "model": args.output, "checkpoint": checkpoint_path(args.output), "report": args.report})

    config = TrainConfig(
        epochs=args.epochs, epochs_decay=args.epochs_decay, batch_size=args.batch_size, lr=args.lr,
        beta1=args.beta1, lambda_l1=args.lambda_l1, gan_mode=args.gan_mode, ngf=args.ngf, ndf=args.ndf,
        depth=args.depth, norm=args.norm, dropout=not args.no_dropout, augment=not args.no_augment,
        best_metric=args.best_metric, patience=args.patience, validation=args.validation, device=args.device,
        num_workers=args.workers, seed=args.seed, amp=not args.no_amp, checkpoint_minutes=args.checkpoint_minutes,
    )
    launch = Launch.from_env()
    if launch is None:
        result = train(args.chips, args.output, config, progress, resume=args.resume)
    else:  # one rank of `torchrun -m pix2pix_qgis train …`
        from ..scale.ddp import train_distributed

        result = train_distributed(launch, args.chips, args.output, config, progress, resume=args.resume)
        if launch.rank:
            return {}  # rank 0 reports the run
    if args.report:
        from ..core.html import write_html
        from ..train.report import training_report

        result["report"] = write_html(args.report, training_report(result["output"]))
    return result

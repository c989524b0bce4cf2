"""The train subcommand: arguments map onto TrainConfig and the handler returns the result dict."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pix2pix_qgis import Progress
from pix2pix_qgis.cli.train import add_train_parser
from pix2pix_qgis.model.package import read_package
from pix2pix_qgis.train.config import TrainConfig

from ..builders import mapping_chips


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="pix2pix-qgis")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--progress", default="none")
    add_train_parser(root.add_subparsers(dest="command", required=True), common)
    return root


def test_train_runs_with_the_options_given(tmp_path):
    chips = mapping_chips(tmp_path, size=256, tile=64)
    args = parser().parse_args([
        "train", str(chips), str(tmp_path / "m.p2p"), "--epochs", "2", "--epochs-decay", "1", "--batch-size", "2",
        "--lr", "0.001", "--lambda-l1", "50", "--ngf", "4", "--ndf", "4", "--norm", "instance", "--no-dropout",
        "--gan-mode", "hinge", "--best-metric", "psnr", "--seed", "3", "--device", "cpu", "--no-augment",
        "--lambda-feat", "5", "--upsample", "resize", "--d-scales", "2", "--spectral-norm",
    ])
    result = args.handler(args, Progress())
    assert Path(result["output"]).is_file() and result["epochs"] == 2 and result["best_metric"] == "psnr"
    config = read_package(result["output"])[0].training["config"]
    assert (config["epochs_decay"], config["batch_size"], config["lr"], config["lambda_l1"]) == (1, 2, 0.001, 50)
    assert (config["norm"], config["dropout"], config["gan_mode"], config["seed"], config["augment"]) == (
        "instance", False, "hinge", 3, False)
    assert (config["lambda_feat"], config["upsample"], config["d_scales"], config["spectral_norm"]) == (
        5.0, "resize", 2, True)
    resumed = parser().parse_args(["train", str(chips), str(tmp_path / "m.p2p"), "--epochs", "3", "--ngf", "4",
                                   "--ndf", "4", "--norm", "instance", "--no-dropout", "--upsample", "resize",
                                   "--d-scales", "2", "--spectral-norm", "--resume"])
    assert resumed.handler(resumed, Progress())["epochs"] == 3


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--batch-size", "x"], ["--norm", "group"], ["--d-scales", "4"],
                                 ["--upsample", "nearest"], ["--gan-mode", "wgan"]])
def test_bad_arguments_are_refused_by_the_parser(bad, capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "chips", "m.p2p", *bad])
    assert "error" in capsys.readouterr().err


def test_defaults_are_the_engines():
    """The command line adds no defaults of its own: each is TrainConfig's."""
    args = parser().parse_args(["train", "chips", "m.p2p"])
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "beta1": args.beta1,
             "lambda_l1": args.lambda_l1, "gan_mode": args.gan_mode, "lambda_feat": args.lambda_feat,
             "ngf": args.ngf, "ndf": args.ndf, "norm": args.norm, "dropout": not args.no_dropout,
             "upsample": args.upsample, "d_scales": args.d_scales, "spectral_norm": args.spectral_norm,
             "device": args.device, "seed": args.seed, "best_metric": args.best_metric, "augment": not args.no_augment,
             "checkpoint_minutes": args.checkpoint_minutes, "depth": args.depth, "patience": args.patience,
             "model_type": args.model, "lambda_cycle": args.lambda_cycle, "lambda_identity": args.lambda_identity,
             "pool_size": args.pool_size, "generator": args.generator, "resnet_blocks": args.resnet_blocks}
    engine = TrainConfig()
    assert TrainConfig(**given) == engine
    # Left to each model's reference (TrainConfig fills them in): pix2pix's here.
    assert (args.gan_mode, args.norm, args.generator) == (None, None, None)
    assert (engine.gan_mode, engine.norm, engine.generator) == ("vanilla", "batch", "unet")
    assert args.workers is None and engine.num_workers is None  # picked per device: none on the CPU
    assert args.resume is False

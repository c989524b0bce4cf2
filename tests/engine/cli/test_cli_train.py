"""The train subcommand: arguments map onto TrainConfig and the handler returns the result dict."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pix2pix_qgis import Progress
from pix2pix_qgis.cli.train import add_train_parser
from pix2pix_qgis.model.package import read_package

from ..data.test_dataset import mapping_chips


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="pix2pix-qgis")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--progress", default="none")
    add_train_parser(root.add_subparsers(dest="command", required=True), common)
    return root


def test_train_runs_with_the_options_given(tmp_path):
    chips = mapping_chips(tmp_path, size=128)
    args = parser().parse_args([
        "train", str(chips), str(tmp_path / "m.p2p"), "--epochs", "2", "--epochs-decay", "1", "--batch-size", "2",
        "--lr", "0.001", "--lambda-l1", "50", "--ngf", "4", "--ndf", "4", "--norm", "instance", "--no-dropout",
        "--gan-mode", "lsgan", "--best-metric", "psnr", "--seed", "3", "--device", "cpu", "--no-augment",
    ])
    result = args.handler(args, Progress())
    assert Path(result["output"]).is_file() and result["epochs"] == 2 and result["best_metric"] == "psnr"
    config = read_package(result["output"])[0].training["config"]
    assert (config["epochs_decay"], config["batch_size"], config["lr"], config["lambda_l1"]) == (1, 2, 0.001, 50)
    assert (config["norm"], config["dropout"], config["gan_mode"], config["seed"], config["augment"]) == (
        "instance", False, "lsgan", 3, False)
    resumed = parser().parse_args(["train", str(chips), str(tmp_path / "m.p2p"), "--epochs", "3", "--ngf", "4",
                                   "--ndf", "4", "--norm", "instance", "--no-dropout", "--resume"])
    assert resumed.handler(resumed, Progress())["epochs"] == 3


@pytest.mark.parametrize("bad", [["--epochs", "0"], ["--batch-size", "x"], ["--norm", "group"]])
def test_bad_arguments_are_refused_by_the_parser(bad, capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "chips", "m.p2p", *bad])
    assert "error" in capsys.readouterr().err


def test_defaults_are_the_reference_ones():
    args = parser().parse_args(["train", "chips", "m.p2p"])
    assert (args.epochs, args.batch_size, args.lr, args.beta1, args.lambda_l1, args.ngf, args.ndf) == (
        50, 4, 2e-4, 0.5, 100.0, 64, 64)
    assert (args.gan_mode, args.norm, args.no_dropout, args.device, args.resume) == ("vanilla", "batch", False,
                                                                                      "auto", False)
    assert args.workers is None  # TrainConfig picks: none on the CPU, some with CUDA

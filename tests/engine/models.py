"""Real ``.p2p`` packages for tests, written with the package API (no training needed)."""

from __future__ import annotations

from pathlib import Path

import torch

from pix2pix_qgis.data.normalization import Normalization
from pix2pix_qgis.model.card import BandsCard, GridCard, ModelCard
from pix2pix_qgis.model.discriminators import DiscriminatorSpec
from pix2pix_qgis.model.generators import build_generator
from pix2pix_qgis.model.networks import GeneratorSpec, init_weights
from pix2pix_qgis.model.package import write_package


def write_model(path: Path, in_bands: int = 3, out_bands: int = 3, depth: int = 4, ngf: int = 8,
                chip: int = 64, in_dtype: str = "uint8", out_dtype: str = "uint8",
                out_nodata: float | None = None, in_range: tuple[float, float] = (0.0, 255.0),
                out_range: tuple[float, float] = (0.0, 255.0), seed: int = 0, norm: str = "batch",
                upsample: str = "transpose", grid: dict | None = None) -> Path:
    """An untrained but complete model package: random generator weights (seeded), eval-ready."""
    spec = GeneratorSpec(in_bands, out_bands, depth, ngf, norm, True, upsample)
    generator = build_generator(spec, torch.Generator().manual_seed(seed))
    # Weights 10× the training init, so the untrained net's output varies strongly with its
    # input and context (like a trained one) instead of sitting at tanh(0).
    init_weights(generator, gain=0.06, generator=torch.Generator().manual_seed(seed))
    norm_in = Normalization((in_range[0],) * in_bands, (in_range[1],) * in_bands)
    norm_out = Normalization((out_range[0],) * out_bands, (out_range[1],) * out_bands)
    card = ModelCard(
        generator=spec,
        chip_size=chip,
        input=BandsCard(tuple(range(1, in_bands + 1)), in_dtype, None, norm_in),
        output=BandsCard(tuple(range(1, out_bands + 1)), out_dtype, out_nodata, norm_out),
        grid=None if grid is None else GridCard.from_dict(grid),
        discriminator=DiscriminatorSpec(in_bands + out_bands, ndf=8),
        training={"epochs": 0, "chips": {"path": "test", "layout": "chips.json", "train": 0, "validation": 0}},
    )
    return write_package(path, card, generator.state_dict(), b"", b"")


def write_cyclegan_model(path: Path, bands_a: int = 3, bands_b: int = 1, blocks: int = 1, ngf: int = 4,
                         chip: int = 32, seed: int = 0) -> Path:
    """An untrained but complete CycleGAN package: ResNet generators A→B (uint8) and B→A (float32 heights)."""
    from pix2pix_qgis.model.generators import build_generator as build_any
    from pix2pix_qgis.model.resnet import ResnetSpec

    a2b, b2a = ResnetSpec(bands_a, bands_b, blocks, ngf), ResnetSpec(bands_b, bands_a, blocks, ngf)
    side_a = BandsCard(tuple(range(1, bands_a + 1)), "uint8", 0.0, Normalization((0.0,) * bands_a, (255.0,) * bands_a))
    side_b = BandsCard((1,) * bands_b, "float32", -9999.0, Normalization((-50.0,) * bands_b, (900.0,) * bands_b))
    card = ModelCard(generator=a2b, chip_size=chip, input=side_a, output=side_b, model_type="cyclegan",
                     generator_b2a=b2a, discriminator=DiscriminatorSpec(bands_b, ndf=4, norm="instance"),
                     discriminator_b2a=DiscriminatorSpec(bands_a, ndf=4, norm="instance"),
                     training={"epochs": 0})
    weights = [build_any(spec, torch.Generator().manual_seed(seed + i)).state_dict()
               for i, spec in enumerate((a2b, b2a))]
    return write_package(path, card, weights[0], b"", b"", b2a_state=weights[1])

"""Networks: the reference's module tree and key names, the bias/init/dropout rules, chip sizes, the
resize-conv generator, and the multi-scale, spectrally normalised discriminators."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pix2pix_qgis import Pix2PixError
from pix2pix_qgis.evaluate.metrics import checkerboard_share
from pix2pix_qgis.model.discriminators import (
    DiscriminatorSpec,
    MultiscaleDiscriminator,
    build_discriminator,
    legacy_state,
    patchgan_output_size,
)
from pix2pix_qgis.model.generators import build_generator
from pix2pix_qgis.model.networks import (
    GeneratorSpec,
    UnetGenerator,
    check_chip_size,
    count_parameters,
    deepest_fit,
)

# Appendix A of ../shared/research/pix2pix.md: unet_256, norm=batch, 3→3, ngf=64 (weights only).
_L = "model.model.1.model."
_N = "3.model."
UNET_256_WEIGHTS = [
    ("model.model.0.weight", (64, 3, 4, 4)),
    (_L + "1.weight", (128, 64, 4, 4)),
    (_L + "2.weight", (128,)),
    (_L + _N + "1.weight", (256, 128, 4, 4)),
    (_L + _N + "2.weight", (256,)),
    (_L + _N * 2 + "1.weight", (512, 256, 4, 4)),
    (_L + _N * 2 + "2.weight", (512,)),
    (_L + _N * 3 + "1.weight", (512, 512, 4, 4)),
    (_L + _N * 3 + "2.weight", (512,)),
    (_L + _N * 4 + "1.weight", (512, 512, 4, 4)),
    (_L + _N * 4 + "2.weight", (512,)),
    (_L + _N * 5 + "1.weight", (512, 512, 4, 4)),
    (_L + _N * 5 + "2.weight", (512,)),
    (_L + _N * 6 + "1.weight", (512, 512, 4, 4)),
    (_L + _N * 6 + "3.weight", (512, 512, 4, 4)),
    (_L + _N * 6 + "4.weight", (512,)),
    (_L + _N * 5 + "5.weight", (1024, 512, 4, 4)),
    (_L + _N * 5 + "6.weight", (512,)),
    (_L + _N * 4 + "5.weight", (1024, 512, 4, 4)),
    (_L + _N * 4 + "6.weight", (512,)),
    (_L + _N * 3 + "5.weight", (1024, 512, 4, 4)),
    (_L + _N * 3 + "6.weight", (512,)),
    (_L + _N * 2 + "5.weight", (1024, 256, 4, 4)),
    (_L + _N * 2 + "6.weight", (256,)),
    (_L + _N + "5.weight", (512, 128, 4, 4)),
    (_L + _N + "6.weight", (128,)),
    (_L + "5.weight", (256, 64, 4, 4)),
    (_L + "6.weight", (64,)),
    ("model.model.3.weight", (128, 3, 4, 4)),
    ("model.model.3.bias", (3,)),
]
BN_BUFFERS = ("bias", "running_mean", "running_var", "num_batches_tracked")
PATCHGAN_WEIGHTS = [
    ("model.0.weight", (64, 6, 4, 4)), ("model.0.bias", (64,)), ("model.2.weight", (128, 64, 4, 4)),
    ("model.3.weight", (128,)), ("model.5.weight", (256, 128, 4, 4)), ("model.6.weight", (256,)),
    ("model.8.weight", (512, 256, 4, 4)), ("model.9.weight", (512,)),
    ("model.11.weight", (1, 512, 4, 4)), ("model.11.bias", (1,)),
]


def _with_bn_entries(weights: list[tuple[str, tuple[int, ...]]]) -> set[str]:
    keys = set()
    for key, shape in weights:
        keys.add(key)
        if len(shape) == 1 and key.endswith(".weight"):  # a BatchNorm
            keys.update(key[: -len("weight")] + buffer for buffer in BN_BUFFERS)
    return keys


def test_default_generator_has_the_reference_unet_256_keys_and_shapes():
    state = build_generator(GeneratorSpec()).state_dict()
    assert set(state) == _with_bn_entries(UNET_256_WEIGHTS)
    assert len(state) == 82
    for key, shape in UNET_256_WEIGHTS:
        assert tuple(state[key].shape) == shape, key


def test_parameter_counts_match_the_reference():
    assert count_parameters(UnetGenerator(GeneratorSpec())) == 54_413_955
    assert count_parameters(UnetGenerator(GeneratorSpec(depth=7))) == 41_828_995
    instance = UnetGenerator(GeneratorSpec(norm="instance"))
    assert count_parameters(instance) == 54_409_603 and len(instance.state_dict()) == 32
    assert count_parameters(build_discriminator(DiscriminatorSpec(6))) == 2_768_705


def test_one_scale_discriminator_is_the_reference_patchgan_with_a_30_by_30_output_for_256_px():
    state = build_discriminator(DiscriminatorSpec(6)).state_dict()
    assert set(state) == {f"scales.0.{key}" for key in _with_bn_entries(PATCHGAN_WEIGHTS)}
    for key, shape in PATCHGAN_WEIGHTS:
        assert tuple(state[f"scales.0.{key}"].shape) == shape, key
    small = build_discriminator(DiscriminatorSpec(6, ndf=4))
    [[*features, logits]] = small(torch.zeros(1, 6, 256, 256))
    assert logits.shape == (1, 1, 30, 30)
    assert [f.shape[1] for f in features] == [4, 8, 16, 32]  # after each LeakyReLU
    assert torch.equal(logits, small.scales[0](torch.zeros(1, 6, 256, 256)))
    instance = build_discriminator(DiscriminatorSpec(6, norm="instance")).state_dict()
    assert set(instance) == {f"scales.0.model.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias")}


def test_reference_checkpoint_layout_loads_strictly_and_reproduces_outputs():
    source = build_generator(GeneratorSpec(ngf=8), torch.Generator().manual_seed(1)).eval()
    target = UnetGenerator(GeneratorSpec(ngf=8)).eval()
    target.load_state_dict(source.state_dict(), strict=True)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    assert torch.equal(source(x), target(x))


def test_bias_only_with_instance_norm_except_first_d_conv_and_last_layers():
    batch = build_generator(GeneratorSpec(ngf=8))
    convs = [m for m in batch.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with_bias = [m for m in convs if m.bias is not None]
    assert with_bias == [batch.model.model[3]]  # only the outermost up conv, before Tanh
    assert batch.model.model[0].bias is None  # the first down conv, though no norm follows it
    instance = build_generator(GeneratorSpec(ngf=8, norm="instance"))
    assert all(m.bias is not None for m in instance.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_init_is_normal_0_02_and_bn_weights_around_1():
    net = build_generator(GeneratorSpec(ngf=16), torch.Generator().manual_seed(0)).requires_grad_(False)
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(float(weights.mean())) < 1e-3 and abs(float(weights.std()) - 0.02) < 1e-3
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_weights = torch.cat([m.weight for m in bns])
    assert abs(float(bn_weights.mean()) - 1.0) < 0.01 and 0.01 < float(bn_weights.std()) < 0.03
    assert all(float(m.bias.abs().max()) == 0 for m in bns)
    assert float(net.model.model[3].bias.abs().max()) == 0


def test_init_is_seeded_without_touching_global_rng():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = build_generator(GeneratorSpec(ngf=4, depth=5), torch.Generator().manual_seed(3))
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = build_generator(GeneratorSpec(ngf=4, depth=5), torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _dropout_levels(net: UnetGenerator) -> list[int]:
    levels, block, level = [], net.model, 0
    while True:
        if any(isinstance(m, nn.Dropout) for m in block.model.children()):
            levels.append(level)
        inner = [m for m in block.model.children() if m.__class__.__name__ == "UnetSkipConnectionBlock"]
        if not inner:
            return levels
        block, level = inner[0], level + 1


def test_dropout_sits_on_the_512_filter_levels_around_the_innermost_as_the_reference():
    assert _dropout_levels(UnetGenerator(GeneratorSpec(ngf=4))) == [4, 5, 6]
    assert _dropout_levels(UnetGenerator(GeneratorSpec(ngf=4, depth=7))) == [4, 5]
    plain = UnetGenerator(GeneratorSpec(ngf=4, dropout=False))
    assert _dropout_levels(plain) == []
    assert set(plain.state_dict()) == set(UnetGenerator(GeneratorSpec(ngf=4)).state_dict())


@pytest.mark.parametrize(("depth", "height", "width"), [(5, 32, 32), (5, 96, 96), (5, 32, 64), (6, 128, 64),
                                                         (3, 24, 24), (2, 12, 20)])
def test_any_chip_size_multiple_of_two_to_the_depth_works(depth, height, width):
    net = build_generator(GeneratorSpec(in_channels=4, out_channels=1, depth=depth, ngf=4)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 4, height, width) * 2 - 1)
    assert out.shape == (2, 1, height, width)
    assert float(out.abs().max()) <= 1.0


@pytest.mark.parametrize(("depth", "height", "width"), [(5, 48, 48), (8, 128, 128), (5, 32, 40)])
def test_other_chip_sizes_give_a_clear_error(depth, height, width):
    net = UnetGenerator(GeneratorSpec(depth=depth, ngf=4))
    with pytest.raises(Pix2PixError, match=rf"multiples of 2\^{depth} = {2 ** depth} px"):
        net(torch.zeros(1, 3, height, width))


def test_the_error_suggests_a_depth_that_fits():
    with pytest.raises(Pix2PixError, match="or use depth 4"):
        check_chip_size(48, 48, 5)
    assert deepest_fit(256) == 8 and deepest_fit(48) == 4 and deepest_fit(1024) == 8 and deepest_fit(30) == 0


def test_in_and_out_channels_are_independent():
    net = build_generator(GeneratorSpec(in_channels=1, out_channels=5, depth=4, ngf=4))
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 5, 16, 16)
    d = build_discriminator(DiscriminatorSpec(6, ndf=4))
    assert d.scales[0].model[0].in_channels == 6


@pytest.mark.parametrize("size", [24, 32, 64, 100, 256])
def test_patchgan_output_size_predicts_the_real_output(size):
    d = build_discriminator(DiscriminatorSpec(3, ndf=2)).eval()
    assert d(torch.zeros(1, 3, size, size))[0][-1].shape[-1] == patchgan_output_size(size)
    assert patchgan_output_size(16) < 1


@pytest.mark.parametrize("kwargs", [{"depth": 1}, {"depth": 11}, {"ngf": 0}, {"norm": "group"}, {"in_channels": 0}])
def test_bad_specs_are_refused(kwargs):
    with pytest.raises(Pix2PixError):
        GeneratorSpec(**kwargs)


def test_spec_round_trips_through_its_dict():
    spec = GeneratorSpec(4, 2, 6, 16, "instance", False, "resize")
    assert GeneratorSpec.from_dict(spec.to_dict()) == spec
    judge = DiscriminatorSpec(6, 16, 3, "instance", 3, True)
    assert DiscriminatorSpec.from_dict(judge.to_dict()) == judge


def test_records_written_before_the_options_existed_read_as_the_reference_layout():
    old = {"type": "unet", "in_channels": 3, "out_channels": 3, "depth": 5, "ngf": 4, "norm": "batch", "dropout": True}
    assert GeneratorSpec.from_dict(old).upsample == "transpose"
    old_judge = {"type": "patchgan", "n_layers": 3, "ndf": 4, "norm": "batch", "in_channels": 6}
    assert DiscriminatorSpec.from_dict(old_judge) == DiscriminatorSpec(6, 4)


def _up_convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)
            or (isinstance(m, nn.Sequential) and isinstance(m[0], nn.Upsample))]


def test_resize_upsampling_replaces_every_transposed_conv_by_a_bilinear_resize_and_a_3x3_conv():
    spec = GeneratorSpec(ngf=8, upsample="resize")
    net = build_generator(spec)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    ups = _up_convs(net)
    assert len(ups) == spec.depth
    for up in ups:
        assert up[0].mode == "bilinear" and up[0].scale_factor == 2
        assert up[1].kernel_size == (3, 3) and up[1].padding_mode == "reflect"
    reference = build_generator(GeneratorSpec(ngf=8))
    # Same weights elsewhere; each up conv holds in·out·9 weights instead of in·out·16.
    saved = sum(m.in_channels * m.out_channels * 7 for m in _up_convs(reference))
    assert count_parameters(reference) - count_parameters(net) == saved
    assert net.model.model[3][1].bias is not None  # the last conv before Tanh keeps its bias


def test_a_transposed_conv_paints_a_checkerboard_on_smooth_input_and_resize_conv_does_not():
    """Odena et al. 2016: at initialisation already, stride-2 transposed convs put energy at the 2-px period."""
    x = torch.linspace(-1, 1, 128)
    smooth = torch.stack([x[None, :] * x[:, None], x[None, :].expand(128, 128), x[:, None].expand(128, 128)])[None]
    shares = {}
    for upsample in ("transpose", "resize"):
        net = build_generator(GeneratorSpec(depth=5, ngf=16, upsample=upsample), torch.Generator().manual_seed(0))
        with torch.no_grad():
            shares[upsample] = checkerboard_share(net.eval()(smooth)[0].numpy())
    assert shares["transpose"] > 0.05
    assert shares["resize"] < shares["transpose"] / 20, shares


@pytest.mark.parametrize("size", [128, 192, 256])
def test_multiscale_discriminator_judges_the_pair_at_halving_resolutions(size):
    spec = DiscriminatorSpec(4, ndf=4, scales=3)
    d = build_discriminator(spec, torch.Generator().manual_seed(0))
    outputs = d(torch.rand(2, 4, size, size))
    assert len(outputs) == 3 and all(len(scale) == 5 for scale in outputs)
    assert [scale[-1].shape[-1] for scale in outputs] == [patchgan_output_size(size // 2**k) for k in range(3)]
    assert spec.logits_size(size) == outputs[-1][-1].shape[-1]
    pooled = torch.nn.functional.avg_pool2d(torch.ones(1, 4, size, size), 3, 2, 1, count_include_pad=False)
    assert torch.allclose(pooled, torch.ones_like(pooled))  # borders are averaged, not darkened by padding
    assert len(set(MultiscaleDiscriminator(spec).state_dict()) - set(d.state_dict())) == 0


def test_chips_too_small_for_the_coarsest_scale_are_refused_with_what_fits():
    DiscriminatorSpec(6, scales=2).check_chip_size(64)
    with pytest.raises(Pix2PixError, match="use D_SCALES 2 or export chips of at least 128 px"):
        DiscriminatorSpec(6, scales=3).check_chip_size(64)
    with pytest.raises(Pix2PixError, match="too small for the 70×70 PatchGAN"):
        DiscriminatorSpec(6).check_chip_size(16)


@pytest.mark.parametrize("kwargs", [{"scales": 0}, {"scales": 4}, {"ndf": 0}, {"norm": "group"}, {"n_layers": 0},
                                    {"in_channels": 0}])
def test_bad_discriminator_specs_are_refused(kwargs):
    with pytest.raises(Pix2PixError):
        DiscriminatorSpec(**{"in_channels": 6, **kwargs})


def test_spectral_norm_bounds_every_discriminator_conv_and_is_seeded_without_touching_global_rng():
    spec = DiscriminatorSpec(6, ndf=8, scales=2, spectral_norm=True)
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    d = build_discriminator(spec, torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(1), before)
    again = build_discriminator(spec, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(d.state_dict().values(), again.state_dict().values()))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 10 and all(hasattr(m.parametrizations, "weight") for m in convs)
    with torch.no_grad():
        for _ in range(20):  # power iterations run in training mode
            d(torch.rand(1, 6, 64, 64))
        for conv in convs:
            sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
            assert abs(float(sigma) - 1) < 0.05


def test_a_discriminator_state_saved_before_multiscale_loads_as_scale_0():
    old = build_discriminator(DiscriminatorSpec(6, ndf=4), torch.Generator().manual_seed(0)).scales[0].state_dict()
    assert not any(key.startswith("scales.") for key in old)
    fresh = build_discriminator(DiscriminatorSpec(6, ndf=4))
    fresh.load_state_dict(legacy_state(old))
    assert all(torch.equal(fresh.scales[0].state_dict()[k], v) for k, v in old.items())
    state = fresh.state_dict()
    assert legacy_state(state) is state

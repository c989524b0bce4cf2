"""Either generator from its spec: the U-Net (``networks``) or the ResNet (``resnet``).

A ``model.json`` generator entry says its ``type`` (``unet`` when absent: every package
written before the ResNet existed); :func:`spec_from_dict` reads it into the matching spec and
:func:`make_generator` / :func:`build_generator` build the network. Both specs share what
callers use: ``in_channels``, ``out_channels``, ``ngf``, ``norm``, ``multiple``, ``name``,
``check_size`` and ``to_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import torch

from ..contract.errors import Pix2PixError
from .networks import GeneratorSpec, UnetGenerator, init_weights
from .resnet import ResnetGenerator, ResnetSpec

AnyGeneratorSpec = Union[GeneratorSpec, ResnetSpec]
Generator = Union[UnetGenerator, ResnetGenerator]
GENERATOR_TYPES = ("unet", "resnet")


def spec_from_dict(data: Mapping[str, Any]) -> AnyGeneratorSpec:
    """The spec of a ``model.json``/checkpoint generator entry, by its ``type`` (default unet)."""
    kind = data.get("type", "unet")
    if kind == "resnet":
        return ResnetSpec.from_dict(dict(data))
    if kind == "unet":
        return GeneratorSpec.from_dict(dict(data))
    raise Pix2PixError(f"Generator type {kind!r} is unknown; this engine builds {', '.join(GENERATOR_TYPES)}. "
                       "Update the plugin, or train the model again.")


def make_generator(spec: AnyGeneratorSpec) -> Generator:
    """The network of ``spec`` with torch's default initialisation (on the current default device)."""
    if isinstance(spec, ResnetSpec):
        return ResnetGenerator(spec)
    return UnetGenerator(spec)


def build_generator(spec: AnyGeneratorSpec, generator: torch.Generator | None = None) -> Generator:
    """A freshly initialised generator (the reference's N(0, 0.02)); with ``generator`` the global RNG is untouched."""
    if generator is None:
        return init_weights(make_generator(spec))
    with torch.random.fork_rng(devices=[]):  # module constructors draw default inits from it
        net = make_generator(spec)
    return init_weights(net, generator=generator)


def load_weights(spec: AnyGeneratorSpec, state: Mapping[str, torch.Tensor], where: str) -> Generator:
    """The network of ``spec`` holding ``state`` exactly (built on the meta device: no initialisation to replace).

    ``where`` names the file in the errors: a float tensor where the network has an integer
    one (or the reverse), a missing or extra key, a wrong shape.
    """
    with torch.device("meta"):
        net = make_generator(spec)
    expected = net.state_dict()
    wrong = [f"{key} ({tensor.dtype})" for key, tensor in state.items()
             if key in expected and tensor.is_floating_point() != expected[key].is_floating_point()]
    if wrong:
        raise Pix2PixError(f"{where}: the weights have the wrong type for the network: {', '.join(wrong[:5])}. The "
                           "package is damaged or was not written by this engine.")
    try:
        net.load_state_dict(dict(state), strict=True, assign=True)
    except RuntimeError as exc:
        raise Pix2PixError(f"{where}: the weights do not match the architecture in model.json ({exc}).") from exc
    return net

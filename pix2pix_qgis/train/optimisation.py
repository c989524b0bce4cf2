"""How a GAN trainer computes and steps: its precision, memory layout, two Adams and their loss scalers.

Pix2Pix (``trainer.py``) and CycleGAN (``cyclegan.py``) differ in which networks each
optimizer moves, not in how, so :class:`Optimisation` sets that up once for both: the
generator side's parameters share one Adam and the discriminator side's another (β = (BETA1,
0.999) and one learning rate, as the references), each with its loss scaler, and the
precision the run computes in:

- ``PRECISION`` auto (None, the default) keeps what ``AMP`` always did: mixed precision on
  CUDA (bfloat16 where the GPU has it, else float16), float32 on the CPU; float32 with
  ``--no-amp``. Configs and checkpoints written before ``PRECISION`` existed read as auto.
- ``float32`` | ``bfloat16`` | ``float16``, translate's vocabulary, checked against the device
  by ``model.device.autocast_dtype``: bfloat16 on a CPU only with AVX512-BF16 or AMX (PyTorch
  emulates it elsewhere, far slower than float32), float16 on CUDA only; otherwise an error
  that names the fix (exit 2).

Autocast covers the forward passes and the adversarial losses (which compute in float32 on
the logits, ``losses.gan_loss``); the L1 terms, the weights and the optimizer steps stay
float32, as autocast casts copies. float16 needs loss scaling against underflowing gradients;
bfloat16 has float32's exponent range and needs none, so its scalers are disabled and pass
losses and steps through unchanged. Channels-last layout is used on CUDA only (unless the
config's ``channels_last`` is off), as before.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch

from ..model.checkpoint import flatten_optimizer, unflatten_optimizer
from ..model.device import autocast_dtype
from .config import TrainConfig


def training_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``config`` trains in on ``device`` (None: float32, no autocast), or an error saying why
    not (exit 2)."""
    if config.precision is None:  # auto: AMP's behaviour
        if device.type != "cuda" or not config.amp:
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return autocast_dtype(config.precision, device)


def _nothing() -> None:
    """The default gradient hook of :meth:`Optimisation.step`: one process already holds the run's gradients."""


class Optimisation:
    """The precision, memory layout, optimizers and loss scalers of one GAN trainer.

    ``generators`` and ``discriminators`` are the networks each Adam moves (one each for
    Pix2Pix; G_A with G_B and D_A with D_B for CycleGAN); they are put into the memory format
    here, on ``device`` already.
    """

    def __init__(self, config: TrainConfig, device: torch.device, generators: Iterable[torch.nn.Module],
                 discriminators: Iterable[torch.nn.Module]) -> None:
        generators, discriminators = tuple(generators), tuple(discriminators)
        self.device = device
        self.dtype = training_dtype(config, device)
        channels_last = device.type == "cuda" and config.channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for net in (*generators, *discriminators):
            # torch's Module.to overloads omit memory_format, which Module.to accepts (see its docstring).
            net.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        betas = (config.beta1, 0.999)
        self.opt_g = torch.optim.Adam(_parameters(generators), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(_parameters(discriminators), lr=config.lr, betas=betas)
        scaled = self.dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=scaled)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=scaled)

    @property
    def precision(self) -> str:
        """float32, bfloat16 or float16: what the networks compute in (``model.json``'s ``training.precision``)."""
        return "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")

    @property
    def mixed(self) -> bool:
        """Whether forward passes run under autocast (a reduced precision)."""
        return self.dtype is not None

    def autocast(self) -> AbstractContextManager[Any]:
        """The context forward passes and adversarial losses run in: autocast to :attr:`dtype`, or nothing."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def move(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on the training device in the networks' memory format, copied without blocking."""
        return tensor.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of both optimizers (the decay policy calls this each epoch)."""
        for optimizer in (self.opt_g, self.opt_d):
            for group in optimizer.param_groups:
                group["lr"] = lr

    def step(self, side: Literal["G", "D"], loss: torch.Tensor, share_gradients: Callable[[], None] = _nothing
             ) -> None:
        """One optimizer step of ``side`` ("G" or "D") on ``loss``: fresh gradients, scaled backward,
        ``share_gradients`` (a data-parallel trainer averages them over the ranks there), step."""
        optimizer, scaler = (self.opt_g, self.scaler_g) if side == "G" else (self.opt_d, self.scaler_d)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        share_gradients()
        scaler.step(optimizer)
        scaler.update()

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Both optimizers' tensors, and the JSON structure around them with the scalers' state, for a checkpoint."""
        tensors: dict[str, torch.Tensor] = {}
        structure: dict[str, Any] = {}
        for name, optimizer in (("optG", self.opt_g), ("optD", self.opt_d)):
            flat, structure[name] = flatten_optimizer(optimizer.state_dict(), name)
            tensors.update(flat)
        structure["scalers"] = {"G": self.scaler_g.state_dict(), "D": self.scaler_d.state_dict()}
        return tensors, structure

    def load(self, tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> None:
        """Restore :meth:`state`'s output. Scalers load only when both runs scale losses (float16 on CUDA):
        a checkpoint of another precision resumes with fresh ones."""
        self.opt_g.load_state_dict(unflatten_optimizer(structure["optG"], tensors))
        self.opt_d.load_state_dict(unflatten_optimizer(structure["optD"], tensors))
        scalers = structure.get("scalers", {})
        if scalers.get("G") and self.scaler_g.is_enabled():
            self.scaler_g.load_state_dict(scalers["G"])
            self.scaler_d.load_state_dict(scalers["D"])


def _parameters(networks: tuple[torch.nn.Module, ...]) -> Iterable[torch.nn.Parameter]:
    return itertools.chain.from_iterable(net.parameters() for net in networks)

"""Data-parallel training under torchrun: one process per GPU (or per CPU share), DDP, rank 0 writes.

``torchrun --nproc-per-node N -m pix2pix_qgis train CHIPS MODEL.p2p …`` starts N copies of
the CLI; each joins the process group here (NCCL on CUDA, gloo on the CPU), builds the same
networks from the same seed, and wraps them in ``DistributedDataParallel``, so every step
averages the gradients of all ranks and the weights stay identical everywhere. The epoch
order is shared and cut into disjoint per-rank slices (``dataset.EpochSampler``): one step
of N ranks with batch B sees the chips of one single-process step with batch N×B.

Decisions (docs/scale-out.md explains them for users):

- The discriminator is called through DDP only in its own update (twice: fake, then real,
  one backward); the generator's update calls the bare discriminator, whose weights are
  frozen then, so DDP never waits for gradients that do not come.
- BatchNorm stays per rank (statistics over the rank's B chips, as in a single-process run
  with batch B); running statistics are rank 0's (DDP broadcasts them every forward, and
  before each validation), so all ranks validate, checkpoint and export the same model.
- Ranks stop together: cancellation (SIGTERM/SIGINT from torchrun or a scheduler) and
  non-finite losses are agreed on by an all-reduce at every step, so no rank leaves the
  others waiting inside a collective; rank 0 saves the checkpoint of that step.
- Every rank validates (the set is small) but rank 0's metrics decide, so best-epoch and
  early-stopping choices cannot differ between ranks.
- Dropout draws from the global torch RNG, which all ranks seed (and, on resume, restore)
  alike; per-rank batches are always the same size, so the streams never drift apart and a
  resumed run repeats an uninterrupted one exactly (on the CPU).

CycleGAN (``cycle_ddp``) joins the same process group and uses the helpers here (agreed
stop, averaged losses, buffer broadcast, trace) with its own gradient averaging.

``PIX2PIX_RANK_TRACE=FOLDER`` makes each rank write ``rank-<r>.json`` (chip indices of every
step and a hash of its weights) after each step: how the tests check disjoint shards and
identical weights across real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..contract.errors import Cancelled, Pix2PixError
from ..core.launch import Launch
from ..core.progress import Progress
from ..data.folder import ChipsFolder
from ..model.device import resolve_device
from ..model.generators import AnyGeneratorSpec
from ..train.config import TrainConfig
from ..train.loop import train
from ..train.trainer import Pix2PixTrainer

TIMEOUT = timedelta(minutes=30)  # a collective waits this long for a slow rank (e.g. rank 0 writing a checkpoint)
TRACE_ENV = "PIX2PIX_RANK_TRACE"


def device_for(launch: Launch, name: str) -> torch.device:
    """This rank's device: the CPU, or the GPU of its ``LOCAL_RANK`` for ``auto``/``cuda``."""
    device = resolve_device("cuda" if name.startswith("cuda") else name)
    if device.type != "cuda":
        return device
    if name.startswith("cuda:"):
        raise Pix2PixError(
            f"Device '{name}' names one GPU, but under torchrun each process takes the GPU of its LOCAL_RANK. "
            "Use --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs."
        )
    count = torch.cuda.device_count()
    if launch.local_rank >= count:
        raise Pix2PixError(
            f"torchrun started more processes on this node than it has GPUs ({count}): LOCAL_RANK "
            f"{launch.local_rank} has none. Use --nproc-per-node {count} (one process per GPU)."
        )
    return torch.device("cuda", launch.local_rank)


@dataclass
class World:
    """This process's membership of the process group: rank, size, device, and the real cancel flag."""

    launch: Launch
    device: torch.device
    backend: str
    cancel_event: threading.Event

    @property
    def rank(self) -> int:
        """This process's global rank (0 writes the outputs)."""
        return self.launch.rank

    @property
    def size(self) -> int:
        """Number of processes in the run (torchrun's WORLD_SIZE)."""
        return self.launch.world_size

    def trainer(self, spec: AnyGeneratorSpec, config: TrainConfig) -> DistributedTrainer:
        """A trainer whose networks are wrapped in DDP, so gradients are averaged over the ranks."""
        return DistributedTrainer(spec, config, self)


@contextmanager
def process_group(launch: Launch, device_name: str, cancel_event: threading.Event) -> Iterator[World]:
    """Join torchrun's process group (address from ``MASTER_ADDR``/``MASTER_PORT``) for the block."""
    device = device_for(launch, device_name)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend, timeout=TIMEOUT, rank=launch.rank, world_size=launch.world_size,
                                device_id=device if device.type == "cuda" else None)
    except (RuntimeError, ValueError) as exc:
        raise Pix2PixError(
            f"Rank {launch.rank} could not join the process group of {launch.world_size} ({backend}): {exc}. "
            "Start every process with torchrun and the same --rdzv-endpoint (or --standalone on one machine)."
        ) from exc
    try:
        yield World(launch, device, backend, cancel_event)
        dist.barrier()  # leave together: a rank tearing down early can break its peers' open connections
    finally:
        dist.destroy_process_group()


def train_distributed(launch: Launch, chips_folder: str | Path, output_model: str | Path, config: TrainConfig,
                      progress: Progress, resume: bool = False) -> dict[str, Any]:
    """:func:`training.train` as one rank of a torchrun launch; rank 0 writes and reports."""
    with process_group(launch, config.device, progress.cancel_event) as world:
        return train(chips_folder, output_model, config, rank_progress(world, config, progress), resume,
                     topology=world)


def rank_progress(world: World, config: TrainConfig, progress: Progress) -> Progress:
    """Announce the run's shape, and give training a progress whose own cancel flag never fires.

    The ranks agree on stopping at a step (:func:`any_rank` on ``world.cancel_event``); a
    local cancel check inside training would let one rank leave while the others wait for it.
    """
    progress.info(
        f"Data-parallel training on {world.size} processes ({world.backend}, {world.device} on rank 0): "
        f"{config.batch_size} chips per process and step, {config.batch_size * world.size} per step in all, "
        f"learning rate {config.lr:g} (not scaled)."
    )
    return Progress(progress.emit, threading.Event())


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is set on any rank (an all-reduce every rank must enter)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def ranks_mean(losses: dict[str, float], device: torch.device, size: int) -> dict[str, float]:
    """Each loss averaged over the ranks (float64), so every rank logs, sums and checks the same numbers."""
    values = torch.tensor(list(losses.values()), dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(losses, (values / size).tolist()))


def broadcast_buffers(modules: Iterable[torch.nn.Module]) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics) of ``modules``."""
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


class DistributedTrainer(Pix2PixTrainer):
    """:class:`Pix2PixTrainer` whose step averages gradients over the ranks (DDP) and agrees on stopping."""

    def __init__(self, spec: AnyGeneratorSpec, config: TrainConfig, world: World) -> None:
        super().__init__(spec, config, world.device)
        self.world, self.rank, self.world_size = world, world.rank, world.size
        ids = [world.device.index] if world.device.type == "cuda" else None
        self.train_g = DistributedDataParallel(self.generator, device_ids=ids)
        self.train_d = DistributedDataParallel(self.discriminator, device_ids=ids)
        self.trace = RankTrace.from_env(self.rank, self.world_size)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Stop (all ranks) if any rank was cancelled, else one DDP step; losses are the ranks' mean."""
        if any_rank(self.world.cancel_event.is_set(), self.device):
            raise Cancelled("cancelled")
        mean = ranks_mean(super().step(batch), self.device, self.world_size)
        if self.trace is not None:
            self.trace.record(batch["index"].tolist(), (self.generator, self.discriminator))
        return mean

    def sync_buffers(self) -> None:
        """Give every rank rank 0's BatchNorm running statistics."""
        broadcast_buffers((self.generator, self.discriminator))

    @torch.no_grad()
    def evaluate(self, loader: Any, chips: ChipsFolder, progress: Progress | None = None) -> dict[str, Any]:
        """Validate with rank 0's BatchNorm statistics and share its metrics, so all ranks pick the same best epoch."""
        self.sync_buffers()
        metrics = super().evaluate(loader, chips, progress)
        box = [metrics]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def weights_digest(modules: Iterable[torch.nn.Module]) -> str:
    """SHA-256 of the networks' parameters, in order: equal on all ranks after every data-parallel step."""
    digest = hashlib.sha256()
    for module in modules:
        for name, parameter in module.named_parameters():
            digest.update(name.encode())
            digest.update(parameter.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


class RankTrace:
    """Test hook (``PIX2PIX_RANK_TRACE``): the chips of every step of this rank and its weights' digest."""

    def __init__(self, folder: Path, rank: int, world_size: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path, self.rank, self.world_size = folder / f"rank-{rank}.json", rank, world_size
        self.steps: list[list[int]] = []

    @classmethod
    def from_env(cls, rank: int, world_size: int) -> RankTrace | None:
        """The trace ``PIX2PIX_RANK_TRACE`` asks for, None when it is unset."""
        folder = os.environ.get(TRACE_ENV)
        return cls(Path(folder), rank, world_size) if folder else None

    def record(self, indices: list[int], modules: Iterable[torch.nn.Module]) -> None:
        """Append one step's chip indices and rewrite the file with the weights' digest after it."""
        self.steps.append(indices)
        document = {"rank": self.rank, "world_size": self.world_size, "steps": self.steps,
                    "weights": weights_digest(modules)}
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(document))
        os.replace(partial, self.path)

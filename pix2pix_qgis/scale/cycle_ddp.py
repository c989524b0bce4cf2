"""Data-parallel CycleGAN training under torchrun: each rank its own draws, gradients averaged, rank 0 writes.

``torchrun --nproc-per-node N -m pix2pix_qgis train CHIPS MODEL.p2p --model cyclegan …``
joins the process group as Pix2Pix does (``ddp.process_group``: gloo on the CPU, NCCL on
CUDA), and every rank runs :func:`train.cyclegan.train_cyclegan` with a
:class:`DistributedCycleGanTrainer`. The epoch's draws (chip i of A with a seeded random chip
of B, ``data.cycle``) are cut into disjoint per-rank slices by ``sampling.EpochSampler``, so
a step of N ranks with batch B sees the draws of one single-process step with batch N×B.

Decisions (docs/scale-out.md explains them for users):

- Gradients are averaged by an explicit all-reduce (sum, then ÷ N) of each optimizer's
  parameters just before its step, not by ``DistributedDataParallel``. A CycleGAN step runs
  each generator three times (translation, cycle, identity) and each discriminator three
  times across two updates, with the discriminators frozen in between; DDP's hooks fire per
  forward and would need ``static_graph`` or unused-parameter searches for that, and the
  gradients all ranks must share are simply those of the two optimizers at their step
  (``train.optimisation.Optimisation.step`` calls ``share_gradients`` there).
  With one process the sum of one rank ÷ 1 leaves every bit, so torchrun with one process
  trains the very weights of a plain run.
- The networks start equal on every rank (same seed) and see the same averaged gradients,
  so they stay equal; normalisation statistics are per rank (instance norm by default has
  none to keep); with batch norm rank 0's running statistics are given to all ranks before
  each validation.
- Each rank keeps its own image pools of ``pool_size`` fakes, of its own draws, with its
  own pool random stream (seed + 1 + rank). The checkpoint holds rank 0's pools, which all
  ranks take on resume: a resumed run of one process repeats an uninterrupted one exactly,
  a resumed run of several continues with refilled pools (not bit for bit).
- Stopping (cancel, non-finite losses) is agreed on by an all-reduce at every step, as for
  Pix2Pix, so no rank waits for a peer that has left; rank 0 saves the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..contract.errors import Cancelled
from ..core.launch import Launch
from ..core.progress import Progress
from ..model.generators import AnyGeneratorSpec
from ..train.config import TrainConfig
from ..train.cyclegan import CycleGanTrainer, train_cyclegan
from .ddp import RankTrace, World, any_rank, broadcast_buffers, process_group, rank_progress, ranks_mean


def train_cyclegan_distributed(launch: Launch, chips_folder: str | Path, output_model: str | Path,
                               config: TrainConfig, progress: Progress, resume: bool = False) -> dict[str, Any]:
    """:func:`train.cyclegan.train_cyclegan` as one rank of a torchrun launch; rank 0 writes and reports."""
    with process_group(launch, config.device, progress.cancel_event) as world:
        return train_cyclegan(chips_folder, output_model, config, rank_progress(world, config, progress), resume,
                              topology=CycleRank(world))


@dataclass(frozen=True)
class CycleRank:
    """One rank of a torchrun CycleGAN run (a ``train.cyclegan.CycleTopology``): its ``World`` and its trainer."""

    world: World

    @property
    def device(self) -> torch.device:
        """This rank's device (the CPU, or the GPU of its ``LOCAL_RANK``)."""
        return self.world.device

    def cycle_trainer(self, spec_a2b: AnyGeneratorSpec, spec_b2a: AnyGeneratorSpec,
                      config: TrainConfig) -> DistributedCycleGanTrainer:
        """A trainer that averages its four networks' gradients over the ranks."""
        return DistributedCycleGanTrainer(spec_a2b, spec_b2a, config, self.world)


class DistributedCycleGanTrainer(CycleGanTrainer):
    """:class:`CycleGanTrainer` whose optimizer steps use the ranks' mean gradients and whose ranks stop together."""

    def __init__(self, spec_a2b: AnyGeneratorSpec, spec_b2a: AnyGeneratorSpec, config: TrainConfig,
                 world: World) -> None:
        super().__init__(spec_a2b, spec_b2a, config, world.device)
        self.world, self.rank, self.world_size = world, world.rank, world.size
        self.pool_rng.manual_seed(config.seed + 1 + self.rank)  # rank 0 draws as a single process does
        self.trace = RankTrace.from_env(self.rank, self.world_size)

    def share_gradients(self, *networks: torch.nn.Module) -> None:
        """Replace each gradient of ``networks`` by its mean over the ranks (one all-reduce of them all, flat).

        Parameters without a gradient have none on every rank (the same graph runs
        everywhere), so they are left out alike and Adam skips them alike.
        """
        grads = [p.grad for net in networks for p in net.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        dist.all_reduce(flat)
        flat.div_(self.world_size)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Stop (all ranks) if any rank was cancelled, else one step; losses are the ranks' mean."""
        if any_rank(self.world.cancel_event.is_set(), self.device):
            raise Cancelled("cancelled")
        mean = ranks_mean(super().step(batch), self.device, self.world_size)
        if self.trace is not None:
            self.trace.record(batch["index"].tolist(), self.networks)
        return mean

    @torch.no_grad()
    def evaluate(self, loader: Any, progress: Progress | None = None) -> dict[str, float | None]:
        """Validate with rank 0's normalisation statistics, so every rank measures the same networks."""
        broadcast_buffers(self.networks)
        return super().evaluate(loader, progress)

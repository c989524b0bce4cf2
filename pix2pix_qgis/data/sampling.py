"""The order chips are drawn in: seeded per epoch, resumable mid-epoch, sharded over data-parallel ranks.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence, Union

import torch
from torch.utils.data import DataLoader, Sampler

from .cycle import CycleDataset
from .dataset import ChipDataset

Samples = Union[ChipDataset, CycleDataset]  # paired chips, or unpaired draws


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of one epoch, a pure function of (seed, epoch) so resume can skip into it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator).tolist()


def make_loader(
    dataset: Samples,
    batch_size: int,
    order: Sequence[int] | None = None,
    num_workers: int = 0,
    seed: int = 0,
    pin_memory: bool = False,
) -> DataLoader[dict[str, torch.Tensor]]:
    """A DataLoader over ``order`` (default: the dataset in order), e.g. for validation.

    A private generator keeps the loader from drawing on torch's global RNG, so dropout
    draws are the same with or without workers and after a resume. Workers stay alive
    between passes, so validating every epoch does not start processes every epoch.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(order) if order is not None else list(range(len(dataset))),
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
    )


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields (epoch, index) in the seeded order of the current epoch, from a given batch on.

    Set the epoch (and, to resume mid-epoch, the batches to skip) before iterating the
    loader; because the epoch travels with each index, worker processes can stay alive
    across epochs and still augment by (seed, epoch, index).

    With ``world_size`` > 1 (data-parallel training) one step takes the next
    ``batch_size × world_size`` chips of the epoch's order and process ``rank`` gets the
    ``rank``-th slice of ``batch_size``, so the ranks' shards are disjoint, one step of all
    ranks sees exactly the chips of one single-process step of the global batch, and a step
    count still says where an epoch stands. The last, short step is split evenly and padded
    with chips from the start of the order, so every rank runs the same number of steps on
    batches of the same size (DDP needs both).
    """

    def __init__(self, count: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must be in [0, {world_size})")
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip_batches = 1, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Start iterating ``epoch`` (1-based), skipping its first ``skip_batches`` steps (a resumed run)."""
        self.epoch, self.skip_batches = epoch, skip_batches

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch: ceil(chips / (batch_size × world_size))."""
        return math.ceil(self.count / (self.batch_size * self.world_size))

    def shard(self) -> list[int]:
        """This rank's indices of the current epoch from the skipped batches on, in order."""
        order = epoch_order(self.count, self.seed, self.epoch)
        if self.world_size == 1:
            return order[self.skip_batches * self.batch_size:]
        step = self.batch_size * self.world_size
        mine: list[int] = []
        for start in range(self.skip_batches * step, self.count, step):
            chunk = order[start:start + step]
            per_rank = math.ceil(len(chunk) / self.world_size)
            padding = per_rank * self.world_size - len(chunk)
            chunk += [order[i % self.count] for i in range(padding)]
            mine += chunk[self.rank * per_rank:(self.rank + 1) * per_rank]
        return mine

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, index) for index in self.shard()])

    def __len__(self) -> int:
        return len(self.shard())


def training_loader(
    dataset: Samples, batch_size: int, seed: int = 0, num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0, world_size: int = 1,
) -> tuple[DataLoader[dict[str, torch.Tensor]], EpochSampler]:
    """The training DataLoader (workers kept alive across epochs) and the sampler that steers it."""
    sampler = EpochSampler(len(dataset), batch_size, seed, rank, world_size)
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler

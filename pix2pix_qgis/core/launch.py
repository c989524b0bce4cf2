"""Which process of a multi-process launch this is, read from the environment; no torch here.

torchrun (and ``torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
for each process it starts. A launch of one process is treated as no launch at all, so
``torchrun --nproc-per-node 1`` behaves exactly like a plain run. The CLI imports this
module before anything heavy, to keep the output of ranks other than 0 quiet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..contract.errors import Pix2PixError
from .progress import Progress


@dataclass(frozen=True)
class Launch:
    """This process's place in a launch: global ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Launch | None:
        """The launch torchrun describes in ``env`` (default ``os.environ``), or None outside one."""
        env = os.environ if env is None else env
        if not all(name in env for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):
            return None  # torchrun sets all three; a stray RANK alone does not make a launch
        try:
            world_size, rank, local_rank = int(env["WORLD_SIZE"]), int(env["RANK"]), int(env["LOCAL_RANK"])
        except ValueError:
            raise Pix2PixError(
                f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r} and LOCAL_RANK="
                f"{env.get('LOCAL_RANK')!r} must be whole numbers; start the engine with torchrun, which sets them."
            ) from None
        if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
            raise Pix2PixError(f"RANK {rank} of WORLD_SIZE {world_size} is impossible; start the engine with torchrun.")
        return cls(rank, world_size, local_rank) if world_size > 1 else None


class OtherRankProgress(Progress):
    """The output of a rank other than 0: errors only, named by rank; rank 0 reports the run."""

    def __init__(self, parent: Progress, rank: int) -> None:
        super().__init__(None, parent.cancel_event)
        self._parent, self._rank = parent, rank

    def emit(self, event: dict[str, Any]) -> None:
        """Pass only error events on to rank 0's progress, tagged with this rank."""
        if event.get("type") == "error":
            self._parent.emit({**event, "rank": self._rank, "message": f"rank {self._rank}: {event['message']}"})


def rank_zero_reports(progress: Progress) -> Progress:
    """``progress`` on rank 0 and outside a launch; on other ranks a filter that lets only errors through."""
    try:
        launch = Launch.from_env()
    except Pix2PixError:
        return progress  # the command itself reports the bad environment
    return progress if launch is None or launch.rank == 0 else OtherRankProgress(progress, launch.rank)

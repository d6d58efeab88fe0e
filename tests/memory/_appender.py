"""A writer process for the same-trajectory test: appends rounds through update_trajectory only.

python -m tests.memory._appender HOME TRAJECTORY_ID TAG COUNT

Each round's index is len(rounds) + 1, computed inside the function update_trajectory applies
under the lock, so two such processes must end with rounds 1..2*COUNT and nothing lost.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from gems_mcp.memory.store import MemoryStore
from gems_mcp.types import Candidate, GenerationParams, Round, Trajectory


def append_round(tag: str, i: int) -> Callable[[Trajectory], Trajectory]:
    def append(traj: Trajectory) -> Trajectory:
        index = len(traj.rounds) + 1
        rnd = Round(
            index=index,
            prompt=f"{tag}-{i}",
            mode="generate" if index == 1 else "regenerate",
            params=GenerationParams(width=64, height=64, steps=1, guidance=1.0),
            candidates=[Candidate(image_id=f"img-{tag}-{i}", seed=i)],
        )
        return traj.model_copy(update={"rounds": [*traj.rounds, rnd]})

    return append


def main(home: str, trajectory_id: str, tag: str, count: int) -> None:
    store = MemoryStore(Path(home))
    print("ready", flush=True)
    go = Path(home) / "go"
    while not go.exists():
        time.sleep(0.005)
    for i in range(count):
        store.update_trajectory(trajectory_id, append_round(tag, i))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))

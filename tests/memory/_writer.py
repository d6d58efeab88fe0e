"""A separate writer process for the concurrency and kill -9 tests.

python -m tests.memory._writer HOME SHARED_ID TAG COUNT   (COUNT 0: write until killed)
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from gems_mcp.memory.store import MemoryStore
from gems_mcp.types import Lesson, Requirement, Trajectory
from tests.memory.factories import make_round


def main(home: str, shared_id: str, tag: str, count: int) -> None:
    store = MemoryStore(Path(home))
    store.save_trajectory(Trajectory(id=f"t-own-{tag}", intent=f"writer {tag}",
                                     checklist=[Requirement(id="q1", question="Is it red?")]))
    print("ready", flush=True)
    go = Path(home) / "go"
    while not go.exists():
        time.sleep(0.005)
    for i in itertools.count() if count == 0 else range(count):
        def append(traj: Trajectory, i: int = i) -> Trajectory:
            rnd = make_round(len(traj.rounds) + 1, {"q1": i % 2 == 0}, prompt=f"{tag}-{i}", n=1)
            return traj.model_copy(update={"rounds": [*traj.rounds, rnd]})

        store.update_trajectory(shared_id, append)
    store.add_lessons([
        Lesson(id=f"l-{tag}-{k}", trajectory_id=shared_id, intent="red", question="Is it red?",
               kind="color", text=f"lesson {k} from {tag}")
        for k in range(4)
    ])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))

"""A process that holds the locks a writer of one trajectory takes, until its stdin closes.

python -m tests.memory._holder HOME TRAJECTORY_ID [own]   (own: only that trajectory's own lock)
"""

from __future__ import annotations

import sys
from pathlib import Path

from gems_mcp.memory.store import MemoryStore


def main(home: str, trajectory_id: str, only_own: bool) -> None:
    store = MemoryStore(Path(home))
    if only_own:
        with store.write_locks(trajectory_id)[0]:
            print("held", flush=True)
            sys.stdin.read()
        return
    with store.holding_write_locks(trajectory_id):
        print("held", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "own")

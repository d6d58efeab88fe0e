"""Memory benchmark: view size versus raw history; write, first-call and recall latency by store size.

Run from the repository root:  python benchmarks/memory_bench.py [--rounds 1000 10000 100000]
Torch is not involved; the 100,000-round home takes a minute or two to build and about 220 MB of disk.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gems_mcp.config import Settings
from gems_mcp.memory.lessons import extract_lessons, recall_lessons
from gems_mcp.memory.store import MemoryStore
from gems_mcp.memory.views import build_view
from gems_mcp.types import Trajectory
from tests.memory.factories import make_round, make_trajectory

ROUNDS_PER_TRAJECTORY = 50
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["circles", "squares", "triangles", "stars", "hexagons", "cubes"]
RELATIONS = ["left of", "right of", "above", "below", "next to"]
COUNTS = ["two", "three", "four", "five", "six"]


def _intent(rng: random.Random) -> str:
    return (f"{rng.choice(COUNTS)} {rng.choice(COLORS)} {rng.choice(SHAPES)} {rng.choice(RELATIONS)} "
            f"a {rng.choice(COLORS)} {rng.choice(SHAPES)[:-1]}")


class _FullCollections:
    """Counts full (generation 2) garbage collections and their total time."""

    def __init__(self) -> None:
        self.count, self.ms, self._start = 0, 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.count += 1
            self.ms += (time.perf_counter() - self._start) * 1000


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float, str]:
    """Median and worst wall time of ``fn`` in ms, its median CPU time, and the full GCs that ran meanwhile.

    CPU time leaves out waiting for a core (and for the disk): on a shared, loaded machine it is
    the part that is the code's own.
    """
    watcher = _FullCollections()
    gc.callbacks.append(watcher)
    times, cpu = [], []
    try:
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    finally:
        gc.callbacks.remove(watcher)
    gcs = f"{watcher.count} ({watcher.ms:.0f} ms)" if watcher.count else "0"
    return statistics.median(times), max(times), statistics.median(cpu), gcs


def sizes(budget: int, recent: int) -> None:
    print(f"View size vs raw history (budget {budget} characters, {recent} recent rounds)")
    print(f"{'rounds':>6} {'raw JSON':>10} {'view JSON':>10} {'view text':>10}  compressed")
    for n in (5, 20, 50):
        traj = make_trajectory(n)
        view = build_view(traj, budget=budget, recent=recent, sheet_uri=f"gems://trajectories/{traj.id}/sheet.png")
        print(f"{n:>6} {len(traj.model_dump_json()):>10} {len(view.model_dump_json()):>10} "
              f"{len(view.to_text()):>10}  {'yes' if view.compressed else 'no'}")


def _fill(home: Path, total_rounds: int) -> tuple[MemoryStore, list[str]]:
    """A home of ``total_rounds`` rounds, written as an import writes (one file per trajectory, one sync)."""
    rng = random.Random(7)
    settings = Settings()
    store = MemoryStore(home, settings.max_lessons, int(settings.max_lessons_mb * 1e6))  # the server's caps
    template = make_trajectory(ROUNDS_PER_TRAJECTORY)
    template.status = "done"
    trajectories, lessons = [], []
    for i in range(max(total_rounds // ROUNDS_PER_TRAJECTORY, 1)):
        traj = template.model_copy(update={"id": f"t-{i:08x}", "intent": _intent(rng),
                                           "created_at": template.created_at + i})
        trajectories.append(traj)
        lessons += extract_lessons(traj)
    store.import_records(trajectories, lessons)
    return store, [t.id for t in trajectories]


def _append_round(traj: Trajectory) -> Trajectory:
    rnd = make_round(len(traj.rounds) + 1, {req.id: True for req in traj.checklist})
    return traj.model_copy(update={"rounds": [*traj.rounds, rnd]})


def latency(total_rounds: int, budget: int, recent: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Time a round's write, the first calls of a new store and recall, on a home of ``total_rounds``."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        start = time.perf_counter()
        store, ids = _fill(home, total_rounds)
        fill_s = time.perf_counter() - start
        files = list((home / "trajectories").glob("*.json"))
        n_lessons = len(store.lessons())
        print(f"\n{total_rounds} rounds: {len(ids)} trajectories x {ROUNDS_PER_TRAJECTORY} rounds, {n_lessons} "
              f"lessons kept (cap {store.max_lessons}); index {(home / 'memory.json').stat().st_size / 1e3:.0f} kB, "
              f"trajectories {sum(f.stat().st_size for f in files) / 1e6:.1f} MB in {len(files)} files, "
              f"lessons {sum(f.stat().st_size for f in home.glob('lessons*.json')) / 1e6:.2f} MB; "
              f"built in {fill_s:.1f} s")

        target = ids[len(ids) // 2]
        query = "three red circles left of a blue square"

        def recall() -> object:
            return recall_lessons(store.lessons(), query)

        recall()  # imports bm25s and its scipy once, as the server's first query does
        rows = [
            ("one round written (update_trajectory)", lambda: store.update_trajectory(target, _append_round)),
            ("recall with a query (warm)", recall),
        ]
        print(f"{'operation':<46} {'median ms':>10} {'max ms':>8} {'CPU ms':>8}  full GCs during the runs")
        figures = {}
        for name, fn in rows:
            median, worst, cpu, gcs = _timed(fn, repeat)
            figures[name] = (median, cpu)
            print(f"{name:<46} {median:>10.2f} {worst:>8.2f} {cpu:>8.2f}  {gcs}")
        for name, call in FIRST_CALLS.items():
            runs = [_first_call(home, call, target, query) for _ in range(max(repeat // 4, 3))]
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            figures[name] = (wall, cpu)
            print(f"{name:<46} {wall:>10.2f} {max(r[0] for r in runs):>8.2f} {cpu:>8.2f}  "
                  "(a new process each, imports done)")
        hits = recall_lessons(store.lessons(), query)
        print(f"recall_lessons({query!r}) -> {len(hits)} hits; top: "
              + (f"{hits[0].lesson.intent!r} / {hits[0].lesson.kind} ({hits[0].score:.2f})" if hits else "-"))
        return figures


FIRST_CALLS = {
    "first call after start: open + view": "build_view(MemoryStore(home).get_trajectory(target), 4000, 3, None)",
    "first call after start: open + list 10": "MemoryStore(home).list_trajectories(limit=10)",
    "first call after start: open + recall query": "recall_lessons(MemoryStore(home).lessons(), query)",
}
_FIRST_CALL = """
import sys, time
from pathlib import Path
import bm25s  # imported by a server's first query too; not the store's cost
from gems_mcp.memory.lessons import recall_lessons
from gems_mcp.memory.store import MemoryStore
from gems_mcp.memory.views import build_view
home, target, query = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
start, start_cpu = time.perf_counter(), time.process_time()
{call}
print((time.perf_counter() - start) * 1000, (time.process_time() - start_cpu) * 1000)
"""


def _first_call(home: Path, call: str, target: str, query: str) -> tuple[float, float]:
    """Wall and CPU ms of one call in a new process whose imports are done: what a server's first call costs."""
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL.format(call=call), str(home), target, query],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[1_000, 10_000],
                        help="Rounds to store, one home per figure (default 1000 10000; the issue asks 100000 too).")
    parser.add_argument("--repeat", type=int, default=20, help="Timed repetitions per operation.")
    args = parser.parse_args()
    settings = Settings()
    sizes(settings.memory_budget, settings.memory_recent)
    load = os.getloadavg()[0]
    table = {n: latency(n, settings.memory_budget, settings.memory_recent, args.repeat) for n in args.rounds}
    names = list(next(iter(table.values())))
    print(f"\nmedian ms, wall / CPU (load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end, "
          f"{os.cpu_count()} CPUs)")
    print(" " * 46 + "".join(f"{n:>16}" for n in table))
    for name in names:
        print(f"{name:<46}" + "".join(f"{table[n][name][0]:>9.1f} /{table[n][name][1]:>5.1f}" for n in table))


if __name__ == "__main__":
    main()

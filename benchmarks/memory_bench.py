"""Memory benchmark: view size versus raw history, and recall latency over 10,000 stored rounds.

Run from the repository root:  python benchmarks/memory_bench.py [--rounds 10000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gems_mcp.config import Settings
from gems_mcp.memory.lessons import extract_lessons, recall_lessons
from gems_mcp.memory.store import MemoryStore
from gems_mcp.memory.views import build_view
from tests.memory.factories import make_trajectory

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


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, str]:
    """Median and worst wall time of ``fn`` in ms, and the full GCs that ran meanwhile."""
    watcher = _FullCollections()
    gc.callbacks.append(watcher)
    times = []
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        gc.callbacks.remove(watcher)
    gcs = f"{watcher.count} ({watcher.ms:.0f} ms)" if watcher.count else "0"
    return statistics.median(times), max(times), gcs


def sizes(budget: int, recent: int) -> None:
    print(f"View size vs raw history (budget {budget} characters, {recent} recent rounds)")
    print(f"{'rounds':>6} {'raw JSON':>10} {'view JSON':>10} {'view text':>10}  compressed")
    for n in (5, 20, 50):
        traj = make_trajectory(n)
        view = build_view(traj, budget=budget, recent=recent, sheet_uri=f"gems://trajectories/{traj.id}/sheet.png")
        print(f"{n:>6} {len(traj.model_dump_json()):>10} {len(view.model_dump_json()):>10} "
              f"{len(view.to_text()):>10}  {'yes' if view.compressed else 'no'}")


def latency(total_rounds: int, budget: int, recent: int, repeat: int) -> None:
    rng = random.Random(7)
    n_traj = max(total_rounds // ROUNDS_PER_TRAJECTORY, 1)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = MemoryStore(home)
        start = time.perf_counter()
        ids, lessons = [], []
        for _ in range(n_traj):
            traj = make_trajectory(ROUNDS_PER_TRAJECTORY, intent=_intent(rng))
            traj.status = "done"
            store.save_trajectory(traj)
            ids.append(traj.id)
            lessons += extract_lessons(traj)
        store.add_lessons(lessons)
        fill_s = time.perf_counter() - start
        size_mb = (home / "memory.json").stat().st_size / 1e6
        print(f"\nStored {n_traj} trajectories x {ROUNDS_PER_TRAJECTORY} rounds = "
              f"{n_traj * ROUNDS_PER_TRAJECTORY} rounds, {len(lessons)} lessons; "
              f"memory.json {size_mb:.1f} MB; filled in {fill_s:.1f} s "
              f"({fill_s / (n_traj + 1) * 1000:.0f} ms per save)")

        target = ids[len(ids) // 2]
        query = "three red circles left of a blue square"

        def view() -> object:
            traj = store.get_trajectory(target)
            return build_view(traj, budget=budget, recent=recent, sheet_uri=None)

        def recall() -> object:
            return recall_lessons(store.lessons(), query)

        def both() -> object:
            return view(), recall()

        cold_start = time.perf_counter()
        MemoryStore(home).get_trajectory(target)
        cold_ms = (time.perf_counter() - cold_start) * 1000
        one_write_ms, _, _ = _timed(
            lambda: store.update_trajectory(target, lambda t: t.model_copy(update={"status": "done"})), 3
        )
        print(f"{'operation':<46} {'median ms':>10} {'max ms':>8}  full GCs during the runs")
        print(f"{'first read by a new process (parse file)':<46} {cold_ms:>10.1f} {'':>8}")
        print(f"{'one update_trajectory (whole-file write)':<46} {one_write_ms:>10.1f} {'':>8}")
        for name, fn in [
            ("get_trajectory + build_view", view),
            (f"lessons() + recall_lessons ({len(lessons)} lessons)", recall),
            ("recall_memory with query (both)", both),
        ]:
            fn()  # warm: the parsed file is cached until it changes
            median, worst, gcs = _timed(fn, repeat)
            print(f"{name:<46} {median:>10.2f} {worst:>8.2f}  {gcs}")
        # The cached parse is ~10^5 long-lived containers; a full GC walks them all. A server
        # can take them out of its collections with gc.freeze() once memory is loaded.
        gc.freeze()
        median, worst, gcs = _timed(both, repeat)
        gc.unfreeze()
        print(f"{'recall_memory with query, after gc.freeze()':<46} {median:>10.2f} {worst:>8.2f}  {gcs}")
        hits = recall_lessons(store.lessons(), query)
        print(f"\nrecall_lessons({query!r}) -> {len(hits)} hits; top: "
              + (f"{hits[0].lesson.intent!r} / {hits[0].lesson.kind} ({hits[0].score:.2f})" if hits else "-"))
        unrelated = recall_lessons(store.lessons(), "a watercolor portrait of an old fisherman")
        print(f"recall_lessons('a watercolor portrait of an old fisherman') -> {len(unrelated)} hits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000, help="Rounds to store (default 10000).")
    parser.add_argument("--repeat", type=int, default=50, help="Timed repetitions per operation.")
    args = parser.parse_args()
    settings = Settings()
    sizes(settings.memory_budget, settings.memory_recent)
    latency(args.rounds, settings.memory_budget, settings.memory_recent, args.repeat)


if __name__ == "__main__":
    main()

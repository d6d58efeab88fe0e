"""What the bench shows while and after it runs: progress per condition, and the pass curve (matplotlib)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")


def draw_curve(results: dict[str, Any], path: Path) -> bool:
    """Question pass fraction per round per condition (like GEMS' Fig. 5) as a PNG; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    curves = {c: d["summary"]["overall"]["curve"] for c, d in results["conditions"].items()}
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    try:
        for condition, curve in curves.items():
            axes.plot(range(1, len(curve) + 1), curve, marker="o", markersize=4, linewidth=2, label=condition)
        axes.set_xlabel("round")
        axes.set_ylabel("question pass fraction (best so far)")
        axes.set_xticks(range(1, max(results["budget"], 1) + 1))
        axes.set_title(f"{results['prompts']} prompts, budget B={results['budget']}", fontsize=10)
        axes.grid(alpha=0.3)
        if curves:
            axes.legend(fontsize=8, loc="lower right")
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return True


def progress(items: Sequence[T], what: str, log: IO[str] | None) -> Iterable[T]:
    """``items`` with a progress bar on ``log`` (a terminal), or a line every 20 items elsewhere."""
    if log is None:
        return items
    if log.isatty():
        from tqdm import tqdm

        bar: Iterable[T] = tqdm(items, desc=f"  {what}", unit="prompt", file=log, leave=False)
        return bar
    return _every_20(items, what, log)


def _every_20(items: Sequence[T], what: str, log: IO[str]) -> Iterator[T]:
    for i, item in enumerate(items, start=1):
        yield item
        if i % 20 == 0 or i == len(items):
            print(f"  {what}: {i}/{len(items)} prompts", file=log)

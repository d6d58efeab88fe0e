"""Ray Serve against in process: time per image of the same tiny pipeline, as a ratio.

Both run the same requests (64x64, a few steps) in this process's run: first the DiffusersGenerator
directly, then a RayGenerator whose one replica serves the same pipeline on a local cluster. The
ratio is the cost of the hop (serialization, Serve's router, streamed progress) at this tiny scale;
on a real model a step takes 10-100x longer and the hop stays the same.

Usage: python benchmarks/ray_bench.py [--repeats 5] [--steps 4] [--n 1,4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gems_mcp.backends import load_generator
from gems_mcp.config import load_settings
from gems_mcp.generation.base import GenerationRequest
from gems_mcp.types import GenerationParams
from tests.tiny_pipeline import build_tiny_pipeline


def per_image(generator, n: int, steps: int, repeats: int) -> float:
    """Median seconds per image of ``repeats`` calls of n candidates, after one warm-up call."""
    params = GenerationParams(width=64, height=64, steps=steps, guidance=2.0)
    request = GenerationRequest(prompt="a red circle", seeds=list(range(n)), params=params)
    generator.generate(request)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        generator.generate(request, on_step=lambda s, t: None)
        times.append((time.perf_counter() - began) / n)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--n", default="1,4", help="batch sizes to time, comma-separated")
    args = parser.parse_args()
    sizes = [int(x) for x in args.n.split(",")]

    import ray
    import torch
    from ray import serve

    # A replica gets OMP_NUM_THREADS = its CPUs (1); the in-process run gets the same, for a like-for-like ratio.
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        model = str(build_tiny_pipeline(Path(folder) / "tiny-sd"))
        local = load_generator(load_settings(model=model, device="cpu", offload="none"))
        near = {n: per_image(local, n, args.steps, args.repeats) for n in sizes}
        began = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        remote = load_generator(load_settings(model=model, device="cpu", offload="none", backend="ray"))
        remote.capabilities()
        print(f"Ray cluster + deployment ready in {time.perf_counter() - began:.1f} s")
        far = {n: per_image(remote, n, args.steps, args.repeats) for n in sizes}
        serve.shutdown()
        ray.shutdown()

    print(f"tiny SD pipeline, 64x64, {args.steps} steps, 1 CPU thread each, median of {args.repeats} calls, "
          "seconds per image")
    print(f"{'n':>3} {'in process':>11} {'Ray Serve':>10} {'ratio':>6}")
    for n in sizes:
        print(f"{n:>3} {near[n]:>11.4f} {far[n]:>10.4f} {far[n] / near[n]:>6.2f}")


if __name__ == "__main__":
    main()

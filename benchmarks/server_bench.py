"""Server overheads, as ratios against baselines measured in the same run.

1. generate through a stdio client / a direct generator call (same tiny pipeline, 64x64, 4 steps);
2. process start to the tools/list answer: gems-mcp / the SDK's hello-world server;
3. n=4 in one batched call / 4 sequential calls.

Usage: python benchmarks/server_bench.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gems_mcp.generation.base import GenerationRequest
from gems_mcp.generation.diffusers_backend import DiffusersGenerator
from gems_mcp.types import GenerationParams
from tests.tiny_pipeline import build_tiny_pipeline

SIDE, STEPS = 64, 4


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def amedian_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def server_params(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=list(args), env=env)


async def startup(params: StdioServerParameters) -> float:
    t0 = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        return time.perf_counter() - t0


async def main(repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="gems-bench-"))
    model = build_tiny_pipeline(work / "tiny")
    env = {**os.environ, "GEMS_HOME": str(work / "home"), "GEMS_MODEL": str(model), "HF_HUB_OFFLINE": "1"}

    # 1. stdio generate vs direct call
    direct = DiffusersGenerator(str(model))
    params = GenerationParams(width=SIDE, height=SIDE, steps=STEPS, guidance=2.0)
    req = GenerationRequest(prompt="a red circle", seeds=[1], params=params)
    direct.generate(req)  # warm-up
    t_direct = median_time(lambda: direct.generate(req), repeats)
    args = {"prompt": "a red circle", "seed": 1, "width": SIDE, "height": SIDE, "steps": STEPS, "guidance": 2.0}
    async with Client(server_params(env, "-m", "gems_mcp", "serve")) as client:
        await client.call_tool("generate", args)  # warm-up: loads the model
        t_stdio = await amedian_time(lambda: client.call_tool("generate", args), repeats)
        batch_args = {**args, "n": 4}
        await client.call_tool("generate", batch_args)
        t_batch = await amedian_time(lambda: client.call_tool("generate", batch_args), repeats)

        async def four_sequential():
            for i in range(4):
                await client.call_tool("generate", {**args, "seed": 1 + i})

        t_seq = await amedian_time(four_sequential, repeats)

    # 2. start-up to tools/list, alternating to share the machine's noise
    ours, hello = [], []
    for _ in range(repeats):
        ours.append(await startup(server_params(env, "-m", "gems_mcp", "serve")))
        hello.append(await startup(server_params(env, str(ROOT / "benchmarks" / "hello_server.py"))))
    t_ours, t_hello = statistics.median(ours), statistics.median(hello)

    print(f"{'measure':<46}{'ours':>10}{'baseline':>10}{'ratio':>8}{'target':>8}")
    print(f"{'generate via stdio / direct (64px, 4 steps)':<46}{t_stdio:>9.3f}s{t_direct:>9.3f}s{t_stdio / t_direct:>8.2f}{'<=1.10':>8}")
    print(f"{'start to tools/list / SDK hello server':<46}{t_ours:>9.3f}s{t_hello:>9.3f}s{t_ours / t_hello:>8.2f}{'<=1.20':>8}")
    print(f"{'n=4 batched / 4 sequential calls':<46}{t_batch:>9.3f}s{t_seq:>9.3f}s{t_batch / t_seq:>8.2f}{'<=0.70':>8}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    anyio.run(main, parser.parse_args().repeats)

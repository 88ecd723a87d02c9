"""Benchmark: Monte-Carlo dropout with ``jdrop.mc`` against the usual loops.

MC dropout with T = 50 samples on a batch of 256 28x28x1 images, LeNet-style network
(conv32 5x5 - maxpool - conv64 5x5 - maxpool - FC512 - ReLU - dropout 0.5 - FC10), the
same weights in JAX and PyTorch. Measured side by side, round-robin, in one run:

1. ``jdrop.mc.sample``: one jitted program, ``vmap`` over keys; dropout sits in the head,
   so the convolutional trunk and FC512 run once. The default call (``chunk_size=None``:
   chunks sized from a memory budget, see ``jdrop/mc/_chunking.py``), all samples at once
   (``chunk_size=T``) and a hand-picked ``chunk_size=10`` (a ``lax.map`` over chunks of
   10 samples, whose activations stay in cache).
2. ``jdrop.mc.predictive_classification``: the same, folded into streaming summaries.
3. The network's single deterministic forward pass in JAX (the floor).
4. The usual PyTorch implementation: ``model.train()`` and T forward passes in a Python
   loop under ``torch.no_grad()`` (and, for context, one PyTorch forward).
5. A naive JAX Python loop over T calls of a jitted stochastic forward.

Then peak memory of ``predictive_classification`` with ``chunk_size=100`` for T = 100 and
T = 10,000: the compiled program's ``memory_analysis`` (temp + output bytes) and the
resident peak (``ru_maxrss``) of a fresh subprocess for each T.

Run (from the repository root)::

    python experiments/benchmarks/bench_mc.py           # full run
    python experiments/benchmarks/bench_mc.py --quick   # a few repeats, smaller memory run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

BATCH, CLASSES = 256, 10
GOAL_VS_TORCH = 50.0
GOAL_VS_FORWARD = 2.0
GOAL_MEMORY = 1.5


# --------------------------------------------------------------------------------------
# The network, in JAX (NHWC) and PyTorch (NCHW), with the same weights.
# --------------------------------------------------------------------------------------


def make_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """He-initialised float32 weights in JAX layouts (HWIO kernels, (in, out) matrices)."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "c1": he((5, 5, 1, 32), 25), "b1": np.zeros(32, np.float32),
        "c2": he((5, 5, 32, 64), 800), "b2": np.zeros(64, np.float32),
        "w3": he((4 * 4 * 64, 512), 1024), "b3": np.full(512, 0.01, np.float32),
        "w4": he((512, CLASSES), 512), "b4": np.zeros(CLASSES, np.float32),
    }


def jax_network():
    """Returns ``apply(key, params, x)``; ``key=None`` is the deterministic forward."""
    import jax
    import jax.numpy as jnp

    import jdrop

    dims = ("NHWC", "HWIO", "NHWC")

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                     "VALID")

    def apply(key, p, x):
        h = jax.lax.conv_general_dilated(x, p["c1"], (1, 1), "VALID", dimension_numbers=dims)
        h = pool(jax.nn.relu(h + p["b1"]))
        h = jax.lax.conv_general_dilated(h, p["c2"], (1, 1), "VALID", dimension_numbers=dims)
        h = pool(jax.nn.relu(h + p["b2"]))
        h = jax.nn.relu(h.reshape(h.shape[0], -1) @ p["w3"] + p["b3"])
        h = jdrop.dropout(key, h, 0.5, deterministic=key is None)
        return h @ p["w4"] + p["b4"]

    return apply


def torch_network(weights: dict[str, np.ndarray]):
    """The same network in PyTorch, with the JAX weights copied into it."""
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 512), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(512, CLASSES),
    )
    # JAX flattens (N, 4, 4, 64) in (h, w, c) order, PyTorch (N, 64, 4, 4) in (c, h, w).
    w3 = weights["w3"].reshape(4, 4, 64, 512).transpose(2, 0, 1, 3).reshape(1024, 512)
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(weights["c1"].transpose(3, 2, 0, 1).copy()))
        model[0].bias.copy_(torch.from_numpy(weights["b1"]))
        model[3].weight.copy_(torch.from_numpy(weights["c2"].transpose(3, 2, 0, 1).copy()))
        model[3].bias.copy_(torch.from_numpy(weights["b2"]))
        model[7].weight.copy_(torch.from_numpy(w3.T.copy()))
        model[7].bias.copy_(torch.from_numpy(weights["b3"]))
        model[10].weight.copy_(torch.from_numpy(weights["w4"].T.copy()))
        model[10].bias.copy_(torch.from_numpy(weights["b4"]))
    return model


# --------------------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------------------


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def speed_table(num_samples: int, repeats: int, chunk_size: int) -> str:
    import jax
    import jax.numpy as jnp
    import torch

    from jdrop import mc

    torch.set_num_threads(os.cpu_count() or 1)
    weights = make_weights()
    params = jax.tree.map(jnp.asarray, weights)
    apply = jax_network()
    rng = np.random.default_rng(1)
    images = rng.standard_normal((BATCH, 28, 28, 1)).astype(np.float32)
    x = jnp.asarray(images)
    x_torch = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    model = torch_network(weights)
    key = jax.random.key(0)

    from jdrop.mc._chunking import auto_chunk_size

    auto = auto_chunk_size(apply, key, (params, x), num_samples)
    mc_sample = jax.jit(lambda k, p, x: mc.sample(apply, k, p, x, num_samples=num_samples))
    mc_at_once = jax.jit(lambda k, p, x: mc.sample(
        apply, k, p, x, num_samples=num_samples, chunk_size=num_samples))
    mc_chunked = jax.jit(lambda k, p, x: mc.sample(
        apply, k, p, x, num_samples=num_samples, chunk_size=chunk_size))
    mc_summary = jax.jit(
        lambda k, p, x: mc.predictive_classification(apply, k, p, x, num_samples=num_samples)
    )
    forward = jax.jit(lambda p, x: apply(None, p, x))
    stochastic = jax.jit(apply)
    loop_keys = list(jax.random.split(key, num_samples))

    def run_torch():
        model.train()
        with torch.no_grad():
            return torch.stack([model(x_torch) for _ in range(num_samples)])

    def run_torch_forward():
        model.eval()
        with torch.no_grad():
            return model(x_torch)

    def run_naive():
        return jnp.stack([stochastic(k, params, x) for k in loop_keys]).block_until_ready()

    methods = {
        f"jdrop.mc.sample, default (chunk_size=None -> {auto})":
            lambda: mc_sample(key, params, x).block_until_ready(),
        f"jdrop.mc.sample, chunk_size={num_samples} (all at once)":
            lambda: mc_at_once(key, params, x).block_until_ready(),
        f"jdrop.mc.sample, chunk_size={chunk_size}":
            lambda: mc_chunked(key, params, x).block_until_ready(),
        "jdrop.mc.predictive_classification (streaming summaries)":
            lambda: jax.block_until_ready(mc_summary(key, params, x)),
        "JAX: one deterministic forward (jit)": lambda: forward(params, x).block_until_ready(),
        "PyTorch: model.train(), Python loop of T forwards": run_torch,
        "PyTorch: one deterministic forward (context)": run_torch_forward,
        "JAX: Python loop of T jitted stochastic forwards": run_naive,
    }
    for run in methods.values():  # Compile and warm up.
        run()
    # The same weights give the same deterministic function in both frameworks.
    model.eval()
    with torch.no_grad():
        reference = model(x_torch).numpy()
    agreement = float(np.max(np.abs(np.asarray(forward(params, x)) - reference)))
    samples = np.asarray(mc_sample(key, params, x))
    times = {name: [] for name in methods}
    for _ in range(repeats):  # Round-robin: every method sees the same machine load.
        for name, run in methods.items():
            times[name].append(timed(run))
    medians = {name: statistics.median(t) for name, t in times.items()}
    torch_ms = medians["PyTorch: model.train(), Python loop of T forwards"]
    forward_ms = medians["JAX: one deterministic forward (jit)"]
    verdicts = []
    for name in list(methods)[:3]:
        speedup, ratio = torch_ms / medians[name], medians[name] / forward_ms
        verdicts.append(
            f"`{name}`: {speedup:.1f}x faster than PyTorch "
            f"({'met' if speedup >= GOAL_VS_TORCH else 'NOT met'}), {ratio:.2f}x one "
            f"forward ({'met' if ratio <= GOAL_VS_FORWARD else 'NOT met'})"
        )
    lines = [
        f"### MC dropout, T = {num_samples}, batch {BATCH} x 28x28x1, LeNet "
        f"({os.cpu_count()} CPU threads, median of {repeats} round-robin repeats)",
        "",
        f"Goals: >= {GOAL_VS_TORCH:.0f}x faster than the PyTorch loop and <= "
        f"{GOAL_VS_FORWARD:.1f}x one deterministic forward. " + "; ".join(verdicts) + ".",
        "",
        "| method | median ms | speed-up vs PyTorch loop | time / one deterministic forward |",
        "|---|---:|---:|---:|",
    ]
    for name, ms in medians.items():
        lines.append(f"| {name} | {ms:.2f} | {torch_ms / ms:.1f}x | {ms / forward_ms:.2f}x |")
    lines += [
        "",
        f"Deterministic outputs, JAX vs PyTorch: max |difference| = {agreement:.2e}. "
        f"Samples differ: {len({s.tobytes() for s in samples})} distinct of {num_samples}.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Memory, one fresh process per T.
# --------------------------------------------------------------------------------------


def memory_child(num_samples: int, chunk_size: int) -> None:
    """Runs the streaming summary once and prints its memory figures as JSON."""
    import jax
    import jax.numpy as jnp

    from jdrop import mc

    apply = jax_network()
    params = jax.tree.map(jnp.asarray, make_weights())
    x = jnp.asarray(np.random.default_rng(1).standard_normal((BATCH, 28, 28, 1)),
                    jnp.float32)
    run = jax.jit(lambda k, p, x: mc.predictive_classification(
        apply, k, p, x, num_samples=num_samples, chunk_size=chunk_size))
    compiled = run.lower(jax.random.key(0), params, x).compile()
    analysis = compiled.memory_analysis()
    start = time.perf_counter()
    result = jax.block_until_ready(compiled(jax.random.key(0), params, x))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "compiled_bytes": analysis.temp_size_in_bytes + analysis.output_size_in_bytes,
        "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "seconds": seconds,
        "finite": bool(jnp.isfinite(result.mutual_information).all()),
    }))


def memory_table(sizes: list[int], chunk_size: int) -> str:
    rows = {}
    for num_samples in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(num_samples),
             "--chunk-size", str(chunk_size)],
            check=True, capture_output=True, text=True,
        )
        rows[num_samples] = json.loads(out.stdout.strip().splitlines()[-1])
    small, large = rows[sizes[0]], rows[sizes[-1]]
    compiled_ratio = large["compiled_bytes"] / small["compiled_bytes"]
    rss_ratio = large["maxrss_bytes"] / small["maxrss_bytes"]
    holding = sizes[-1] * BATCH * CLASSES * 4
    lines = [
        f"### Peak memory of `jdrop.mc.predictive_classification`, chunk_size = {chunk_size}, "
        f"batch {BATCH} (fresh process per T)",
        "",
        f"Goal: T = {sizes[-1]:,} within {GOAL_MEMORY}x of T = {sizes[0]:,} "
        f"(compiled: {compiled_ratio:.2f}x, resident: {rss_ratio:.2f}x: "
        f"{'met' if max(compiled_ratio, rss_ratio) <= GOAL_MEMORY else 'NOT met'}). "
        f"Holding all T = {sizes[-1]:,} logits alone would take {holding / 2**20:.0f} MiB.",
        "",
        "| T | compiled temp + output (MiB) | peak resident ru_maxrss (MiB) | run time (s) |",
        "|---:|---:|---:|---:|",
    ]
    for num_samples, row in rows.items():
        lines.append(
            f"| {num_samples:,} | {row['compiled_bytes'] / 2**20:.1f} | "
            f"{row['maxrss_bytes'] / 2**20:.0f} | {row['seconds']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, small memory run")
    parser.add_argument("--num-samples", type=int, default=50, help="T for the speed table")
    parser.add_argument("--repeats", type=int, default=None, help="timing repeats")
    parser.add_argument("--chunk-size", type=int, default=100, help="memory run chunk size")
    parser.add_argument("--speed-chunk-size", type=int, default=10,
                        help="chunk size of the chunked mc.sample row of the speed table")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, args.chunk_size)
        return
    repeats = args.repeats or (5 if args.quick else 11)
    sizes = [100, 2_000] if args.quick else [100, 10_000]
    print(speed_table(args.num_samples, repeats, args.speed_chunk_size))
    print()
    print(memory_table(sizes, args.chunk_size))


if __name__ == "__main__":
    main()

"""Attention dropout: jdrop's blockwise attention vs Flax, PyTorch and the no-dropout floor.

    nice -n 5 python -m experiments.benchmarks.bench_attention             # L = 512 .. 4096
    nice -n 5 python -m experiments.benchmarks.bench_attention --quick     # small, seconds
    python -m experiments.benchmarks.bench_attention --lengths 512 1024 --repeats 5

Forward + backward (``jit(grad)`` of ``sum(out * g)`` w.r.t. q, k, v), batch 8, 8 heads,
head_dim 64, float32, dropout rate 0.1 on the attention weights, measured side by side in
one run (interleaved repeats, medians):

* ``jdrop blockwise``: ``jdrop.attention.dot_product_attention(implementation="blockwise")``
  (per-element masks, recomputed in the backward pass);
* ``jdrop xla``: the explicit-weights reference with the same masks;
* ``flax.nnx`` (``broadcast_dropout=False``: per-element masks, as jdrop) and
  ``flax.linen`` (default ``broadcast_dropout=True``: one mask shared by batch and heads);
* ``jax.nn.dot_product_attention`` without dropout: the floor;
* ``torch.nn.functional.scaled_dot_product_attention(dropout_p=0.1)``.

Memory: XLA's compiled temporary memory (``jit(...).lower(...).compile()
.memory_analysis().temp_size_in_bytes``) of each JAX candidate's forward + backward,
at every length (compiling only: nothing is run, so lengths too big to run still report).
Goals (issue 11, this CPU): >= 3x faster than Flax with dropout at L >= 1024, <= 1.3x the
floor, temporary memory at L = 4096 below 10% of Flax's.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks.timing import interleaved_medians, markdown_table

RATE = 0.1


def candidates_for(length: int, batch: int, heads: int, head_dim: int):
    """The JAX candidates: name -> (jitted fwd+bwd function, its arguments)."""
    import flax.linen as linen
    from flax import nnx

    from jdrop.attention import dot_product_attention

    shape = (batch, length, heads, head_dim)
    keys = jax.random.split(jax.random.key(0), 5)
    q, k, v, g = (jax.random.normal(kk, shape, jnp.float32) for kk in keys[:4])
    dkey = keys[4]

    def grad_of(attention):
        def loss(q, k, v, dkey, g):
            return (attention(q, k, v, dkey) * g).sum()

        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))

    fns = {
        "jdrop blockwise": lambda q, k, v, r: dot_product_attention(
            q, k, v, dropout_key=r, rate=RATE, implementation="blockwise"
        ),
        "jdrop xla": lambda q, k, v, r: dot_product_attention(
            q, k, v, dropout_key=r, rate=RATE, implementation="xla"
        ),
        "flax.nnx (per-element)": lambda q, k, v, r: nnx.dot_product_attention(
            q, k, v, dropout_rng=r, dropout_rate=RATE, broadcast_dropout=False
        ),
        "flax.linen (shared mask)": lambda q, k, v, r: linen.dot_product_attention(
            q, k, v, dropout_rng=r, dropout_rate=RATE, deterministic=False
        ),
        "jax.nn (no dropout, floor)": lambda q, k, v, r: jax.nn.dot_product_attention(q, k, v),
    }
    args = (q, k, v, dkey, g)
    return {name: (grad_of(fn), args) for name, fn in fns.items()}, (q, k, v)


def temp_bytes(fn, args) -> int:
    return fn.lower(*args).compile().memory_analysis().temp_size_in_bytes


def torch_candidate(q, k, v):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    # torch's layout: (batch, heads, length, head_dim)
    tq, tk, tv = (
        torch.from_numpy(np.asarray(x).transpose(0, 2, 1, 3).copy()).requires_grad_()
        for x in (q, k, v)
    )
    tg = torch.randn(tq.shape)

    def run():
        for t in (tq, tk, tv):
            t.grad = None
        out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, dropout_p=RATE)
        out.backward(tg)
        return tq.grad

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L = 128, 256, batch 2")
    parser.add_argument("--lengths", type=int, nargs="*", default=None)
    parser.add_argument("--time_max_length", type=int, default=2048,
                        help="longer lengths report compiled memory only")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no_torch", action="store_true")
    parser.add_argument("--out", default=None, help="write the tables (Markdown) and JSON here")
    args = parser.parse_args(argv)
    lengths = args.lengths or ([128, 256] if args.quick else [512, 1024, 2048, 4096])
    batch = args.batch or (2 if args.quick else 8)
    heads, head_dim = 8, 64
    results = []
    for length in lengths:
        start = time.time()
        jax_cands, (q, k, v) = candidates_for(length, batch, heads, head_dim)
        memory = {name: temp_bytes(fn, a) for name, (fn, a) in jax_cands.items()}
        row = {"L": length, "temp_bytes": memory, "median_s": {}}
        if length <= args.time_max_length:
            timed = {name: (lambda fn=fn, a=a: fn(*a)) for name, (fn, a) in jax_cands.items()}
            if length > 1024:  # the explicit-weights candidates would not fit twice in 23 GB
                timed.pop("jdrop xla")
            if not args.no_torch:
                timed["torch sdpa (dropout_p)"] = torch_candidate(q, k, v)
            repeats = args.repeats or (3 if args.quick else max(3, 8 * 512 // length))
            row["median_s"] = interleaved_medians(timed, repeats=repeats, warmup=1)
        row["wall_s"] = time.time() - start
        results.append(row)
        print(json.dumps(row), flush=True)

    ours = "jdrop blockwise"
    time_rows = []
    for row in results:
        med = row["median_s"]
        if not med:
            continue
        for name, t in med.items():
            time_rows.append([
                row["L"], name, f"{t * 1e3:.0f}", f"{t / med[ours]:.2f}",
                f"{t / med['jax.nn (no dropout, floor)']:.2f}",
            ])
    mem_rows = []
    for row in results:
        mem = row["temp_bytes"]
        for name, b in mem.items():
            mem_rows.append([
                row["L"], name, f"{b / 2**20:.1f}", f"{b / mem['flax.nnx (per-element)']:.3f}",
            ])
    header = [
        f"L (batch {batch}, 8 heads, d 64, rate {RATE}, fwd+bwd)", "candidate", "median ms",
        "x jdrop blockwise", "x floor",
    ]
    tables = (
        markdown_table(header, time_rows) + "\n\n"
        + markdown_table(["L", "candidate", "temp MiB (compiled)", "x flax.nnx"], mem_rows)
    )
    print(tables)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench_attention.md"), "w") as f:
            f.write(tables + "\n")
        with open(os.path.join(args.out, "bench_attention.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

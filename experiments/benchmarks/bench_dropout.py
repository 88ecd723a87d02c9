"""Dropout at memory speed: jdrop vs Flax vs PyTorch vs the XLA copy floor.

    python -m experiments.benchmarks.bench_dropout            # full run (~2 min on 2 cores)
    python -m experiments.benchmarks.bench_dropout --quick    # smaller, fewer repeats

Three tables, each measured side by side in one run (interleaved repeats, medians):
1. a 16M-element float32 array: ``jdrop.dropout`` vs ``flax.nnx.Dropout`` called with a raw
   key vs ``torch.nn.functional.dropout`` vs the floor ``jax.jit(lambda x: x * 2)``;
2. the training-step overhead of dropout on Srivastava et al.'s MNIST MLP
   (784-1024-1024-2048-10, input rate 0.2, hidden 0.5, batch 128, SGD with momentum):
   step time with dropout / without, for jdrop and for ``jax.random.bernoulli`` masks;
3. peak memory of a backward pass with stored vs regenerated masks (XLA's compiled
   memory analysis of ``jit(grad)``, and the residuals an eager ``jax.vjp`` keeps).
Goals (issue 2): jdrop <= 1.25x the floor and >= 3x faster than Flax and PyTorch;
training overhead <= 1.05.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jdrop
from experiments.benchmarks.timing import interleaved_medians, markdown_table


def elementwise_table(size: int, repeats: int) -> str:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    key = jax.random.key(0)
    x = jax.random.normal(key, (size // 4096, 4096))
    x_torch = torch.from_numpy(np.array(x))
    flax_dropout = nnx.Dropout(0.5)

    floor = jax.jit(lambda x: x * 2)
    ours = jax.jit(lambda k, x: jdrop.dropout(k, x, 0.5))
    ours_jax = jax.jit(lambda k, x: jdrop.dropout(k, x, 0.5, impl="jax"))
    flax_fn = jax.jit(lambda k, x: flax_dropout(x, deterministic=False, rngs=k))
    candidates = {
        "XLA floor: jit(x * 2)": lambda: floor(x),
        "jdrop.dropout": lambda: ours(key, x),
        "jdrop.dropout(impl='jax')": lambda: ours_jax(key, x),
        "flax.nnx.Dropout (raw key)": lambda: flax_fn(key, x),
        "torch.nn.functional.dropout": lambda: torch.nn.functional.dropout(x_torch, 0.5, True),
    }
    medians = interleaved_medians(candidates, repeats=repeats)
    base, mine = medians["XLA floor: jit(x * 2)"], medians["jdrop.dropout"]
    gbps = lambda t: 2 * x.nbytes / t / 1e9
    rows = [
        [name, f"{t * 1e3:.2f}", f"{gbps(t):.1f}", f"{t / base:.2f}", f"{t / mine:.2f}"]
        for name, t in medians.items()
    ]
    header = ["16M float32, rate 0.5", "median ms", "GB/s (read+write)", "x floor",
              "x jdrop"]
    return markdown_table(header, rows)


class SrivastavaMLP(nnx.Module):
    """784-1024-1024-2048-10 ReLU MLP, input dropout 0.2, hidden 0.5 (Srivastava 2014)."""

    def __init__(self, rngs: nnx.Rngs):
        sizes = [784, 1024, 1024, 2048, 10]
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )

    def __call__(self, x, key, mask_fn):
        rates = [0.2, 0.5, 0.5, 0.5]
        keys = jax.random.split(key, len(rates))
        for layer, rate, k in zip(self.layers[:-1], rates, keys, strict=False):
            x = jax.nn.relu(layer(mask_fn(k, x, rate)))
        return self.layers[-1](mask_fn(keys[-1], x, rates[-1]))


def _bernoulli_dropout(key, x, rate):
    keep = jax.random.bernoulli(key, 1 - rate, x.shape)
    return jax.lax.select(keep, x / (1 - rate), jnp.zeros_like(x))


def training_table(repeats: int) -> str:
    mask_fns = {
        "no dropout": lambda k, x, r: x,
        "jdrop.dropout": jdrop.dropout,
        "jdrop.dropout(regenerate_mask=True)": lambda k, x, r: jdrop.dropout(
            k, x, r, regenerate_mask=True),
        "jax.random.bernoulli (Flax's way)": _bernoulli_dropout,
    }
    data_key = jax.random.key(1)
    images = jax.random.uniform(data_key, (128, 784))
    labels = jax.random.randint(data_key, (128,), 0, 10)
    optimizer = optax.sgd(0.01, momentum=0.9)
    candidates = {}
    for name, mask_fn in mask_fns.items():
        model = SrivastavaMLP(nnx.Rngs(0))
        graphdef, params = nnx.split(model, nnx.Param)

        def loss_fn(params, key, graphdef=graphdef, mask_fn=mask_fn):
            logits = nnx.merge(graphdef, params)(images, key, mask_fn)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        @jax.jit
        def step(params, opt_state, step_index, loss_fn=loss_fn):
            key = jax.random.fold_in(jax.random.key(2), step_index)
            grads = jax.grad(loss_fn)(params, key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        state = {"params": params, "opt": optimizer.init(params), "i": 0}

        def run(step=step, state=state):
            state["params"], state["opt"] = step(state["params"], state["opt"], state["i"])
            state["i"] += 1
            return state["params"]

        candidates[name] = run
    medians = interleaved_medians(candidates, repeats=repeats)
    base = medians["no dropout"]
    rows = [[n, f"{t * 1e3:.2f}", f"{t / base:.3f}"] for n, t in medians.items()]
    return markdown_table(["MLP train step, batch 128", "median ms", "/ no dropout"], rows)


def memory_table() -> str:
    """Peak temporary memory of jit(grad) and eager residuals, stored vs regenerated masks."""
    depth, width, batch = 8, 2048, 512
    ws = [jnp.ones((width, width), jnp.float32) * 0.01 for _ in range(depth)]
    x = jnp.ones((batch, width), jnp.float32)
    key = jax.random.key(0)

    def loss(ws, regenerate):
        h = x
        for i, w in enumerate(ws):
            h = jdrop.dropout(jax.random.fold_in(key, i), jnp.tanh(h @ w), 0.5,
                              regenerate_mask=regenerate)
        return jnp.sum(h)

    rows = []
    for regenerate in (False, True):
        compiled = jax.jit(jax.grad(loss), static_argnums=1).lower(ws, regenerate).compile()
        analysis = compiled.memory_analysis()
        temp = analysis.temp_size_in_bytes
        _, vjp = jax.vjp(lambda ws, regenerate=regenerate: loss(ws, regenerate), ws)
        residual = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(vjp))
        rows.append(["regenerated" if regenerate else "stored",
                     f"{temp / 2**20:.1f}", f"{residual / 2**20:.1f}"])
    title = f"{depth}x tanh({batch}x{width} @ W) + dropout, backward"
    return markdown_table([title, "jit(grad) temp MiB", "eager vjp residuals MiB"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4M elements, fewer repeats")
    args = parser.parse_args(argv)
    size = (4 if args.quick else 16) * 2**20
    repeats = 8 if args.quick else 30
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, "
          f"device {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs\n")
    print(elementwise_table(size, repeats), "\n")
    print(training_table(max(repeats // 2, 5)), "\n")
    print(memory_table())


if __name__ == "__main__":
    main()

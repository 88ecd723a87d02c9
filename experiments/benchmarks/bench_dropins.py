"""Flax's Dropout vs jdrop's drop-ins, in the same small MLP: one import changes.

    python -m experiments.benchmarks.bench_dropins            # full run (~3 min on 2 cores)
    python -m experiments.benchmarks.bench_dropins --quick    # fewer repeats

The model is written once per API and parametrised by the Dropout class only:
``flax.nnx.Dropout`` vs ``jdrop.nn.Dropout`` (keys from an ``nnx.Rngs`` given at
construction, as Flax's examples do) and ``flax.linen.Dropout`` vs ``jdrop.linen.Dropout``
(``rngs={"dropout": key}`` at ``apply``). An MLP 784-1024-1024-10, input dropout 0.2, hidden
0.5, batch 256, SGD with momentum; every step is one ``jax.jit`` over the split state.
Measured side by side in one run (interleaved repeats, medians): the forward pass in
training mode and the whole training step (forward, backward, update), with the model
without dropout (``deterministic=True``) as the floor that neither can beat.
"""

from __future__ import annotations

import argparse
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import nnx

import jdrop.linen
import jdrop.nn
from experiments.benchmarks.timing import interleaved_medians, markdown_table

SIZES = (784, 1024, 1024, 10)
RATES = (0.2, 0.5, 0.5)
BATCH = 256


class NNXMLP(nnx.Module):
    """The NNX model; ``dropout_cls`` is ``flax.nnx.Dropout`` or ``jdrop.nn.Dropout``."""

    def __init__(self, dropout_cls, *, deterministic: bool = False, rngs: nnx.Rngs):
        pairs = zip(SIZES[:-1], SIZES[1:], strict=True)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in pairs])
        self.dropouts = nnx.List(
            [dropout_cls(r, deterministic=deterministic, rngs=rngs) for r in RATES]
        )

    def __call__(self, x):
        for layer, drop in zip(self.layers[:-1], self.dropouts[:-1], strict=True):
            x = nnx.relu(layer(drop(x)))
        return self.layers[-1](self.dropouts[-1](x))


class LinenMLP(nn.Module):
    """The linen model; ``dropout_cls`` is ``flax.linen.Dropout`` or ``jdrop.linen.Dropout``."""

    dropout_cls: type

    @nn.compact
    def __call__(self, x, train: bool):
        for features, rate in zip(SIZES[1:-1], RATES[:-1], strict=True):
            x = nn.relu(nn.Dense(features)(self.dropout_cls(rate, deterministic=not train)(x)))
        return nn.Dense(SIZES[-1])(self.dropout_cls(RATES[-1], deterministic=not train)(x))


def _loss(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


TX = optax.sgd(0.01, momentum=0.9)


def _jitted(apply, params, extra):
    """``(forward, step, state)`` for ``apply(params, extra, x) -> (logits, new_extra)``.

    ``extra`` is what the API carries between steps besides the parameters: the NNX
    model's other state (its RNG streams' counts), or the linen step counter.
    """

    @jax.jit
    def forward(state, x):
        params, extra, _ = state
        return apply(params, extra, x)[0]

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state, x, y):
        params, extra, opt_state = state
        loss_fn = lambda p: (lambda out: (_loss(out[0], y), out[1]))(apply(p, extra, x))
        (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = TX.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), extra, opt_state), loss

    return forward, step, (params, extra, TX.init(params))


def nnx_functions(dropout_cls, deterministic: bool = False):
    """``(forward, step, state)`` of the NNX model, jitted over its split state."""
    model = NNXMLP(dropout_cls, deterministic=deterministic, rngs=nnx.Rngs(0, dropout=1))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def apply(params, rest, x):
        module = nnx.merge(graphdef, params, rest, copy=True)  # fresh Variables in this trace
        out = module(x)
        return out, nnx.split(module, nnx.Param, ...)[2]  # the streams' advanced counts

    return _jitted(apply, params, rest)


def linen_functions(dropout_cls, deterministic: bool = False):
    """``(forward, step, state)`` of the linen model; step ``i`` uses ``fold_in(key, i)``."""
    model = LinenMLP(dropout_cls)
    x0 = jnp.zeros((BATCH, SIZES[0]), jnp.float32)
    params = model.init(jax.random.key(0), x0, train=False)["params"]
    key = jax.random.key(1)

    def apply(params, i, x):
        rngs = {"dropout": jax.random.fold_in(key, i)}
        return model.apply({"params": params}, x, train=not deterministic, rngs=rngs), i + 1

    return _jitted(apply, params, jnp.zeros((), jnp.uint32))


def _candidates(functions, x, y) -> tuple[dict, dict]:
    """Forward and step thunks; each step thunk carries (and donates) its own state."""
    forwards, steps = {}, {}
    for name, (forward, step, state) in functions.items():
        holder = [jax.tree.map(lambda a: a.copy(), state)]  # the steps donate theirs

        def run_step(step=step, holder=holder):
            holder[0], loss = step(holder[0], x, y)
            return loss

        forwards[name] = functools.partial(forward, state, x)
        steps[name] = run_step
    return forwards, steps


def table(repeats: int) -> str:
    data_key, label_key = jax.random.split(jax.random.key(2))
    x = jax.random.normal(data_key, (BATCH, SIZES[0]))
    y = jax.random.randint(label_key, (BATCH,), 0, SIZES[-1])
    apis = {
        "nnx": (nnx_functions, nnx.Dropout, jdrop.nn.Dropout),
        "linen": (linen_functions, nn.Dropout, jdrop.linen.Dropout),
    }
    rows = []
    for api, (build, flax_cls, jdrop_cls) in apis.items():
        functions = {
            "none": build(flax_cls, deterministic=True),
            "flax": build(flax_cls),
            "jdrop": build(jdrop_cls),
        }
        forwards, steps = _candidates(functions, x, y)
        for phase, candidates in (("forward", forwards), ("train step", steps)):
            t = interleaved_medians(candidates, repeats=repeats, warmup=3)
            rows.append([
                f"{api} {phase}",
                f"{t['none'] * 1e3:.2f}",
                f"{t['flax'] * 1e3:.2f}",
                f"{t['jdrop'] * 1e3:.2f}",
                f"{t['flax'] / t['jdrop']:.2f}",
                f"{t['flax'] / t['none']:.2f}",
                f"{t['jdrop'] / t['none']:.2f}",
            ])
    header = ["MLP 784-1024-1024-10, batch 256", "no dropout ms", "Flax Dropout ms",
              "jdrop drop-in ms", "Flax / jdrop", "Flax / no dropout", "jdrop / no dropout"]
    return markdown_table(header, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeats = 15 if args.quick else 60
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, "
          f"{jax.device_count()} device(s), {repeats} interleaved repeats, medians\n")
    print(table(repeats))


if __name__ == "__main__":
    main()

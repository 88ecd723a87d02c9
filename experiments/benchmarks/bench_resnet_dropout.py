"""Training-step overhead of dropout in a CIFAR ResNet-20 (32x32x3 inputs, batch 128).

Each configuration is one jitted SGD-with-momentum step (cross-entropy, BatchNorm in
training mode, parameters, BatchNorm statistics and optimiser state donated), timed over
repeats that interleave the configurations, so that every ratio compares steps measured
side by side in one run (wall-clock medians; the process CPU-time ratio is printed too, as
it is less sensitive to other processes on a shared machine). The goal: dropout adds at
most 5% to a training step (ratio <= 1.05).

Configurations (all ``jdrop.models._resnet.resnet20``):

* ``none``: no dropout, ``deterministic=True`` (no key);
* ``dropout``: dropout 0.1 between the two convolutions of every block (wide-ResNet style)
  and 0.5 before the classifier;
* ``spatial``: the same with spatial (channel) dropout between the convolutions;
* ``drop_path``: stochastic depth, last block 0.2, linear decay.

Run::

    python experiments/benchmarks/bench_resnet_dropout.py            # 20 repeats
    python experiments/benchmarks/bench_resnet_dropout.py --quick    # 5 repeats
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jdrop.models._resnet import resnet20
from jdrop.nn import pure_apply

CONFIGS = {
    "none": {},
    "dropout": {"block_rate": 0.1, "head_rate": 0.5},
    "spatial": {"block_rate": 0.1, "block_dropout": "spatial", "head_rate": 0.5},
    "drop_path": {"drop_path_rate": 0.2},
}


def make_step(kwargs: dict, use_key: bool):
    """Builds ResNet-20 with ``kwargs`` and returns ``(step, carry)`` for a jitted SGD step."""
    model = resnet20(rngs=nnx.Rngs(0), **kwargs)
    apply_fn, (params, rest) = pure_apply(model, nnx.Param, ..., return_state=True)
    tx = optax.sgd(0.1, momentum=0.9)
    opt_state = tx.init(params)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, rest, opt_state, base_key, index, x, y):
        key = jax.random.fold_in(base_key, index) if use_key else None

        def loss_fn(p):
            logits, (_, new_rest) = apply_fn((p, rest), key, x, train=True,
                                             deterministic=not use_key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, new_rest

        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_rest, opt_state, loss

    return step, (params, rest, opt_state)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 20")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 20)
    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")

    data_key, base_key = jax.random.split(jax.random.key(0))
    x = jax.random.normal(data_key, (args.batch, 32, 32, 3), jnp.float32)
    y = jax.random.randint(jax.random.fold_in(data_key, 1), (args.batch,), 0, 10)

    steps, carries = {}, {}
    times = {name: [] for name in CONFIGS}
    cpu_times = {name: [] for name in CONFIGS}
    for name, kwargs in CONFIGS.items():
        steps[name], carry = make_step(kwargs, use_key=name != "none")
        params, rest, opt_state, loss = steps[name](*carry, base_key, 0, x, y)  # compile
        jax.block_until_ready(loss)
        carries[name] = (params, rest, opt_state)

    names = list(CONFIGS)
    for index in range(1, repeats + 1):
        # interleaved: each repeat times every configuration, in a rotating order
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start, cpu_start = time.perf_counter(), time.process_time()
            params, rest, opt_state, loss = steps[name](*carries[name], base_key, index, x, y)
            jax.block_until_ready((params, loss))
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)
            carries[name] = (params, rest, opt_state)
            if not np.isfinite(float(loss)):
                raise RuntimeError(f"{name}: non-finite loss at step {index}")

    base = statistics.median(times["none"])
    cpu_base = statistics.median(cpu_times["none"])
    print(f"ResNet-20 training step, batch {args.batch}, 32x32x3, {repeats} interleaved repeats, "
          f"{jax.devices()[0].platform} ({jax.device_count()} device(s)), jax {jax.__version__}")
    print("| config | dropout | median step (ms) | IQR (ms) | ratio vs none "
          "| process CPU time ratio |")
    print("|---|---|---|---|---|---|")
    for name, kwargs in CONFIGS.items():
        q1, _, q3 = statistics.quantiles(times[name], n=4)
        median = statistics.median(times[name])
        cpu_ratio = statistics.median(cpu_times[name]) / cpu_base
        described = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "-"
        print(f"| {name} | {described} | {1e3 * median:.1f} | {1e3 * (q3 - q1):.1f} | "
              f"{median / base:.3f} | {cpu_ratio:.3f} |")

if __name__ == "__main__":
    main()

"""Seeds of an arm as one program: ``jax.vmap`` and ``lax.map`` against a Python loop of runs.

    nice -n 5 python -m experiments.benchmarks.bench_seed_batching           # the MLPs of issue 10
    python -m experiments.benchmarks.bench_seed_batching --quick             # seconds
    python -m experiments.benchmarks.bench_seed_batching --threads 1         # one core each

The five Fashion-MNIST experiments (``experiments._images``) train every model of an arm
(seeds x sweep points) in one compiled program. This measures, side by side in one run
(interleaved repeats, medians), ``steps`` SGD steps of ``M`` dropout MLPs (input rate 0.2,
hidden 0.5, batch 100) trained three ways, each from the same compiled epoch function of
:class:`experiments._images.Trainer`:

* ``loop``: a Python loop of ``M`` runs of the one-model program (what the one
  program replaces);
* ``vmap``: one program, the models a ``jax.vmap`` axis (batched matrix products);
* ``lax.map``: one program, the models a loop inside it (``models_axis="map"``).

All three give the same parameters (the same keys draw the same masks; checked by
``tests/experiments/test_bench_seed_batching.py``). The ratio reported is the loop's median
time over each candidate's: above 1 means faster than the loop.
"""

from __future__ import annotations

from experiments.benchmarks.timing import single_thread_xla_if_asked

single_thread_xla_if_asked()  # before JAX starts its CPU backend

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402

import jax  # noqa: E402

from experiments import _images as im  # noqa: E402
from experiments.benchmarks.timing import interleaved_medians, markdown_table  # noqa: E402

STRATEGIES = ("loop", "vmap", "lax.map")


def runners(data: im.Images, sizes: Sequence[int], num_models: int,
            steps: int) -> dict[str, Callable[[], object]]:
    """``strategy -> run()``: each run trains ``num_models`` MLPs of ``sizes`` for ``steps``
    steps from the same initial parameters and keys, and returns their final states."""
    spec = {"steps_per_epoch": steps, "num_epochs": 1}
    vmapped = im.Trainer(im.mlp_apply, data, im.TrainSpec(**spec, models_axis="vmap"))
    mapped = im.Trainer(im.mlp_apply, data, im.TrainSpec(**spec, models_axis="map"))
    hypers = im.full_hypers({"in_rate": [0.2] * num_models, "hid_rate": [0.5] * num_models})
    keys = jax.random.split(jax.random.key(0), num_models)
    params = jax.vmap(lambda k: im.init_mlp(k, sizes))(keys)

    def together(trainer):
        return trainer.epoch(trainer.init_state(params), hypers, keys, 0)

    single = jax.jit(vmapped._one_epoch)  # the unbatched program of one model
    epoch = jax.numpy.asarray(0, jax.numpy.int32)

    def loop():
        states = []
        for m in range(num_models):
            p, h, k = jax.tree.map(lambda a, m=m: a[m], (params, hypers, keys))
            states.append(single(vmapped.init_state(p), h, k, epoch, data))
        return jax.tree.map(lambda *a: jax.numpy.stack(a), *states)

    return {"loop": loop, "vmap": lambda: together(vmapped),
            "lax.map": lambda: together(mapped)}


def measure(data: im.Images, sizes: Sequence[int], num_models: int, steps: int,
            repeats: int) -> dict:
    """Median seconds of each strategy and its speed-up over the loop."""
    medians = interleaved_medians(runners(data, sizes, num_models, steps), repeats=repeats,
                                  warmup=1)
    return {"sizes": list(sizes), "num_models": num_models, "steps": steps,
            "median_s": medians,
            "speedup_vs_loop": {k: medians["loop"] / v for k, v in medians.items()}}


def markdown(rows: Sequence[dict], threads: str) -> str:
    table = [["-".join(map(str, r["sizes"])), r["num_models"], r["steps"], name,
              f"{r['median_s'][name] * 1e3:.0f}", f"{r['speedup_vs_loop'][name]:.2f}x"]
             for r in rows for name in STRATEGIES]
    return "\n".join([
        f"## Seeds as one program vs a loop of runs (dropout MLP, batch 100, {threads})", "",
        markdown_table(["MLP", "models", "steps", "strategy", "ms (median)",
                        "speed vs loop"], table)])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small MLPs, few steps")
    parser.add_argument("--models", type=int, nargs="*", default=None, help="models per arm")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="1: single-threaded XLA (set before JAX starts)")
    parser.add_argument("--out", default=None, help="write the table (Markdown) and JSON here")
    args = parser.parse_args(argv)
    all_sizes = ([(784, 32, 32, 10)] if args.quick else
                 [(784, 32, 32, 10), (784, 128, 128, 10), (784, 512, 512, 10)])
    models = args.models or ([3] if args.quick else [3, 10])
    steps = args.steps or (20 if args.quick else 100)
    repeats = args.repeats or (3 if args.quick else 7)
    data = im.load_images(num_val=0, max_train=5_000, max_test=1_000)
    rows = []
    for sizes in all_sizes:
        for m in models:
            rows.append(measure(data, sizes, m, steps, repeats))
            print(json.dumps(rows[-1]), flush=True)
    threads = "1 thread" if args.threads == 1 else f"{os.cpu_count()} CPU cores"
    text = markdown(rows, threads)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench_seed_batching.json"), "w") as f:
            json.dump({"threads": threads, "rows": rows}, f, indent=1)
        with open(os.path.join(args.out, "bench_seed_batching.md"), "w") as f:
            f.write(text + "\n")
    return rows


if __name__ == "__main__":
    main()

"""The seed-batching benchmark compares like with like: all strategies train the same models."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _images as im
from experiments.benchmarks import bench_seed_batching as bench


def test_every_strategy_trains_the_same_models(synthetic_images):
    runs = bench.runners(synthetic_images(300, 100, 1), (784, 16, 16, 10), num_models=3, steps=5)
    assert tuple(runs) == bench.STRATEGIES
    states = {name: run() for name, run in runs.items()}
    reference = states["loop"]["params"]
    first = jax.tree.leaves(reference)[0]
    assert first.shape[0] == 3 and not np.allclose(first[0], first[1])  # distinct models
    start = jax.vmap(lambda k: im.init_mlp(k, (784, 16, 16, 10)))(
        jax.random.split(jax.random.key(0), 3))
    assert not np.allclose(jax.tree.leaves(start)[0], first)  # they trained
    for name in ("vmap", "lax.map"):
        for a, b in zip(jax.tree.leaves(states[name]["params"]), jax.tree.leaves(reference),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)


def test_measure_reports_medians_and_ratios_for_every_strategy(synthetic_images):
    row = bench.measure(synthetic_images(300, 100, 1), (784, 8, 10), num_models=2, steps=2,
                        repeats=1)
    assert set(row["median_s"]) == set(bench.STRATEGIES)
    assert row["speedup_vs_loop"]["loop"] == 1.0
    assert all(t > 0 for t in row["median_s"].values())
    text = bench.markdown([row], "2 CPU cores")
    assert text.count("\n| 784-8-10 | 2 | 2 |") == 3
    assert jnp.isfinite(jnp.asarray(list(row["speedup_vs_loop"].values()))).all()

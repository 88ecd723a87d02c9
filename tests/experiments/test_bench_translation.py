"""The translation benchmark compares like with like: same sizes, same batch, finite losses."""

import numpy as np

from experiments.benchmarks.bench_translation import jax_trainer, make_batch, torch_trainer

SIZES = dict(vocab=50, features=16, heads=2, ffn=32, layers=1, max_length=8)


def test_batch_layout():
    batch = make_batch(5, 8, 50, seed=1)
    mask = batch["target_mask"]
    lengths = mask.sum(1)
    assert lengths[0] == 8 and (lengths >= 4).all()
    assert (batch["target_in"][:, 0] == 1).all()
    assert (batch["target_out"][np.arange(5), lengths - 1] == 2).all()
    np.testing.assert_array_equal(batch["target_in"][:, 1:][mask[:, 1:]],
                                  batch["target_out"][:, :-1][mask[:, 1:]])
    assert (batch["source"][~batch["source_mask"]] == 0).all()


def test_same_model_size_and_both_train():
    batch = make_batch(4, 8, SIZES["vocab"])
    jax_run, jax_params = jax_trainer(SIZES, 0.1, batch)
    torch_run, torch_params = torch_trainer(SIZES, 0.1, batch)
    assert jax_params == torch_params  # the same architecture, parameter for parameter
    # label-smoothed CE at initialisation is about log(vocab) in both; then it falls
    first_jax, first_torch = jax_run(1), torch_run(1)
    assert abs(first_jax - np.log(50)) < 1.0 and abs(first_torch - np.log(50)) < 1.0
    assert jax_run(20) < first_jax and torch_run(20) < first_torch

"""Tests for AUROC and average precision against sklearn."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    roc_auc_score,
)

from jdrop import uncertainty as u


def maybe_jit(fn, jit, **static):
    fn = functools.partial(fn, **static)
    return jax.jit(fn) if jit else fn


def allclose(actual, expected, atol=1e-5, rtol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, atol=atol, rtol=rtol)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("decimals", [0, 1, 6])  # 0 and 1: many tied scores.
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_average_precision_match_sklearn(seed, decimals, jit):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(size=400) + 0.8 * labels, decimals)
    scores32 = jnp.asarray(scores, jnp.float32)
    reference_scores = np.asarray(scores32, np.float64)  # Same ties as the float32 input.
    allclose(maybe_jit(u.auroc, jit)(scores32, labels), roc_auc_score(labels, reference_scores))
    allclose(
        maybe_jit(u.average_precision, jit)(scores32, labels),
        average_precision_score(labels, reference_scores),
    )


def test_auroc_extremes_and_label_types():
    scores = jnp.array([0.1, 0.2, 0.3, 0.4])
    assert float(u.auroc(scores, jnp.array([0, 0, 1, 1]))) == 1.0
    assert float(u.auroc(scores, jnp.array([1, 1, 0, 0]))) == 0.0
    assert float(u.auroc(jnp.ones(4), jnp.array([0, 1, 0, 1]))) == 0.5  # All tied.
    assert float(u.average_precision(scores, jnp.array([True, True, True, True]))) == 1.0
    integer_scores = np.array([3, 1, 2, 2, 5])
    labels = np.array([1, 0, 1, 0, 1])
    allclose(u.auroc(integer_scores, labels), roc_auc_score(labels, integer_scores))
    allclose(
        u.average_precision(integer_scores, labels),
        average_precision_score(labels, integer_scores),
    )


def test_binary_metric_validation():
    scores = jnp.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"labels.shape=\(2,\).*scores.shape=\(3,\)"):
        u.auroc(scores, jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r"scores.shape=\(3, 1\)"):
        u.auroc(scores[:, None], jnp.array([0, 1, 1]))
    with pytest.raises(ValueError, match="no negatives"):
        u.auroc(scores, jnp.array([1, 1, 1]))
    with pytest.raises(ValueError, match="no positives"):
        u.auroc(scores, jnp.array([0, 0, 0]))
    with pytest.raises(ValueError, match="no positives"):
        u.average_precision(scores, jnp.array([0, 0, 0]))
    with pytest.raises(ValueError, match="0 or 1"):
        u.average_precision(scores, jnp.array([0, 2, 1]))
    with pytest.raises(ValueError, match="NaN"):
        u.auroc(jnp.array([0.1, jnp.nan, 0.3]), jnp.array([0, 1, 1]))
    with pytest.raises(TypeError, match="labels"):
        u.auroc(scores, jnp.array([0.0, 1.0, 1.0]))

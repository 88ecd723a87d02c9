"""Tests of the checks of metric inputs: probabilities, row sums, labels, values under jit."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import uncertainty as u

GOOD_PROBS = jnp.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [0.1, 0.9]])


GOOD_LABELS = jnp.array([0, 1, 1, 0])


PROB_METRICS = [
    u.accuracy,
    u.nll,
    u.brier_score,
    u.expected_calibration_error,
    u.maximum_calibration_error,
    u.reliability_data,
]


@pytest.mark.parametrize("fn", PROB_METRICS, ids=lambda f: f.__name__)
def test_probability_metric_validation(fn):
    with pytest.raises(ValueError, match=r"labels.shape=\(3,\).*probs.shape=\(4, 2\)"):
        fn(GOOD_PROBS, GOOD_LABELS[:3])
    with pytest.raises(ValueError, match="non-negative"):
        fn(GOOD_PROBS.at[0].set(jnp.array([1.2, -0.2])), GOOD_LABELS)
    with pytest.raises(ValueError, match="sum to 1"):
        fn(GOOD_PROBS.at[0, 0].set(0.75), GOOD_LABELS)
    with pytest.raises(ValueError, match="sum to 1"):
        fn(GOOD_PROBS.at[0, 0].set(jnp.nan), GOOD_LABELS)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        fn(GOOD_PROBS, GOOD_LABELS.at[0].set(2))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        fn(GOOD_PROBS[None], GOOD_LABELS[None])
    with pytest.raises(TypeError, match="labels"):
        fn(GOOD_PROBS, GOOD_LABELS.astype(jnp.float32))
    with pytest.raises(TypeError, match="floating"):
        fn(GOOD_PROBS.astype(jnp.int32), GOOD_LABELS)


def test_row_sum_tolerance_is_as_documented():
    within = GOOD_PROBS.at[0, 0].set(0.7009)  # Row sums to 1.0009 <= 1 + 1e-3.
    beyond = GOOD_PROBS.at[0, 0].set(0.702)  # Row sums to 1.002.
    assert np.isfinite(float(u.nll(within, GOOD_LABELS)))
    with pytest.raises(ValueError, match=r"atol=0.001"):
        u.nll(beyond, GOOD_LABELS)
    half = beyond.astype(jnp.float16)  # 16-bit floats get atol = 1e-2.
    assert np.isfinite(float(u.nll(half, GOOD_LABELS)))
    with pytest.raises(ValueError, match=r"atol=0.01"):
        u.nll(GOOD_PROBS.at[0, 0].set(0.72).astype(jnp.float16), GOOD_LABELS)


def test_value_checks_are_skipped_under_jit():
    # Documented: invalid values are undefined under jit (no error, no host sync).
    bad = GOOD_PROBS.at[0, 0].set(0.9)
    value = jax.jit(u.brier_score)(bad, GOOD_LABELS)
    assert value.shape == ()
    with pytest.raises(ValueError, match="sum to 1"):
        u.brier_score(bad, GOOD_LABELS)

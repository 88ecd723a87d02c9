"""Tests for the calibration metrics (ECE, MCE, reliability data) against explicit loops."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import uncertainty as u


def np_calibration(probs, labels, num_bins, binning):
    """(ECE, MCE, counts, mean confidences, accuracies) by explicit loops over bins."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == np.asarray(labels)).astype(np.float64)
    n = len(conf)
    if binning == "equal_width":
        edges = np.linspace(0, 1, num_bins + 1)
        members = [
            (conf > edges[b]) & (conf <= edges[b + 1]) if b > 0 else (conf <= edges[1])
            for b in range(num_bins)
        ]
    else:
        rank = np.empty(n, int)
        rank[np.argsort(conf, kind="stable")] = np.arange(n)
        members = [(rank * num_bins) // n == b for b in range(num_bins)]
    ece, mce, counts, confs, accs = 0.0, 0.0, [], [], []
    for m in members:
        counts.append(m.sum())
        if m.sum() == 0:
            confs.append(0.0)
            accs.append(0.0)
            continue
        gap = abs(correct[m].mean() - conf[m].mean())
        ece += m.sum() / n * gap
        mce = max(mce, gap)
        confs.append(conf[m].mean())
        accs.append(correct[m].mean())
    return ece, mce, np.array(counts), np.array(confs), np.array(accs)


def maybe_jit(fn, jit, **static):
    fn = functools.partial(fn, **static)
    return jax.jit(fn) if jit else fn


def allclose(actual, expected, atol=1e-5, rtol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, atol=atol, rtol=rtol)


def random_probs(seed, n, k, concentration=1.0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, concentration), size=n)
    labels = rng.integers(0, k, size=n)
    return probs, labels  # numpy float64 and int64, as users often hold them.


# Six binary predictions, worked by hand. Confidence = max prob, correct = argmax == label.
#   1: [0.95, 0.05] label 0 -> conf 0.95, correct
#   2: [0.85, 0.15] label 1 -> conf 0.85, wrong
#   3: [0.30, 0.70] label 1 -> conf 0.70, correct
#   4: [0.35, 0.65] label 1 -> conf 0.65, correct
#   5: [0.55, 0.45] label 0 -> conf 0.55, correct
#   6: [0.45, 0.55] label 0 -> conf 0.55, wrong
# Five equal-width bins (0.2 wide):
#   (0.8, 1.0]: {1, 2} conf 0.900 acc 0.5 gap 0.400
#   (0.6, 0.8]: {3, 4} conf 0.675 acc 1.0 gap 0.325
#   (0.4, 0.6]: {5, 6} conf 0.550 acc 0.5 gap 0.050
#   ECE = (2/6)(0.4 + 0.325 + 0.05) = 0.775 / 3 = 0.258333...; MCE = 0.4.
# Two equal-mass bins (sorted confidences 0.55, 0.55, 0.65 | 0.70, 0.85, 0.95):
#   low:  conf 1.75/3 = 0.583333 acc 2/3 gap 0.083333
#   high: conf 2.50/3 = 0.833333 acc 2/3 gap 0.166667
#   ECE = 0.5 * 0.083333 + 0.5 * 0.166667 = 0.125; MCE = 0.166667.
HAND_PROBS = jnp.array(
    [[0.95, 0.05], [0.85, 0.15], [0.30, 0.70], [0.35, 0.65], [0.55, 0.45], [0.45, 0.55]]
)


HAND_LABELS = jnp.array([0, 1, 1, 1, 0, 0])


@pytest.mark.parametrize("jit", [False, True])
def test_hand_computed_calibration(jit):
    def metric(fn, **kw):
        return float(maybe_jit(fn, jit, **kw)(HAND_PROBS, HAND_LABELS))

    width = {"num_bins": 5, "binning": "equal_width"}
    mass = {"num_bins": 2, "binning": "equal_mass"}
    assert metric(u.expected_calibration_error, **width) == pytest.approx(0.775 / 3, abs=1e-6)
    assert metric(u.maximum_calibration_error, **width) == pytest.approx(0.4, abs=1e-6)
    assert metric(u.expected_calibration_error, **mass) == pytest.approx(0.125, abs=1e-6)
    assert metric(u.maximum_calibration_error, **mass) == pytest.approx(1 / 6, abs=1e-6)

    data = maybe_jit(u.reliability_data, jit, **width)(HAND_PROBS, HAND_LABELS)
    np.testing.assert_array_equal(np.asarray(data.count), [0, 0, 2, 2, 2])
    allclose(data.confidence, [0, 0, 0.55, 0.675, 0.9])
    allclose(data.accuracy, [0, 0, 0.5, 1.0, 0.5])
    allclose(data.bin_edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    mass_data = u.reliability_data(HAND_PROBS, HAND_LABELS, **mass)
    np.testing.assert_array_equal(np.asarray(mass_data.count), [3, 3])
    allclose(mass_data.bin_edges, [0.0, 0.7, 1.0])


@pytest.mark.parametrize("binning", u.BINNINGS)
@pytest.mark.parametrize("num_bins", [1, 3, 10, 15])
def test_calibration_matches_numpy_loops(num_bins, binning):
    probs64, labels64 = random_probs(14, 257, 3, concentration=0.5)
    probs = jnp.asarray(probs64, jnp.float32)
    ece, mce, counts, confs, accs = np_calibration(probs, labels64, num_bins, binning)
    kw = {"num_bins": num_bins, "binning": binning}
    allclose(u.expected_calibration_error(probs, labels64, **kw), ece)
    allclose(u.maximum_calibration_error(probs, labels64, **kw), mce)
    data = u.reliability_data(probs, labels64, **kw)
    np.testing.assert_array_equal(np.asarray(data.count), counts)
    allclose(data.confidence, confs)
    allclose(data.accuracy, accs)
    assert float(u.maximum_calibration_error(probs, labels64, **kw)) >= float(
        u.expected_calibration_error(probs, labels64, **kw)
    )


def test_equal_mass_bins_are_balanced_with_fewer_examples_than_bins():
    probs, labels = random_probs(15, 4, 2)
    data = u.reliability_data(probs, labels, num_bins=6, binning="equal_mass")
    assert int(data.count.sum()) == 4
    assert int(data.count.max()) == 1


@pytest.mark.parametrize("binning", u.BINNINGS)
def test_ece_near_zero_for_calibrated_predictions(binning):
    rng = np.random.default_rng(16)
    n, k = 200_000, 4
    probs = rng.dirichlet(np.full(k, 0.7), size=n)
    labels = (probs.cumsum(-1) < rng.uniform(size=(n, 1))).sum(-1)  # y ~ Categorical(p).
    labels = np.minimum(labels, k - 1)
    ece = float(u.expected_calibration_error(probs, labels, binning=binning))
    assert ece < 0.02
    # The same labels with sharpened (overconfident) probabilities are miscalibrated.
    sharp = probs**3 / (probs**3).sum(-1, keepdims=True)
    assert float(u.expected_calibration_error(sharp, labels, binning=binning)) > 0.05


GOOD_PROBS = jnp.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [0.1, 0.9]])


GOOD_LABELS = jnp.array([0, 1, 1, 0])


@pytest.mark.parametrize(
    "fn", [u.expected_calibration_error, u.maximum_calibration_error, u.reliability_data]
)
def test_num_bins_and_binning_validation(fn):
    with pytest.raises(ValueError, match="num_bins"):
        fn(GOOD_PROBS, GOOD_LABELS, num_bins=0)
    with pytest.raises(TypeError, match="num_bins"):
        fn(GOOD_PROBS, GOOD_LABELS, num_bins=2.5)
    with pytest.raises(ValueError, match="binning"):
        fn(GOOD_PROBS, GOOD_LABELS, binning="quantile")

"""Calibration bins with confidences exactly on their edges (issue 16).

Equal-width bin ``b`` holds ``(edges[b], edges[b+1]]`` with ``edges[b]`` = ``b / B``
rounded to the probabilities' dtype: a confidence written as ``b / B`` (``0.2``,
``0.9``, ``1.0``) sits on an edge and belongs to the bin below it, for every ``B``.
Equal-mass bin ``b`` holds the ranks ``r`` (stable sort) with ``floor(r B / N) = b``.
Both against numpy references written from those sentences.
"""

import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdrop import uncertainty as u


@functools.partial(jax.jit, static_argnames=("num_bins", "binning"))
def _metrics(probs, labels, num_bins, binning="equal_width"):
    """reliability_data, ECE and MCE in one program (one compile per case)."""
    kw = dict(num_bins=num_bins, binning=binning)
    return (u.reliability_data(probs, labels, **kw), u.expected_calibration_error(
        probs, labels, **kw), u.maximum_calibration_error(probs, labels, **kw))


def _edge_probs(conf, dtype):
    """Rows with max probability exactly ``conf`` (class 0), the rest spread evenly."""
    k = len(conf) + 2
    rest = (1 - conf.astype(np.float64)[:, None]) / (k - 1)
    probs = np.concatenate([conf[:, None].astype(np.float64),
                            np.broadcast_to(rest, (len(conf), k - 1))], 1)
    probs = np.array(jnp.asarray(probs, dtype))
    probs[:, 0] = conf  # exactly the edge value, whatever the rounding of the rest
    return probs


def _np_reference(conf, correct, edges):
    """Bin of c: the first b with c <= edges[b + 1] (the lower bin on an edge)."""
    conf64 = conf.astype(np.float64)
    index = np.array([np.argmax(c <= edges[1:].astype(np.float64)) for c in conf64])
    b = len(edges) - 1
    count = np.bincount(index, minlength=b)
    gaps = [abs(correct[index == i].mean() - conf64[index == i].mean())
            for i in range(b) if count[i]]
    weights = [count[i] for i in range(b) if count[i]]
    return index, count, float(np.dot(gaps, weights) / len(conf)), max(gaps)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("num_bins", [7, 10, 25, 29])
def test_equal_width_confidences_on_every_edge(num_bins, dtype):
    # b / B rounded to the dtype from the exact fraction (not from the library's arithmetic)
    edges = np.array([np.asarray(jnp.asarray(float(Fraction(b, num_bins)), dtype))
                      for b in range(num_bins + 1)])
    conf = np.concatenate([edges[1:], edges[1:]])  # each edge twice; 1.0 included
    labels = np.tile([0, 1], len(conf))[: len(conf)]  # alternately right and wrong
    probs = _edge_probs(conf, dtype)
    index, count, ece, mce = _np_reference(conf, (labels == 0).astype(np.float64), edges)
    np.testing.assert_array_equal(index[:num_bins], np.arange(num_bins))  # the lower bin
    data, got_ece, got_mce = _metrics(jnp.asarray(probs, dtype), jnp.asarray(labels),
                                      num_bins=num_bins)
    np.testing.assert_array_equal(np.asarray(data.bin_edges, np.float64), edges)
    np.testing.assert_array_equal(np.asarray(data.count), count)
    tol = 1e-6 if dtype == jnp.float32 else 1e-2
    assert float(got_ece) == pytest.approx(ece, abs=tol)
    assert float(got_mce) == pytest.approx(mce, abs=tol)


@pytest.mark.parametrize("n,num_bins", [(11, 4), (5, 8)])
def test_equal_mass_ranks_ties_and_edges(n, num_bins):
    rng = np.random.default_rng(n)
    conf = np.round(rng.uniform(0.4, 1.0, n), 1).astype(np.float32)  # many ties
    labels = rng.integers(0, 2, n)
    probs = _edge_probs(conf, jnp.float32)
    rank = np.empty(n, int)
    rank[np.argsort(conf, kind="stable")] = np.arange(n)
    index = rank * num_bins // n
    count = np.bincount(index, minlength=num_bins)
    sorted_conf = np.sort(conf, kind="stable")
    first = [-(-b * n // num_bins) for b in range(1, num_bins)]  # ceil(b n / B)
    edges = [0.0] + [sorted_conf[min(f, n - 1)] for f in first] + [1.0]
    data, ece, _ = _metrics(jnp.asarray(probs), jnp.asarray(labels), num_bins=num_bins,
                            binning="equal_mass")
    np.testing.assert_array_equal(np.asarray(data.count), count)
    np.testing.assert_array_equal(np.asarray(data.bin_edges), np.float32(edges))
    correct = (labels == 0).astype(np.float64)
    conf64 = conf.astype(np.float64)
    gaps = [abs(correct[index == b].mean() - conf64[index == b].mean()) * count[b]
            for b in range(num_bins) if count[b]]
    assert float(ece) == pytest.approx(sum(gaps) / n, abs=1e-6)

"""Sequence losses (label smoothing, symmetric KL, R-Drop), the inverse-sqrt schedule and
curriculum dropout."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdrop.train import (
    curriculum_rate,
    inverse_sqrt_schedule,
    label_smoothed_cross_entropy,
    make_schedule,
    rdrop_loss,
    symmetric_kl,
)

LOGITS = jax.random.normal(jax.random.key(0), (3, 5, 7))
LABELS = jax.random.randint(jax.random.key(1), (3, 5), 0, 7)
MASK = jnp.arange(5)[None, :] < jnp.array([5, 3, 1])[:, None]


def test_label_smoothing_matches_optax_on_real_tokens():
    eps = 0.1
    with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
        targets = optax.smooth_labels(jax.nn.one_hot(LABELS, 7), eps)
        per_token = optax.softmax_cross_entropy(LOGITS, targets)
    expected = jnp.sum(jnp.where(MASK, per_token, 0.0)) / jnp.sum(MASK, dtype=jnp.float32)
    got = label_smoothed_cross_entropy(LOGITS, LABELS, MASK, smoothing=eps)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_padding_is_ignored_and_zero_smoothing_is_nll():
    garbage = jnp.where(MASK[..., None], LOGITS, 1e4)
    a = label_smoothed_cross_entropy(LOGITS, LABELS, MASK, smoothing=0.0)
    np.testing.assert_allclose(label_smoothed_cross_entropy(garbage, LABELS, MASK, smoothing=0.0),
                               a, rtol=1e-6)
    nll = optax.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS)
    np.testing.assert_allclose(a, nll[MASK].mean(), rtol=1e-6)
    np.testing.assert_allclose(label_smoothed_cross_entropy(LOGITS, LABELS, smoothing=0.0),
                               nll.mean(), rtol=1e-6)


def test_all_padding_gives_zero_not_nan():
    loss = label_smoothed_cross_entropy(LOGITS, LABELS, jnp.zeros((3, 5), bool))
    assert float(loss) == 0.0


def test_symmetric_kl():
    other = LOGITS + jax.random.normal(jax.random.key(2), LOGITS.shape)
    p, q = jax.nn.softmax(LOGITS), jax.nn.softmax(other)
    kl = lambda a, b: jnp.sum(a * (jnp.log(a) - jnp.log(b)), -1)  # noqa: E731
    per_token = 0.5 * (kl(p, q) + kl(q, p))
    np.testing.assert_allclose(symmetric_kl(LOGITS, other, MASK), per_token[MASK].mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(symmetric_kl(LOGITS, other), symmetric_kl(other, LOGITS),
                               rtol=1e-6)
    assert float(symmetric_kl(LOGITS, LOGITS + 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_rdrop_loss_is_paper_objective_halved():
    other = LOGITS * 0.5
    loss, (ce, kl) = rdrop_loss(LOGITS, other, LABELS, MASK, alpha=5.0, smoothing=0.1)
    ce_a = label_smoothed_cross_entropy(LOGITS, LABELS, MASK, smoothing=0.1)
    ce_b = label_smoothed_cross_entropy(other, LABELS, MASK, smoothing=0.1)
    np.testing.assert_allclose(2 * loss, ce_a + ce_b + 5.0 * symmetric_kl(LOGITS, other, MASK),
                               rtol=1e-5)
    np.testing.assert_allclose(ce, (ce_a + ce_b) / 2, rtol=1e-6)
    grads = jax.grad(lambda x: rdrop_loss(x, other, LABELS, MASK, alpha=1.0)[0])(LOGITS)
    assert bool(jnp.all(grads[~MASK] == 0))  # padding gets no gradient


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: label_smoothed_cross_entropy(LOGITS, LABELS, smoothing=1.0), "smoothing"),
        (lambda: label_smoothed_cross_entropy(LOGITS, LABELS[:, :3]), "labels.shape"),
        (lambda: label_smoothed_cross_entropy(LOGITS, LABELS, MASK[:, :2]), "mask"),
        (lambda: symmetric_kl(LOGITS, LOGITS[:2]), "one shape"),
        (lambda: rdrop_loss(LOGITS, LOGITS, LABELS, alpha=-1.0), "alpha"),
    ],
)
def test_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_inverse_sqrt_schedule():
    schedule = inverse_sqrt_schedule(2e-3, 100)
    steps = np.array([0, 49, 99, 399, 9999])
    lr = np.array([float(schedule(t)) for t in steps])
    s = steps + 1.0
    np.testing.assert_allclose(lr, 2e-3 * np.minimum(s / 100, np.sqrt(100 / s)), rtol=1e-6)
    assert lr.argmax() == 2  # the peak at the end of the warm-up
    # the paper's d_model^-0.5 * min(s^-0.5, s * w^-1.5) with the matching peak
    d, w = 512, 4000
    paper = inverse_sqrt_schedule((d * w) ** -0.5, w)
    for t in (0, 1000, 3999, 20000):
        s = t + 1
        assert float(paper(t)) == pytest.approx(d**-0.5 * min(s**-0.5, s * w**-1.5), rel=1e-5)
    by_name = make_schedule("inverse_sqrt", 2e-3, warmup_steps=100)
    assert float(by_name(399)) == pytest.approx(lr[3])
    with pytest.raises(ValueError, match="warmup_steps"):
        make_schedule("inverse_sqrt", 1e-3)
    with pytest.raises(ValueError, match="warmup_steps"):
        inverse_sqrt_schedule(1e-3, 0)


def test_curriculum_rate():
    for t in (0, 3, 10, 50):
        assert curriculum_rate(t, 0.3, 0.1) == pytest.approx(0.3 * (1 - math.exp(-0.1 * t)))
    rates = [curriculum_rate(t, 0.3, 0.2, quantum=0.05) for t in range(60)]
    assert rates[0] == 0.0 and rates[-1] == 0.3
    assert rates == sorted(rates)  # monotone
    assert len(set(rates)) <= 7  # at most final / quantum + 1 programs
    assert all(abs(r / 0.05 - round(r / 0.05)) < 1e-9 for r in rates)
    for t in range(60):  # never above the exact curve except the final snap
        exact = curriculum_rate(t, 0.3, 0.2)
        assert rates[t] <= exact + 1e-12 or rates[t] == 0.3
    with pytest.raises(ValueError, match="final_rate"):
        curriculum_rate(1, 1.0, 0.1)
    with pytest.raises(ValueError, match="gamma"):
        curriculum_rate(1, 0.3, 0.0)
    with pytest.raises(ValueError, match="step"):
        curriculum_rate(-1, 0.3, 0.1)

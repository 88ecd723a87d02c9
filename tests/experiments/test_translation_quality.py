"""MC-dropout quality estimation: log-probabilities, their MC mean/variance, rank correlations."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop
from experiments.translation import quality
from experiments.translation.quality import (
    correlation_difference,
    mc_sentence_scores,
    quality_estimates,
    quality_indicators,
    quality_scatter,
    rank_correlations,
    sentence_log_probs,
)
from jdrop.data import source_batches, translation_batches

V = 11


def test_doctests():
    result = doctest.testmod(quality, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 15


def numpy_log_probs(logits, target_out, target_mask):
    logits = np.asarray(logits, np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, np.asarray(target_out)[..., None], -1)[..., 0]
    total = (picked * target_mask).sum(-1)
    return total, total / np.maximum(target_mask.sum(-1), 1)


def make_batch(seed=0, b=5, s=6, t=7):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, t + 1, b)
    lengths[-1] = 0  # a padding row
    target_mask = np.arange(t)[None] < lengths[:, None]
    target_out = np.where(target_mask, rng.integers(3, V, (b, t)), 0).astype(np.int32)
    source = rng.integers(3, V, (b, s)).astype(np.int32)
    return {
        "source": source,
        "source_mask": np.ones((b, s), bool),
        "target_in": np.roll(target_out, 1, axis=1),
        "target_out": target_out,
        "target_mask": target_mask,
    }


class ToyModel:
    """A tiny stochastic 'decoder': logits = dropout(embedding of the inputs) @ W.

    Deterministic for ``key=None``; row ``i``'s dropout rate grows with ``i``, so later
    rows have noisier log-probabilities.
    """

    def __init__(self, seed=0, offset=0.0):
        rng = np.random.default_rng(seed)
        self.embed = jnp.asarray(rng.normal(size=(V, 16)), jnp.float32)
        self.w = jnp.asarray(rng.normal(size=(16, V)), jnp.float32)
        self.offset = offset

    def __call__(self, key, source, target_in, source_mask, target_mask):
        h = self.embed[target_in] + self.embed[source].mean(1, keepdims=True)
        if key is not None:
            b = h.shape[0]
            rates = jnp.linspace(0.05, 0.6, b)[:, None, None]
            keep = jax.random.uniform(key, h.shape) >= rates
            h = jnp.where(keep, h / (1 - rates), 0.0)
        logits = h @ self.w
        # a large constant on one logit makes every log-probability ~ -offset
        return logits.at[..., 0].add(self.offset)


def explicit_mc(model, key, batch, num_samples):
    """The T passes one by one with the keys jdrop.mc documents, in float64."""
    keys = jax.random.split(key, num_samples)
    arrays = [batch[k] for k in ("source", "target_in", "source_mask", "target_mask")]
    sums, means = [], []
    for k in keys:
        total, mean = numpy_log_probs(model(k, *arrays), batch["target_out"], batch["target_mask"])
        sums.append(total)
        means.append(mean)
    return np.array(sums), np.array(means)


def test_sentence_log_probs_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, V)) * 4
    target = rng.integers(0, V, (3, 5))
    mask = np.arange(5)[None] < np.array([[5], [2], [0]])
    total, mean = sentence_log_probs(jnp.asarray(logits, jnp.bfloat16), target, mask)
    assert total.dtype == jnp.float32 and mean.dtype == jnp.float32
    ref_total, ref_mean = numpy_log_probs(
        np.asarray(jnp.asarray(logits, jnp.bfloat16), np.float64), target, mask
    )
    np.testing.assert_allclose(total, ref_total, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-5, atol=1e-5)
    assert float(total[2]) == 0.0


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 10])
def test_mc_scores_equal_the_explicit_passes(chunk_size):
    model, batch, key = ToyModel(), make_batch(), jax.random.key(3)
    out = mc_sentence_scores(model, key, batch, num_samples=10, chunk_size=chunk_size)
    arrays = [batch[k] for k in ("source", "target_in", "source_mask", "target_mask")]
    det_total, det_mean = numpy_log_probs(model(None, *arrays), batch["target_out"],
                                          batch["target_mask"])
    np.testing.assert_allclose(out["log_prob"], det_total, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["tp"], det_mean, rtol=1e-5, atol=1e-5)
    sums, means = explicit_mc(model, key, batch, 10)
    np.testing.assert_allclose(out["mc_mean"], sums.mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["mc_var"], sums.var(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["d_tp"], means.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["d_var"], means.var(0), rtol=1e-4, atol=1e-6)
    assert out["length"].tolist() == batch["target_mask"].sum(1).tolist()
    assert out["mc_var"][-1] == 0 and out["log_prob"][-1] == 0  # the padding row
    assert all(v.dtype == np.float32 for k, v in out.items() if k != "length")
    # the noisier rows (higher dropout rate) have the larger variance of TP
    assert out["d_var"][3] > out["d_var"][0]


def test_variance_is_accurate_in_float32_far_from_zero():
    """Log-probabilities near -1e4 with O(1) spread: sum-of-squares in float32 would lose it."""
    model, batch, key = ToyModel(offset=300.0), make_batch(seed=1), jax.random.key(0)
    out = mc_sentence_scores(model, key, batch, num_samples=16, chunk_size=5)
    sums, _ = explicit_mc(model, key, batch, 16)
    assert np.abs(sums[:, :-1]).min() > 300  # far from zero
    np.testing.assert_allclose(out["mc_var"], sums.var(0), rtol=2e-3, atol=1e-2)
    naive = np.float32(np.mean(sums.astype(np.float32) ** 2, 0)) - np.float32(
        sums.astype(np.float32).mean(0)) ** 2
    assert np.abs(out["mc_var"] - sums.var(0)).max() <= np.abs(naive - sums.var(0)).max()


def test_same_key_same_answer_other_key_other_answer():
    model, batch = ToyModel(), make_batch()
    a = mc_sentence_scores(model, jax.random.key(0), batch, num_samples=6)
    b = mc_sentence_scores(model, jax.random.key(0), batch, num_samples=6)
    c = mc_sentence_scores(model, jax.random.key(1), batch, num_samples=6)
    legacy = mc_sentence_scores(model, jax.random.PRNGKey(0), batch, num_samples=6)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["mc_mean"], c["mc_mean"])
    np.testing.assert_array_equal(a["log_prob"], legacy["log_prob"])


def test_with_a_real_jdrop_dropout_model_and_real_batches():
    """End to end: translation_batches -> a logits_fn using jdrop.dropout -> estimates."""
    rng = np.random.default_rng(0)
    src = [rng.integers(4, V, rng.integers(1, 9)) for _ in range(30)]
    tgt = [rng.integers(4, V, rng.integers(1, 9)) for _ in range(30)]
    model = ToyModel()

    def logits_fn(key, source, target_in, source_mask, target_mask):
        h = model.embed[target_in]
        if key is not None:
            h = jdrop.dropout(key, h, 0.3)
        return h @ model.w

    batches = list(translation_batches(src, tgt, batch_size=8, shuffle=False))
    # give each batch the rows' positions, in the order translation_batches chose
    seen = {}
    for batch in batches:
        positions = []
        for row in range(len(batch["source"])):
            s = tuple(batch["source"][row][batch["source_mask"][row]].tolist())
            t = tuple(batch["target_out"][row][batch["target_mask"][row]][:-1].tolist())
            i = next(j for j in range(30) if j not in seen and tuple(src[j]) == s
                     and tuple(tgt[j]) == t)
            seen[i] = True
            positions.append(i)
        batch["index"] = np.array(positions)
    est = quality_estimates(logits_fn, jax.random.key(0), batches, num_samples=8)
    assert est["log_prob"].shape == (30,)
    np.testing.assert_array_equal(est["length"], [len(t) + 1 for t in tgt])
    # the deterministic log-probability of sentence 7, computed directly
    t_in = np.array([[1, *tgt[7]]])
    t_out = np.array([[*tgt[7], 2]])
    logits = logits_fn(None, None, t_in, None, None)
    direct, _ = numpy_log_probs(logits, t_out, np.ones_like(t_out, bool))
    assert est["log_prob"][7] == pytest.approx(direct[0], rel=1e-5)
    assert (est["mc_var"] > 0).all()


def test_quality_estimates_drops_padding_rows_and_needs_consistent_index():
    model = ToyModel()
    batch = make_batch()
    out = quality_estimates(model, jax.random.key(0), [batch, batch], num_samples=4)
    assert out["log_prob"].shape == (8,)  # 2 x (5 rows - 1 padding row)
    one = mc_sentence_scores(model, jax.random.fold_in(jax.random.key(0), 1), batch,
                             num_samples=4)
    np.testing.assert_array_equal(out["mc_mean"][4:], one["mc_mean"][:4])
    with pytest.raises(ValueError, match="at least one batch"):
        quality_estimates(model, jax.random.key(0), [], num_samples=4)
    bad = dict(batch, index=np.array([0, 0, 1, 2, 3]))
    with pytest.raises(ValueError, match="permutation"):
        quality_estimates(model, jax.random.key(0), [bad], num_samples=4)


def test_source_batches_index_works_as_well():
    batches, order = source_batches([[5, 6], [7], [8, 9, 10]], batch_size=2)
    assert np.concatenate([b["index"] for b in batches]).tolist() == order.tolist()


def test_mc_scores_errors():
    model, batch = ToyModel(), make_batch()
    with pytest.raises(ValueError, match="num_samples must be >= 2"):
        mc_sentence_scores(model, jax.random.key(0), batch, num_samples=1)
    with pytest.raises(ValueError, match=r"missing \['target_out'\]"):
        mc_sentence_scores(model, jax.random.key(0),
                           {k: v for k, v in batch.items() if k != "target_out"})
    with pytest.raises(ValueError, match="share one"):
        mc_sentence_scores(model, jax.random.key(0), dict(batch, target_out=batch["source"]))
    with pytest.raises(TypeError, match="logits_fn must be callable"):
        mc_sentence_scores("model", jax.random.key(0), batch)


# ------------------------------------------------------------- rank correlations


def spearman_reference(a, b):
    """Average ranks for ties, then Pearson's r of the ranks (no scipy)."""

    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(1, len(x) + 1)
        for value in np.unique(x):
            tied = x == value
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra**2).sum() * (rb**2).sum()))


def test_spearman_with_ties_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    chrf = np.round(rng.uniform(0, 100, 200), -1)  # many ties
    score = np.round(chrf + rng.normal(0, 30, 200), -1)
    out = rank_correlations({"s": score}, chrf, num_bootstrap=200)["s"]
    assert out["spearman"] == pytest.approx(spearman_reference(score, chrf), abs=1e-12)
    assert out["low"] < out["spearman"] < out["high"]


def test_bootstrap_interval_behaves():
    rng = np.random.default_rng(1)

    def width(n):
        chrf = rng.uniform(0, 100, n)
        out = rank_correlations({"s": chrf + rng.normal(0, 40, n)}, chrf, num_bootstrap=300)["s"]
        return out["high"] - out["low"]

    assert width(1000) < width(100) / 2  # ~1/sqrt(n)
    chrf = rng.uniform(0, 100, 100)
    s = chrf + rng.normal(0, 40, 100)
    a = rank_correlations({"s": s, "exp": np.exp(s / 10)}, chrf, seed=4, num_bootstrap=200)
    b = rank_correlations({"s": s}, chrf, seed=4, num_bootstrap=200)
    assert a["s"] == b["s"]  # deterministic per seed
    assert a["exp"] == pytest.approx(a["s"])  # a rank statistic: monotone maps change nothing


def test_indicators_are_oriented_higher_is_better():
    # sentences 0..n: quality falls, variance rises, log-prob falls
    n = 50
    chrf = np.linspace(90, 10, n)
    est = {
        "log_prob": -np.linspace(5, 40, n), "tp": -np.linspace(0.2, 2, n),
        "mc_mean": -np.linspace(6, 41, n), "d_tp": -np.linspace(0.3, 2.1, n),
        "mc_var": np.linspace(0.1, 9, n), "d_var": np.linspace(0.01, 0.5, n),
    }
    ind = quality_indicators(est)
    combo = ind.pop("d_combo")
    out = rank_correlations(ind, chrf, num_bootstrap=50)
    assert all(v["spearman"] == pytest.approx(1.0) for v in out.values()), out
    np.testing.assert_allclose(combo, 1 - est["d_tp"] / est["d_var"])
    np.testing.assert_array_equal(ind["neg_mc_var"], -est["mc_var"])
    with pytest.raises(ValueError, match="missing"):
        quality_indicators({"log_prob": chrf})


def test_correlation_difference():
    rng = np.random.default_rng(0)
    chrf = rng.uniform(0, 100, 300)
    good, bad = chrf + rng.normal(0, 10, 300), chrf + rng.normal(0, 60, 300)
    out = correlation_difference(good, bad, chrf, num_bootstrap=300)
    single = rank_correlations({"good": good, "bad": bad}, chrf, num_bootstrap=300)
    assert out["difference"] == pytest.approx(
        single["good"]["spearman"] - single["bad"]["spearman"])
    assert 0 < out["low"] < out["difference"] < out["high"]
    same = correlation_difference(good, good, chrf, num_bootstrap=50)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0}


def test_correlation_errors():
    chrf = np.arange(5.0)
    with pytest.raises(ValueError, match=r"scores\['a'\] must have the shape of chrf"):
        rank_correlations({"a": np.arange(4.0)}, chrf)
    with pytest.raises(ValueError, match="at least 3"):
        rank_correlations({"a": np.arange(2.0)}, np.arange(2.0))
    with pytest.raises(ValueError, match="NaN"):
        rank_correlations({"a": np.array([1, np.nan, 2, 3, 4])}, chrf)
    with pytest.raises(ValueError, match="non-empty mapping"):
        rank_correlations({}, chrf)
    with pytest.raises(ValueError, match="num_bootstrap must be >= 10"):
        rank_correlations({"a": chrf}, chrf, num_bootstrap=5)


def test_quality_scatter_writes_an_image(tmp_path):
    rng = np.random.default_rng(0)
    chrf = rng.uniform(0, 100, 80)
    scores = {"log_prob": chrf / 10 + rng.normal(size=80), "neg_mc_var": -rng.gamma(2, size=80),
              "d_combo": np.where(chrf > 5, chrf, -np.inf)}  # -inf points are skipped
    path = quality_scatter(tmp_path / "qe.png", scores, chrf, title="test")
    assert path == str(tmp_path / "qe.png") and (tmp_path / "qe.png").stat().st_size > 5000

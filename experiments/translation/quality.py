"""Unsupervised quality estimation for machine translation with Monte-Carlo dropout.

Fomicheva et al. (2020) score a translation *without a reference* from the model that
produced it: force-decode the fixed translation ``y`` of source ``x`` and read off its
log-probability, once deterministically and ``T`` times with dropout on. Over the ``T``
stochastic passes (keys ``jax.random.split(key, T)``, :func:`jdrop.mc.reduce`) the mean
and the variance of the sentence log-probability are indicators of quality: a
translation the model is unsure of gets a log-probability that moves a lot when dropout
changes the network.

Per sentence (``target_mask`` marks the real tokens of ``target_out`` = translation +
EOS, ``L`` of them):

* ``log_prob = sum_t log p(y_t | y_<t, x)``, the sentence log-probability (deterministic
  pass, dropout off), and ``tp = log_prob / L`` (the paper's TP, length-normalised);
* ``mc_mean``, ``mc_var``: the mean and the (population, ``1/T``) variance of the
  sentence log-probability over the ``T`` dropout passes; ``d_tp`` and ``d_var``: the
  same for the length-normalised log-probability (the paper's D-TP and D-Var);
* ``d_combo = 1 - d_tp / d_var`` (the paper's D-Combo, which it uses as is: higher =
  better; with ``d_tp < 0`` it grows as the variance shrinks).

Sign conventions for correlations. :func:`rank_correlations` measures how well a score
ranks sentences by their quality (sentence chrF against the reference), so every score
must be oriented *higher = better*: log-probabilities as they are, variances negated.
:func:`quality_indicators` does that; its names say it (``neg_mc_var`` = ``-mc_var``).
A positive Spearman then means the indicator works.

References:
  Fomicheva, M., Sun, S., Yankovskaya, L., Blain, F., Guzmán, F., Fishel, M., Aletras,
  N., Chaudhary, V. and Specia, L. "Unsupervised Quality Estimation for Neural Machine
  Translation". Transactions of the ACL 8, 2020.
  Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
  Uncertainty in Deep Learning". ICML 2016.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

import jdrop.mc
from jdrop._validation import check_callable, check_int
from jdrop.report import pyplot, save_figure

__all__ = [
    "correlation_difference",
    "mc_sentence_scores",
    "quality_estimates",
    "quality_indicators",
    "quality_scatter",
    "rank_correlations",
    "sentence_log_probs",
]

BATCH_KEYS = ("source", "target_in", "target_out", "source_mask", "target_mask")
LogitsFn = Callable[..., jax.Array]


def sentence_log_probs(logits, target_out, target_mask) -> tuple[jax.Array, jax.Array]:
    """Sum and mean over the real target tokens of ``log softmax(logits)[target_out]``.

    Computed in float32 whatever the logits' dtype.

    Args:
      logits: ``(B, T, V)`` next-token logits (position ``t`` predicts ``target_out[:, t]``).
      target_out: ``(B, T)`` int ids.
      target_mask: ``(B, T)`` bool, ``True`` on real tokens.

    Returns:
      ``(log_prob, mean_log_prob)``, each float32 ``(B,)``; a row without real tokens
      gets 0 for both.

    Examples:
      >>> import jax.numpy as jnp
      >>> logits = jnp.log(jnp.array([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]]))
      >>> total, mean = sentence_log_probs(logits, jnp.array([[0, 2]]), jnp.array([[True, True]]))
      >>> round(float(total[0]), 4), round(float(mean[0]), 4)  # log(0.5 * 0.8), halved
      (-0.9163, -0.4581)
    """
    logits = jnp.asarray(logits, jnp.float32)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_p, jnp.asarray(target_out)[..., None], axis=-1)[..., 0]
    mask = jnp.asarray(target_mask, bool)
    total = jnp.where(mask, picked, 0.0).sum(-1)
    length = mask.sum(-1)
    return total, total / jnp.maximum(length, 1).astype(jnp.float32)


def _check_batch(batch: Mapping) -> tuple:
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise ValueError(
            f"batch must hold {list(BATCH_KEYS)} (as jdrop.data.translation_batches yields), "
            f"missing {missing}"
        )
    arrays = tuple(jnp.asarray(batch[k]) for k in BATCH_KEYS)
    b, t = arrays[1].shape
    if arrays[2].shape != (b, t) or arrays[4].shape != (b, t):
        raise ValueError(
            f"target_in, target_out and target_mask must share one (B, T) shape, got "
            f"{arrays[1].shape}, {arrays[2].shape}, {arrays[4].shape}"
        )
    if arrays[0].shape[0] != b or arrays[3].shape != arrays[0].shape:
        raise ValueError(
            f"source and source_mask must be (B, S) with B={b}, got {arrays[0].shape} and "
            f"{arrays[3].shape}"
        )
    return arrays


def _merge(acc, chunk):
    """Chan et al.'s pairwise update of (count, mean, M2) with a chunk of samples."""
    count, mean, m2 = acc
    n = chunk.shape[0]
    chunk_mean = chunk.mean(0)
    chunk_m2 = ((chunk - chunk_mean) ** 2).sum(0)
    total = count + n
    delta = chunk_mean - mean
    mean = mean + delta * (n / total)
    m2 = m2 + chunk_m2 + delta**2 * (count * n / total)
    return total, mean, m2


def _scores(logits_fn, key, arrays, num_samples: int, chunk_size):
    source, target_in, target_out, source_mask, target_mask = arrays

    def log_probs(k):
        logits = logits_fn(k, source, target_in, source_mask, target_mask)
        return jnp.stack(sentence_log_probs(logits, target_out, target_mask), -1)  # (B, 2)

    deterministic = log_probs(None)
    zeros = jnp.zeros_like(deterministic)
    count, mean, m2 = jdrop.mc.reduce(
        log_probs, key, num_samples=num_samples, chunk_size=chunk_size,
        init=(jnp.float32(0), zeros, zeros), update=_merge,
    )
    var = m2 / count
    return {
        "log_prob": deterministic[:, 0],
        "tp": deterministic[:, 1],
        "mc_mean": mean[:, 0],
        "mc_var": var[:, 0],
        "d_tp": mean[:, 1],
        "d_var": var[:, 1],
    }


_jitted_scores = jax.jit(_scores, static_argnums=(0, 3, 4))


def mc_sentence_scores(
    logits_fn: LogitsFn,
    key,
    batch: Mapping[str, np.ndarray],
    *,
    num_samples: int = 30,
    chunk_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Deterministic and Monte-Carlo-dropout log-probabilities of fixed translations.

    Runs ``logits_fn(None, ...)`` once (dropout off) and ``logits_fn(k, ...)`` for the
    ``T = num_samples`` keys ``k`` of ``jax.random.split(key, T)`` through
    :func:`jdrop.mc.reduce`, which folds the passes chunk by chunk into a running mean
    and sum of squared deviations (float32, Chan et al.'s pairwise update), so memory
    does not grow with ``T``. Everything is jitted (``logits_fn`` is a static argument:
    pass the same function object to reuse the compiled program).

    Args:
      logits_fn: ``logits_fn(key, source, target_in, source_mask, target_mask) -> logits``
        ``(B, T, V)``; stochastic (dropout on) for a key, deterministic for ``key=None``.
        For a :class:`jdrop.models.TransformerSeq2Seq` ``model``: ``lambda k, s, t, sm,
        tm: model(s, t, source_mask=sm, target_mask=tm, key=k, deterministic=k is None)``.
      key: PRNG key (typed or legacy) for the dropout masks.
      batch: a dict with ``source``, ``target_in``, ``target_out``, ``source_mask`` and
        ``target_mask`` (as :func:`jdrop.data.translation_batches` yields), holding the
        translations to score (e.g. the model's own beam-search outputs, re-encoded).
      num_samples: ``T >= 2`` dropout passes.
      chunk_size: passes computed at once (``None``: :func:`jdrop.mc.reduce` chooses).

    Returns:
      A dict of float32 ``(B,)`` numpy arrays: ``log_prob``, ``tp``, ``mc_mean``,
      ``mc_var``, ``d_tp``, ``d_var`` (see the module docstring), and ``length`` (int32,
      real target tokens).

    Raises:
      ValueError: a missing or misshapen batch entry; ``num_samples < 2``.
      TypeError: ``logits_fn`` not callable.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> def logits_fn(key, source, target_in, source_mask, target_mask):
      ...     logits = jnp.zeros(target_in.shape + (4,))
      ...     if key is None:
      ...         return logits
      ...     return logits + jax.random.normal(key, logits.shape)
      >>> batch = dict(source=jnp.ones((2, 3), int), source_mask=jnp.ones((2, 3), bool),
      ...              target_in=jnp.ones((2, 4), int), target_out=jnp.ones((2, 4), int),
      ...              target_mask=jnp.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool))
      >>> out = mc_sentence_scores(logits_fn, jax.random.key(0), batch, num_samples=8)
      >>> [round(v, 4) for v in out["log_prob"].tolist()], out["length"].tolist()
      ([-5.5452, -2.7726], [4, 2])
      >>> bool((out["mc_var"] > 0).all())
      True
    """
    check_callable(logits_fn, "logits_fn", "logits_fn(key, source, target_in, source_mask, "
                   "target_mask)")
    num_samples = check_int(num_samples, "num_samples", 2)
    chunk_size = check_int(chunk_size, "chunk_size", 1, optional=True)
    arrays = _check_batch(batch)
    out = _jitted_scores(logits_fn, key, arrays, num_samples, chunk_size)
    out = {name: np.asarray(value, np.float32) for name, value in out.items()}
    out["length"] = np.asarray(arrays[4].sum(-1), np.int32)
    return out


def quality_estimates(
    logits_fn: LogitsFn,
    key,
    batches: Iterable[Mapping[str, np.ndarray]],
    *,
    num_samples: int = 30,
    chunk_size: int | None = None,
) -> dict[str, np.ndarray]:
    """:func:`mc_sentence_scores` over a sequence of batches, rows concatenated.

    Batch ``i`` uses the key ``jax.random.fold_in(key, i)``. Rows whose ``target_mask``
    is all ``False`` (padding rows) are dropped. When the batches carry an ``index``
    entry (the rows' positions in the data set), the results are put back in that order.

    Args:
      logits_fn, num_samples, chunk_size: as in :func:`mc_sentence_scores`.
      key: PRNG key.
      batches: dicts as :func:`mc_sentence_scores` takes, optionally with ``index``.

    Returns:
      The dict of :func:`mc_sentence_scores`, one entry per sentence.

    Raises:
      ValueError: as :func:`mc_sentence_scores`; no batches; an ``index`` that is not a
        permutation of ``0..n-1``.
    """
    parts: list[dict[str, np.ndarray]] = []
    indices = []
    for i, batch in enumerate(batches):
        out = mc_sentence_scores(logits_fn, jax.random.fold_in(key, i), batch,
                                 num_samples=num_samples, chunk_size=chunk_size)
        real = np.asarray(batch["target_mask"]).any(-1)
        parts.append({name: value[real] for name, value in out.items()})
        if "index" in batch:
            indices.append(np.asarray(batch["index"])[real])
    if not parts:
        raise ValueError("batches must hold at least one batch, got none")
    result = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    if indices:
        if len(indices) != len(parts):
            raise ValueError("either every batch carries 'index' or none does")
        index = np.concatenate(indices)
        if not np.array_equal(np.sort(index), np.arange(len(index))):
            raise ValueError("the batches' 'index' entries must be a permutation of 0..n-1")
        order = np.empty_like(index)
        order[index] = np.arange(len(index))
        result = {name: value[order] for name, value in result.items()}
    return result


def quality_indicators(estimates: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The quality indicators of :func:`mc_sentence_scores`, oriented higher = better.

    Returns:
      ``log_prob``, ``tp``, ``mc_mean``, ``d_tp`` unchanged; ``neg_mc_var = -mc_var``,
      ``neg_d_var = -d_var``; ``d_combo = 1 - d_tp / d_var`` (Fomicheva et al.'s
      D-Combo, higher = better as in the paper; a zero variance gives ``+inf`` for a
      negative ``d_tp``, and rows with ``0 / 0`` get ``-inf``).

    Examples:
      >>> import numpy as np
      >>> est = {k: np.array([-1.0, -2.0]) for k in ("log_prob", "tp", "mc_mean", "d_tp")}
      >>> est |= {"mc_var": np.array([0.5, 2.0]), "d_var": np.array([0.1, 0.4])}
      >>> quality_indicators(est)["neg_mc_var"].tolist()
      [-0.5, -2.0]
    """
    missing = [k for k in ("log_prob", "tp", "mc_mean", "mc_var", "d_tp", "d_var")
               if k not in estimates]
    if missing:
        raise ValueError(f"estimates must come from mc_sentence_scores, missing {missing}")
    with np.errstate(divide="ignore", invalid="ignore"):
        combo = 1 - np.asarray(estimates["d_tp"], np.float64) / np.asarray(estimates["d_var"],
                                                                           np.float64)
    combo = np.where(np.isnan(combo), -np.inf, combo)
    return {
        "log_prob": np.asarray(estimates["log_prob"]),
        "tp": np.asarray(estimates["tp"]),
        "mc_mean": np.asarray(estimates["mc_mean"]),
        "d_tp": np.asarray(estimates["d_tp"]),
        "neg_mc_var": -np.asarray(estimates["mc_var"]),
        "neg_d_var": -np.asarray(estimates["d_var"]),
        "d_combo": combo,
    }


def _check_scores(scores: Mapping[str, np.ndarray], quality) -> tuple[dict, np.ndarray]:
    quality = np.asarray(quality, np.float64)
    if quality.ndim != 1 or len(quality) < 3:
        raise ValueError(f"chrf must be 1-D with at least 3 sentences, got shape {quality.shape}")
    if not np.isfinite(quality).all():
        raise ValueError("chrf must be finite")
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping from a name to a (n,) array")
    out = {}
    for name, values in scores.items():
        values = np.asarray(values, np.float64)
        if values.shape != quality.shape:
            raise ValueError(
                f"scores[{name!r}] must have the shape of chrf {quality.shape}, got {values.shape}"
            )
        if np.isnan(values).any():
            raise ValueError(f"scores[{name!r}] holds NaN")
        out[name] = values
    return out, quality


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")  # undefined for a constant
    return float(spearmanr(a, b).statistic)


def _bootstrap_indices(n: int, num_bootstrap: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, (num_bootstrap, n))


def _bootstrap_spearman(a: np.ndarray, b: np.ndarray, resamples: np.ndarray) -> np.ndarray:
    """Spearman's rho on each resample (rows of ``resamples``), vectorised: Pearson's r
    of average ranks (NaN where a resample is constant)."""
    from scipy.stats import rankdata

    values = []
    for rows in np.array_split(resamples, max(1, resamples.size // 2_000_000)):
        ra = rankdata(a[rows], axis=1)
        rb = rankdata(b[rows], axis=1)
        ra -= ra.mean(1, keepdims=True)
        rb -= rb.mean(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            values.append((ra * rb).sum(1) / np.sqrt((ra**2).sum(1) * (rb**2).sum(1)))
    return np.concatenate(values)


def rank_correlations(
    scores: Mapping[str, np.ndarray],
    chrf,
    *,
    num_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Spearman's rank correlation of each score with sentence chrF, and a 95% interval.

    Every score must be oriented *higher = better quality* (see
    :func:`quality_indicators`: log-probabilities as they are, variances negated), so a
    positive correlation means the score ranks good translations above bad ones. Ties
    get average ranks (``scipy.stats.spearmanr``). The interval is the percentile
    bootstrap: ``num_bootstrap`` resamples of the sentences with replacement (the same
    resamples for every score, so the intervals are comparable), 2.5th and 97.5th
    percentiles.

    Args:
      scores: ``{name: (n,) array}``.
      chrf: ``(n,)`` sentence chrF (e.g. from
        :func:`experiments.translation.metrics.sentence_chrf`).
      num_bootstrap: bootstrap resamples (``>= 10``).
      seed: the resampling seed.

    Returns:
      ``{name: {"spearman": rho, "low": ..., "high": ...}}`` (floats).

    Raises:
      ValueError: shapes that differ, fewer than 3 sentences, NaN, bad counts.

    Examples:
      >>> import numpy as np
      >>> chrf = np.arange(10.0)
      >>> out = rank_correlations({"good": chrf ** 2, "bad": -chrf}, chrf, num_bootstrap=100)
      >>> round(out["good"]["spearman"], 6), round(out["bad"]["spearman"], 6)
      (1.0, -1.0)
    """
    scores, quality = _check_scores(scores, chrf)
    num_bootstrap = check_int(num_bootstrap, "num_bootstrap", 10)
    seed = check_int(seed, "seed", 0)
    resamples = _bootstrap_indices(len(quality), num_bootstrap, seed)
    out = {}
    for name, values in scores.items():
        boot = _bootstrap_spearman(values, quality, resamples)
        low, high = np.nanpercentile(boot, [2.5, 97.5])
        out[name] = {"spearman": _spearman(values, quality), "low": float(low),
                     "high": float(high)}
    return out


def correlation_difference(
    score_a, score_b, chrf, *, num_bootstrap: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Paired bootstrap of ``spearman(score_a, chrf) - spearman(score_b, chrf)``.

    Both correlations are computed on the same resamples, so the interval accounts for
    their dependence: an interval above 0 says ``score_a`` ranks sentences better than
    ``score_b`` (both oriented higher = better).

    Returns:
      ``{"difference": ..., "low": ..., "high": ...}`` (95% percentile interval).

    Raises:
      ValueError: as :func:`rank_correlations`.

    Examples:
      >>> import numpy as np
      >>> chrf = np.arange(20.0)
      >>> noisy = chrf + np.random.default_rng(0).normal(0, 8, 20)
      >>> out = correlation_difference(chrf, noisy, chrf, num_bootstrap=200)
      >>> out["difference"] > 0 and out["low"] > 0
      True
    """
    scores, quality = _check_scores({"score_a": score_a, "score_b": score_b}, chrf)
    num_bootstrap = check_int(num_bootstrap, "num_bootstrap", 10)
    seed = check_int(seed, "seed", 0)
    a, b = scores["score_a"], scores["score_b"]
    resamples = _bootstrap_indices(len(quality), num_bootstrap, seed)
    boot = _bootstrap_spearman(a, quality, resamples) - _bootstrap_spearman(b, quality, resamples)
    low, high = np.nanpercentile(boot, [2.5, 97.5])
    return {"difference": _spearman(a, quality) - _spearman(b, quality), "low": float(low),
            "high": float(high)}


def quality_scatter(
    path: str | os.PathLike,
    scores: Mapping[str, np.ndarray],
    chrf,
    *,
    correlations: Mapping[str, Mapping[str, float]] | None = None,
    title: str | None = None,
) -> str:
    """One scatter panel per score: the score (x) against sentence chrF (y).

    Each panel's title gives Spearman's rho and its interval (from ``correlations``, or
    :func:`rank_correlations` with its defaults when ``None``).

    Args:
      path: the image file to write (``.png``, ``.pdf``, ...).
      scores: ``{name: (n,) array}``, oriented higher = better.
      chrf: ``(n,)`` sentence chrF.
      correlations: the output of :func:`rank_correlations` for these scores.
      title: the figure's title.

    Returns:
      ``str(path)``.

    Raises:
      ValueError: as :func:`rank_correlations`.

    Examples:
      >>> import numpy as np, pathlib, tempfile
      >>> chrf = np.linspace(0, 100, 50)
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "qe.png"
      >>> quality_scatter(path, {"log_prob": chrf / 10, "neg_mc_var": -1 / (chrf + 1)}, chrf,
      ...                 title="toy") == str(path)
      True
    """
    checked, quality = _check_scores(scores, chrf)
    if correlations is None:
        correlations = rank_correlations(checked, quality)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(checked), figsize=(3.4 * len(checked), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], checked.items(), strict=True):
        finite = np.isfinite(values)
        ax.scatter(values[finite], quality[finite], s=6, alpha=0.5)
        ax.set_xlabel(name)
        ax.set_ylabel("sentence chrF")
        if name in correlations:
            c = correlations[name]
            ax.set_title(f"ρ = {c['spearman']:.3f} [{c['low']:.3f}, {c['high']:.3f}]",
                         fontsize=9)
    if title is not None:
        fig.suptitle(title)
    return save_figure(fig, path)

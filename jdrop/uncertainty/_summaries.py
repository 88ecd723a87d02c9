"""Streaming summaries: sufficient statistics of Monte-Carlo samples, chunk by chunk.

For ``T`` too large to hold at once, :class:`ClassificationSummary` and
:class:`RegressionSummary` accumulate sufficient statistics of chunks of samples
(:meth:`~ClassificationSummary.update`), combine summaries of disjoint sets of samples
(:meth:`~ClassificationSummary.merge`), and finalise once to the same values as the one-shot
functions :func:`jdrop.uncertainty.classification_uncertainty` and
:func:`jdrop.uncertainty.regression_uncertainty`. Both are pytrees (``NamedTuple`` s), so
they can be the carry of a ``jax.lax.scan`` and be sharded like any array tree.

Means and variances are merged with Chan et al.'s pairwise formula, so the variance does
not cancel catastrophically however the samples are chunked.

References:
  Chan, T. F., Golub, G. H. and LeVeque, R. J. "Updating Formulae and a Pairwise
  Algorithm for Computing Sample Variances", 1979.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._validation import check_int, is_concrete
from jdrop.uncertainty._classification import (
    ClassificationUncertainty,
    entropy_from_log_probs,
    safe_logsumexp,
    uncertainty_from_statistics,
    vote_counts,
)
from jdrop.uncertainty._inputs import check_log_probs, check_samples, check_targets, check_tau
from jdrop.uncertainty._regression import (
    RegressionUncertainty,
    gaussian_log_kernel,
    gaussian_log_likelihood,
)

__all__ = ["ClassificationSummary", "RegressionSummary"]


def _chunk_moments(chunk: jax.Array) -> tuple[int, jax.Array, jax.Array]:
    """``(t, mean, sum of squared deviations)`` of a chunk over its leading axis."""
    mean = jnp.mean(chunk, axis=0)
    return chunk.shape[0], mean, jnp.sum(jnp.square(chunk - mean), axis=0)


def _merge_moments(count, mean, m2, other_count, other_mean, other_m2):
    """Chan et al.'s pairwise merge of two ``(count, mean, m2)`` triples."""
    new_count = count + other_count
    dtype = mean.dtype
    t = other_count if isinstance(other_count, int) else other_count.astype(dtype)
    old = count.astype(dtype)
    total = jnp.maximum(new_count, 1).astype(dtype)  # two empty summaries merge to empty
    delta = other_mean - mean
    new_mean = mean + delta * (t / total)
    new_m2 = m2 + other_m2 + jnp.square(delta) * (old * t / total)
    return new_count, new_mean, new_m2


def _final_count(count: jax.Array, num_samples: int | None, what: str) -> jax.Array:
    """The count to finalise with: the literal ``num_samples`` when given, else ``count``.

    A literal count makes XLA fold ``log(count)`` and ``x / count`` the same way in every
    program (a sharded and an unsharded one, say); whether it sees a running count as a
    constant would otherwise depend on how the loop was compiled.
    """
    if num_samples is not None:
        num_samples = check_int(num_samples, "num_samples", 1)
        if is_concrete(count) and int(np.asarray(count)) != num_samples:
            raise ValueError(f"num_samples={num_samples} but the {what} holds count={count}")
        return jnp.asarray(num_samples, count.dtype)
    if is_concrete(count) and int(np.asarray(count)) == 0:
        raise ValueError(f"cannot finalize a {what} that has seen no samples (count=0)")
    return count


def _check_chunk(chunk: jax.Array, name: str, shape: tuple[int, ...], what: str) -> None:
    """A chunk must be ``(t, *shape)``: the summary's examples (and classes or outputs)."""
    if chunk.shape[1:] != shape:
        raise ValueError(
            f"{name}.shape={chunk.shape} does not match the summary's {what}={shape}: "
            f"expected (t, *{shape})"
        )


def _check_same(name: str, mine, theirs, what: str) -> None:
    if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
        raise ValueError(
            f"cannot merge {what}s of different {name}: {mine.shape} {mine.dtype} and "
            f"{theirs.shape} {theirs.dtype}"
        )


class ClassificationSummary(NamedTuple):
    r"""Streaming sufficient statistics of classification samples (a pytree).

    Holds, for ``count`` samples seen so far: ``log_sum_probs``
    :math:`= \operatorname{logsumexp}_t \log p_t` (``(N, K)``), ``sum_neg_entropy``
    :math:`= \sum_t \sum_k p_{tk} \log p_{tk}` (``(N,)``), the running
    ``mean_probs`` and sum of squared deviations ``m2_probs`` (``(N, K)``, merged with Chan
    et al.'s pairwise formula so the variance does not cancel catastrophically), and
    ``votes`` (``(N, K)`` int32 argmax counts). :meth:`finalize` turns them into the same
    :class:`ClassificationUncertainty` as :func:`classification_uncertainty`; chunks may
    have any size. Works inside ``jax.jit`` and ``jax.lax.scan``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jdrop.uncertainty import classification_uncertainty
      >>> logits = jax.random.normal(jax.random.key(0), (10, 3, 4))
      >>> s = ClassificationSummary.init(num_examples=3, num_classes=4)
      >>> for chunk in (logits[:4], logits[4:]):
      ...     s = s.update(chunk, from_logits=True)
      >>> streamed = s.finalize()
      >>> one_shot = classification_uncertainty(logits, from_logits=True)
      >>> bool(jnp.allclose(streamed.mutual_information, one_shot.mutual_information,
      ...                   atol=1e-6))
      True

    References:
      Chan, T. F., Golub, G. H. and LeVeque, R. J. "Updating Formulae and a Pairwise
      Algorithm for Computing Sample Variances", 1979.
    """

    count: jax.Array
    log_sum_probs: jax.Array
    sum_neg_entropy: jax.Array
    mean_probs: jax.Array
    m2_probs: jax.Array
    votes: jax.Array

    @classmethod
    def init(cls, num_examples: int, num_classes: int, dtype=jnp.float32):
        """An empty summary for ``num_examples`` examples and ``num_classes`` classes.

        Args:
          num_examples: ``N``.
          num_classes: ``K``.
          dtype: floating dtype of the accumulators; chunks are cast to it.

        Returns:
          A :class:`ClassificationSummary` with ``count == 0``.

        Raises:
          ValueError: if ``num_examples`` or ``num_classes`` is below 1 or not an int.
        """
        num_examples = check_int(num_examples, "num_examples", 1)
        num_classes = check_int(num_classes, "num_classes", 1)
        shape = (num_examples, num_classes)
        return cls(
            count=jnp.zeros((), jnp.int32),
            log_sum_probs=jnp.full(shape, -jnp.inf, dtype),
            sum_neg_entropy=jnp.zeros((num_examples,), dtype),
            mean_probs=jnp.zeros(shape, dtype),
            m2_probs=jnp.zeros(shape, dtype),
            votes=jnp.zeros(shape, jnp.int32),
        )

    def update(self, log_probs, *, from_logits: bool = False) -> "ClassificationSummary":
        """Adds a chunk of ``(t, N, K)`` samples (any ``t >= 1``).

        Args:
          log_probs: ``(t, N, K)`` log-probabilities (or logits when ``from_logits=True``).
          from_logits: apply ``jax.nn.log_softmax`` over the last axis first.

        Returns:
          The updated summary.

        Raises:
          TypeError: if ``log_probs`` is not floating point.
          ValueError: if the chunk's ``(N, K)`` differs from the summary's, or as
            :func:`mean_log_probs`.
        """
        log_probs = check_log_probs(log_probs, from_logits, 3)
        _check_chunk(log_probs, "log_probs", self.log_sum_probs.shape, "(N, K)")
        log_probs = log_probs.astype(self.log_sum_probs.dtype)
        count, mean, m2 = _merge_moments(
            self.count, self.mean_probs, self.m2_probs, *_chunk_moments(jnp.exp(log_probs))
        )
        return ClassificationSummary(
            count=count,
            log_sum_probs=jnp.logaddexp(self.log_sum_probs, safe_logsumexp(log_probs, axis=0)),
            sum_neg_entropy=self.sum_neg_entropy
            - jnp.sum(entropy_from_log_probs(log_probs), axis=0),
            mean_probs=mean,
            m2_probs=m2,
            votes=self.votes + vote_counts(log_probs),
        )

    def merge(self, other: "ClassificationSummary") -> "ClassificationSummary":
        """The summary of the samples of ``self`` and of ``other`` together.

        Args:
          other: a summary of other samples of the same ``N`` examples and ``K`` classes.

        Returns:
          The merged summary (``count = self.count + other.count``).

        Raises:
          ValueError: if the shapes or dtypes differ.

        Examples:
          >>> import jax, jax.numpy as jnp
          >>> logits = jax.random.normal(jax.random.key(0), (6, 2, 3))
          >>> empty = ClassificationSummary.init(2, 3)
          >>> a = empty.update(logits[:2], from_logits=True)
          >>> b = empty.update(logits[2:], from_logits=True)
          >>> both = empty.update(logits, from_logits=True)
          >>> bool(jnp.allclose(a.merge(b).finalize().class_variance,
          ...                   both.finalize().class_variance, atol=1e-6))
          True
        """
        for name in ("log_sum_probs", "votes"):
            _check_same(name, getattr(self, name), getattr(other, name), "ClassificationSummary")
        count, mean, m2 = _merge_moments(
            self.count, self.mean_probs, self.m2_probs,
            other.count, other.mean_probs, other.m2_probs,
        )
        return ClassificationSummary(
            count=count,
            log_sum_probs=jnp.logaddexp(self.log_sum_probs, other.log_sum_probs),
            sum_neg_entropy=self.sum_neg_entropy + other.sum_neg_entropy,
            mean_probs=mean,
            m2_probs=m2,
            votes=self.votes + other.votes,
        )

    def finalize(self, num_samples: int | None = None) -> ClassificationUncertainty:
        """The summaries of every sample seen.

        Args:
          num_samples: the number of samples seen, when the caller knows it in Python
            (it must equal ``count``); it then enters the program as a literal, so the
            values are bitwise the same in every program that computes them (sharded or
            not). ``None``: use the running ``count``.

        Returns:
          A :class:`ClassificationUncertainty`.

        Raises:
          ValueError: if the summary is concrete and has seen no samples, or
            ``num_samples`` differs from a concrete ``count``.
        """
        count = _final_count(self.count, num_samples, "ClassificationSummary")
        n = count.astype(self.log_sum_probs.dtype)
        return uncertainty_from_statistics(
            self.log_sum_probs - jnp.log(n),
            -self.sum_neg_entropy / n,
            (count - jnp.max(self.votes, axis=-1)).astype(n.dtype) / n,
            self.m2_probs / n,
        )


def _mean_each(terms: dict) -> dict:
    return {name: jnp.mean(value) for name, value in terms.items()}


class RegressionSummary(NamedTuple):
    r"""Streaming sufficient statistics of regression samples (a pytree).

    Holds ``count``, the running ``mean`` and sum of squared deviations ``m2`` (merged
    with Chan et al.'s pairwise formula), the precision ``tau`` (``None`` when not given),
    the targets ``y`` (``None`` when not given) and, with both, ``log_sum_lik``
    :math:`= \operatorname{logsumexp}_t(-\frac{\tau}{2} \lVert y - \hat y_t \rVert^2)` per
    point. :meth:`finalize` gives the same
    :class:`RegressionUncertainty` as :func:`regression_uncertainty`. Works inside
    ``jax.jit`` and ``jax.lax.scan``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jdrop.uncertainty import regression_uncertainty
      >>> samples = jax.random.normal(jax.random.key(0), (10, 5))
      >>> y = jnp.zeros(5)
      >>> s = RegressionSummary.init((5,), tau=2.0, y=y)
      >>> for chunk in (samples[:3], samples[3:]):
      ...     s = s.update(chunk)
      >>> streamed, one_shot = s.finalize(), regression_uncertainty(samples, 2.0, y)
      >>> bool(jnp.allclose(streamed.log_likelihood, one_shot.log_likelihood, atol=1e-6))
      True

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning", 2016.
      Chan, T. F., Golub, G. H. and LeVeque, R. J. "Updating Formulae and a Pairwise
      Algorithm for Computing Sample Variances", 1979.
    """

    count: jax.Array
    mean: jax.Array
    m2: jax.Array
    tau: jax.Array | None
    y: jax.Array | None
    log_sum_lik: jax.Array | None

    @classmethod
    def init(cls, shape, tau, *, y=None, dtype=jnp.float32) -> "RegressionSummary":
        """An empty summary for per-sample predictions of ``shape`` (``(N,)`` or ``(N, D)``).

        Args:
          shape: shape of one sample, ``(N,)`` or ``(N, D)``.
          tau: scalar model precision, ``> 0``, or ``None`` (then ``total_variance`` and
            ``log_likelihood`` are ``None``).
          y: optional targets of ``shape`` for the log-likelihood and RMSE.
          dtype: floating dtype of the accumulators; chunks are cast to it.

        Returns:
          A :class:`RegressionSummary` with ``count == 0``.

        Raises:
          ValueError: if ``shape`` is not 1-D or 2-D, ``y.shape != shape``, or as
            :func:`total_variance` for ``tau``.
        """
        shape = tuple(check_int(s, "shape", 0) for s in shape)
        if len(shape) not in (1, 2):
            raise ValueError(f"shape must be (N,) or (N, D), got shape={shape}")
        tau = None if tau is None else check_tau(tau, dtype)
        log_sum_lik = None
        if y is not None:
            y = check_targets(y, shape, f"shape={shape}", dtype)
            if tau is not None:
                log_sum_lik = jnp.full(shape[:1], -jnp.inf, dtype)
        return cls(
            count=jnp.zeros((), jnp.int32),
            mean=jnp.zeros(shape, dtype),
            m2=jnp.zeros(shape, dtype),
            tau=tau,
            y=y,
            log_sum_lik=log_sum_lik,
        )

    def update(self, samples) -> "RegressionSummary":
        """Adds a chunk of ``(t, *shape)`` samples (any ``t >= 1``).

        Args:
          samples: ``(t, N)`` or ``(t, N, D)`` sampled predictions.

        Returns:
          The updated summary.

        Raises:
          TypeError: if ``samples`` is not floating point.
          ValueError: if ``samples.shape[1:]`` differs from the summary's shape.
        """
        samples = check_samples(samples)
        _check_chunk(samples, "samples", self.mean.shape, "shape")
        samples = samples.astype(self.mean.dtype)
        count, mean, m2 = _merge_moments(
            self.count, self.mean, self.m2, *_chunk_moments(samples)
        )
        log_sum_lik = self.log_sum_lik
        if log_sum_lik is not None:
            kernel = gaussian_log_kernel(samples, self.y, self.tau)
            log_sum_lik = jnp.logaddexp(log_sum_lik, jax.nn.logsumexp(kernel, axis=0))
        return self._replace(count=count, mean=mean, m2=m2, log_sum_lik=log_sum_lik)

    def merge(self, other: "RegressionSummary") -> "RegressionSummary":
        """The summary of the samples of ``self`` and of ``other`` together.

        Args:
          other: a summary of other samples of the same points, with the same ``tau`` and
            targets (``self``'s are kept).

        Returns:
          The merged summary (``count = self.count + other.count``).

        Raises:
          ValueError: if the shapes or dtypes differ, or one has targets and the other not.

        Examples:
          >>> import jax, jax.numpy as jnp
          >>> samples = jax.random.normal(jax.random.key(0), (8, 3))
          >>> empty = RegressionSummary.init((3,), tau=1.0, y=jnp.zeros(3))
          >>> merged = empty.update(samples[:5]).merge(empty.update(samples[5:]))
          >>> bool(jnp.allclose(merged.finalize().log_likelihood,
          ...                   empty.update(samples).finalize().log_likelihood))
          True
        """
        _check_same("shape", self.mean, other.mean, "RegressionSummary")
        if (self.log_sum_lik is None) != (other.log_sum_lik is None):
            raise ValueError("cannot merge a RegressionSummary with targets and one without")
        count, mean, m2 = _merge_moments(
            self.count, self.mean, self.m2, other.count, other.mean, other.m2
        )
        log_sum_lik = self.log_sum_lik
        if log_sum_lik is not None:
            log_sum_lik = jnp.logaddexp(log_sum_lik, other.log_sum_lik)
        return self._replace(count=count, mean=mean, m2=m2, log_sum_lik=log_sum_lik)

    def finalize(
        self,
        num_samples: int | None = None,
        *,
        mean_points: Callable[[dict], dict] | None = None,
    ) -> RegressionUncertainty:
        """The summaries of every sample seen.

        Args:
          num_samples: the number of samples seen, when the caller knows it in Python
            (it must equal ``count``); it then enters the program as a literal and the
            variance is ``m2 * (1 / T)`` with the reciprocal rounded once, so the values
            are bitwise the same in every program that computes them. ``None``: use the
            running ``count``.
          mean_points: how the per-point terms become the two scalars: a function of a
            dict holding ``"log_likelihood"`` (``(N,)``) and/or ``"squared_error"``
            (like ``mean``) that returns a dict of their means over every element. The
            default is ``jnp.mean`` of each; :func:`jdrop.mc.predictive_regression`
            passes a mean whose summation order does not depend on the device count.

        Returns:
          A :class:`RegressionUncertainty`: ``total_variance`` is ``None`` without
          ``tau``, ``log_likelihood`` without ``tau`` or targets, ``rmse`` without targets.

        Raises:
          ValueError: if the summary is concrete and has seen no samples, or
            ``num_samples`` differs from a concrete ``count``.
        """
        count = _final_count(self.count, num_samples, "RegressionSummary")
        if num_samples is None:
            variance = self.m2 / count.astype(self.m2.dtype)
        else:
            variance = self.m2 * np.asarray(1 / num_samples, self.m2.dtype)
        total_variance = None if self.tau is None else variance + 1 / self.tau
        terms = {}
        if self.log_sum_lik is not None:
            dim = 1 if self.mean.ndim == 1 else self.mean.shape[-1]
            total = count if num_samples is None else num_samples
            terms["log_likelihood"] = gaussian_log_likelihood(
                self.log_sum_lik, total, dim, self.tau
            )
        if self.y is not None:
            terms["squared_error"] = jnp.square(self.mean - self.y)
        means = (mean_points or _mean_each)(terms) if terms else {}
        log_likelihood = means.get("log_likelihood")
        error = means.get("squared_error")
        return RegressionUncertainty(
            self.mean,
            variance,
            total_variance,
            log_likelihood,
            None if error is None else jnp.sqrt(error),
        )

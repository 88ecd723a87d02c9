"""Monte-Carlo predictive summaries, streamed chunk by chunk into the running summaries.

:func:`predictive_classification` and :func:`predictive_regression` run
:func:`jdrop.mc.reduce` with the streaming summaries of :mod:`jdrop.uncertainty`
(:class:`~jdrop.uncertainty.ClassificationSummary`,
:class:`~jdrop.uncertainty.RegressionSummary`) and finalise them once, with the sample
count as a literal so that a sharded and an unsharded program fold the same constants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from jdrop._keys import as_key
from jdrop._masks import compute_dtype
from jdrop.mc._sample import check_fn, check_num_samples, choose_chunk_size, reduce_chunks
from jdrop.mc._sharding import (
    check_batch_output,
    fixed_order_mean,
    make_plan,
    replicate_exact,
    shard_batch_leaves,
)
from jdrop.uncertainty import (
    ClassificationSummary,
    ClassificationUncertainty,
    RegressionSummary,
    RegressionUncertainty,
)

__all__ = ["predictive_classification", "predictive_regression"]


def _output_struct(fn, key, args):
    """Shape and dtype of one sample of ``fn`` (nothing is computed)."""
    return jax.eval_shape(fn, key, *args)


def predictive_classification(
    logits_fn: Callable,
    key,
    *args,
    num_samples: int,
    chunk_size: int | None = None,
    mesh: Mesh | None = None,
    batch_axis_name: str | None = None,
    batch_argnums: int | Sequence[int] | None = None,
) -> ClassificationUncertainty:
    r"""MC-dropout predictive distribution and uncertainties, streamed over samples.

    With :math:`\log p_t` = ``log_softmax(logits_fn(key_t, *args))`` for
    :math:`t = 1, \dots, T` and :math:`\bar p = \frac{1}{T} \sum_t p_t`,
    ``mean_log_probs`` (in log space: stable), ``expected_entropy``, ``mutual_information``
    (BALD) and ``class_variance`` are

    .. math::

       \log \bar p = \operatorname{logsumexp}_t \log p_t - \log T, \qquad
       \mathbb{E}_t\, \mathbb{H}[p_t] = -\frac{1}{T} \sum_t \sum_k p_{tk} \log p_{tk},

       \mathbb{I} = \mathbb{H}[\bar p] - \mathbb{E}_t\, \mathbb{H}[p_t], \qquad
       \mathrm{Var}_t[p_{tk}].

    The running statistics are those of
    :class:`jdrop.uncertainty.ClassificationSummary`; the values equal
    :func:`jdrop.uncertainty.classification_uncertainty` of the samples of
    :func:`jdrop.mc.sample` to float32 rounding.

    Every summary is per example, so with ``batch_axis_name`` each device summarises its
    own examples and the compiled program has no cross-device communication at all.

    Args:
      logits_fn: ``logits_fn(key, *args) -> (N, K)`` logits.
      key: typed or legacy key.
      *args: the other arguments of ``logits_fn``.
      num_samples: ``T >= 1``.
      chunk_size: samples per chunk; memory is bounded by ``chunk_size * N * K`` plus
        the network's activations for one chunk; ``None`` chooses it as
        :func:`jdrop.mc.sample` does.
      mesh, batch_axis_name, batch_argnums: shard the batch as in :func:`jdrop.mc.sample`.

    Returns:
      A :class:`jdrop.uncertainty.ClassificationUncertainty` of ``(N, K)`` and ``(N,)``
      arrays.

    Raises:
      ValueError: as :func:`jdrop.mc.sample`, or if ``logits_fn`` does not return an ``(N, K)``
        floating-point array.

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> logits_fn = lambda key, x: jdrop.dropout(key, x, 0.5)
      >>> u = predictive_classification(logits_fn, jax.random.key(0), jnp.eye(2, 3) * 4,
      ...                               num_samples=1000, chunk_size=100)
      >>> u.mean_log_probs.shape, u.mutual_information.shape
      ((2, 3), (2,))
      >>> bool((u.mutual_information > 0).all())
      True

    References:
      Gal, Y., Islam, R. and Ghahramani, Z. "Deep Bayesian Active Learning with Image
      Data". ICML 2017. Houlsby, N., Huszár, F., Ghahramani, Z. and Lengyel, M. "Bayesian
      Active Learning for Classification and Preference Learning". 2011.
    """
    check_fn(logits_fn, "logits_fn")
    num_samples = check_num_samples(num_samples)
    key = as_key(key)
    struct = _output_struct(logits_fn, key, args)
    if not (
        isinstance(struct, jax.ShapeDtypeStruct)
        and len(struct.shape) == 2
        and jnp.issubdtype(struct.dtype, jnp.floating)
    ):
        raise ValueError(
            f"logits_fn must return one (N, K) floating-point array of logits, got {struct}"
        )
    plan = make_plan(mesh, batch_axis_name, None, batch_argnums, len(args))
    check_batch_output(struct.shape, plan)
    chunk_size = choose_chunk_size(logits_fn, key, args, num_samples, chunk_size)
    # Accumulate in at least float32 whatever the model's dtype (a bfloat16 model's
    # probabilities would otherwise sum to 0.96 and its entropy be off by 2e-2).
    acc_dtype = compute_dtype(struct.dtype)
    init = shard_batch_leaves(ClassificationSummary.init(*struct.shape, dtype=acc_dtype), plan)
    summary = reduce_chunks(
        logits_fn, key, args, num_samples, chunk_size, init,
        lambda summary, logits: summary.update(logits.astype(acc_dtype), from_logits=True),
        plan,
    )
    return summary.finalize(num_samples)


def predictive_regression(
    fn: Callable,
    key,
    *args,
    num_samples: int,
    chunk_size: int | None = None,
    targets=None,
    tau=None,
    mesh: Mesh | None = None,
    batch_axis_name: str | None = None,
    batch_argnums: int | Sequence[int] | None = None,
) -> RegressionUncertainty:
    r"""MC-dropout regression: predictive mean, variances and test log-likelihood, streamed.

    With :math:`\hat y_t` = ``fn(key_t, *args)`` for :math:`t = 1, \dots, T`:

    ``mean``, ``epistemic_variance``, ``total_variance`` and Gal's test log-likelihood are

    .. math::

       \bar y = \frac{1}{T} \sum_t \hat y_t, \qquad
       \sigma^2_\mathrm{ep} = \frac{1}{T} \sum_t (\hat y_t - \bar y)^2, \qquad
       \sigma^2_\mathrm{ep} + \tau^{-1},

       \ell = \frac{1}{N} \sum_n \left[\operatorname{logsumexp}_t\left(-\frac{\tau}{2}
       \lVert y_n - \hat y_{tn} \rVert^2\right) - \log T - \frac{D}{2} \log 2\pi
       + \frac{D}{2} \log \tau\right],

    the last accumulated as a running ``logsumexp``
    (:class:`jdrop.uncertainty.RegressionSummary`), and ``rmse``
    :math:`= \sqrt{\operatorname{mean}((\bar y - y)^2)}`. Values equal
    :func:`jdrop.uncertainty.regression_uncertainty` of the samples to float32 rounding.

    With ``batch_axis_name`` each device summarises its own points; the two scalars (a
    mean over all points) then need the per-point terms of every device: they are copied
    exactly with one all-reduce and averaged in the order of the unsharded program, so
    the averaging adds no dependence on the device count: from the same per-point values
    the scalars are bitwise those of one device (the values themselves may differ in the
    last bits when ``fn``'s matrix products compile differently for the per-device batch).

    Args:
      fn: ``fn(key, *args) -> (N,)`` or ``(N, D)`` predictions.
      key: typed or legacy key.
      *args: the other arguments of ``fn``.
      num_samples: ``T >= 1``.
      chunk_size: samples per chunk; ``None`` chooses it as :func:`jdrop.mc.sample` does.
      targets: optional ``y`` shaped like one sample, for ``log_likelihood`` (with
        ``tau``) and ``rmse``.
      tau: optional model precision (inverse observation-noise variance), ``> 0``, for
        ``total_variance`` and ``log_likelihood``.
      mesh, batch_axis_name, batch_argnums: shard the batch as in :func:`jdrop.mc.sample`
        (``targets`` are sharded like the batch).

    Returns:
      A :class:`jdrop.uncertainty.RegressionUncertainty`; ``total_variance`` is ``None``
      without ``tau``, ``log_likelihood`` without ``targets`` or ``tau``, ``rmse`` without
      ``targets``.

    Raises:
      ValueError: as :func:`jdrop.mc.sample`; ``fn`` not returning ``(N,)`` or ``(N, D)`` floats;
        ``targets`` of another shape; a concrete ``tau`` not positive and finite.

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> fn = lambda key, x: jdrop.dropout(key, x, 0.5)
      >>> u = predictive_regression(fn, jax.random.key(0), jnp.ones(4), num_samples=2000,
      ...                           chunk_size=500, targets=jnp.ones(4), tau=1.0)
      >>> print(jnp.round(u.mean, 1), jnp.round(u.epistemic_variance, 1))
      [1. 1. 1. 1.] [1. 1. 1. 1.]
      >>> print(f"{float(u.log_likelihood):.2f}")  # log(0.5 N(1; 0, 1) + 0.5 N(1; 2, 1))
      -1.42

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning". ICML 2016.
    """
    check_fn(fn)
    num_samples = check_num_samples(num_samples)
    key = as_key(key)
    struct = _output_struct(fn, key, args)
    if not (
        isinstance(struct, jax.ShapeDtypeStruct)
        and len(struct.shape) in (1, 2)
        and jnp.issubdtype(struct.dtype, jnp.floating)
    ):
        raise ValueError(
            f"fn must return one (N,) or (N, D) floating-point array, got {struct}"
        )
    shape, dtype = struct.shape, compute_dtype(struct.dtype)  # >= float32
    plan = make_plan(mesh, batch_axis_name, None, batch_argnums, len(args))
    check_batch_output(shape, plan)
    if targets is not None:
        targets = jnp.asarray(targets)
        if targets.shape != shape:
            raise ValueError(
                f"targets.shape={targets.shape} does not match one sample of fn, "
                f"shape={shape}"
            )
        targets = targets.astype(dtype)
    chunk_size = choose_chunk_size(fn, key, args, num_samples, chunk_size)
    init = shard_batch_leaves(RegressionSummary.init(shape, tau, y=targets, dtype=dtype), plan)
    summary = reduce_chunks(
        fn, key, args, num_samples, chunk_size, init, RegressionSummary.update, plan
    )

    def mean_points(terms):
        # The per-point terms of every device, copied exactly (one all-reduce) and
        # averaged in a fixed order: no dependence on the device count.
        return jax.tree.map(fixed_order_mean, replicate_exact(terms, plan))

    return summary.finalize(num_samples, mean_points=mean_points)

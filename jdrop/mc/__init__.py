"""Monte-Carlo dropout: T stochastic passes as a ``jax.vmap`` over keys.

:func:`sample` stacks the passes, :func:`reduce` folds them chunk by chunk, and
:func:`predictive_classification` / :func:`predictive_regression` stream them into
summaries in memory bounded by ``chunk_size``. Everything can be sharded over a mesh.
The modules: ``_sample`` (the sampling API), ``_chunking`` (the default chunk size),
``_sharding`` (placement on a mesh), ``_predictive`` (the streamed summaries).
"""

from jdrop.mc._predictive import predictive_classification as predictive_classification
from jdrop.mc._predictive import predictive_regression as predictive_regression
from jdrop.mc._sample import reduce as reduce
from jdrop.mc._sample import sample as sample

__all__ = [
    "predictive_classification",
    "predictive_regression",
    "reduce",
    "sample",
]

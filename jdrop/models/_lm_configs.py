"""Named language-model configurations with the sizes and dropout rates of the papers.

=====================  ======  =========  ======================================  ========
name                   layers  hidden     dropout                                 params*
=====================  ======  =========  ======================================  ========
``zaremba_small``      2       200        none                                    4.6M
``zaremba_medium``     2       650        0.5 non-recurrent, fresh per step       19.8M
``zaremba_large``      2       1500       0.65 non-recurrent, fresh per step      66.0M
``gal_medium``         2       650        variational: emb 0.2, in/out 0.35,      19.8M
                                          recurrent 0.2
``gal_large``          2       1500       variational: emb 0.3, in/out 0.5,       66.0M
                                          recurrent 0.3
``awd_lstm``           3       1150,      locked: emb 0.1, in 0.4, between 0.3,   24.2M
                               1150, 400  out 0.4; weight drop 0.5; tied
``char_shakespeare``   2       256        variational: in/out/recurrent 0.25      1.08M
=====================  ======  =========  ======================================  ========

\\* with a 10,000-word vocabulary (Penn Treebank as preprocessed by Mikolov), and 65
characters for ``char_shakespeare``; :func:`param_count` computes them without allocating.

Notes on the values:

* Zaremba et al. 2014 (section 4.1): the medium LSTM has 650 units, dropout 0.5 and
  ``U(-0.05, 0.05)`` initialisation; the large one 1500 units, dropout 0.65 and
  ``U(-0.04, 0.04)``; the small one 200 units, no dropout, ``U(-0.1, 0.1)``. Embedding size
  = hidden size, untied.
* Gal & Ghahramani 2016 (section 5.1) tune two tied pairs of rates by grid search: embedding
  with recurrent, input with output. They report 0.3 / 0.5 for the large model; for the
  medium model we use 0.2 / 0.35, our best reading of the paper. Sizes and initialisation are
  Zaremba's. Their "variational (untied weights)" LSTM draws a separate recurrent mask per
  gate; jdrop's fused gates share one mask (the paper's "tied" variant).
* Merity et al. 2018 (AWD-LSTM, section 5): 3 layers, 1150 hidden units, 400-dimensional
  tied embeddings (so the last layer has 400 units), dropout (output, between layers, input,
  embedding) = (0.4, 0.3, 0.4, 0.1), weight drop 0.5 on ``W_hh``. (Their repository's PTB
  command uses 0.25 between layers.) All masks are locked (variational) and there is no
  recurrent-activation mask: weight drop regularises the recurrence.
* ``char_shakespeare`` is jdrop's own small model for Tiny Shakespeare (65 characters) that
  trains on a laptop CPU in minutes.

References:
  Zaremba, Sutskever, Vinyals. "Recurrent Neural Network Regularization". arXiv 2014.
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Merity, Keskar, Socher. "Regularizing and Optimizing LSTM Language Models". ICLR 2018.
  Karpathy. "The Unreasonable Effectiveness of Recurrent Neural Networks" (char-rnn). 2015.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from flax import nnx

from jdrop.models._rnn_lm import LMConfig, RNNLanguageModel

__all__ = ["LM_CONFIGS", "get_lm_config", "make_language_model", "param_count"]

PTB_VOCAB = 10_000
SHAKESPEARE_VOCAB = 65


def two_layer_ptb_lstm(width: int, dropout_mode: str, rate: float, init_scale: float,
                       **fields) -> LMConfig:
    """A two-layer PTB LSTM of ``width`` units (Zaremba et al.; Gal & Ghahramani).

    ``rate`` is the dropout on the non-recurrent connections (input, between layers,
    output); ``fields``: other :class:`LMConfig` fields (e.g. ``recurrent_dropout``).

    Examples:
      >>> two_layer_ptb_lstm(650, "zaremba", 0.5, 0.05).hidden_sizes
      (650, 650)
    """
    return LMConfig(
        vocab_size=PTB_VOCAB,
        embed_size=width,
        hidden_sizes=(width, width),
        dropout_mode=dropout_mode,
        input_dropout=rate,
        hidden_dropout=rate,
        output_dropout=rate,
        init_scale=init_scale,
        **fields,
    )


LM_CONFIGS: dict[str, LMConfig] = {
    "zaremba_small": two_layer_ptb_lstm(200, "zaremba", 0.0, init_scale=0.1),
    "zaremba_medium": two_layer_ptb_lstm(650, "zaremba", 0.5, init_scale=0.05),
    "zaremba_large": two_layer_ptb_lstm(1500, "zaremba", 0.65, init_scale=0.04),
    "gal_medium": two_layer_ptb_lstm(650, "variational", 0.35, init_scale=0.05,
                                     embedding_dropout=0.2, recurrent_dropout=0.2),
    "gal_large": two_layer_ptb_lstm(1500, "variational", 0.5, init_scale=0.04,
                                    embedding_dropout=0.3, recurrent_dropout=0.3),
    "awd_lstm": LMConfig(
        vocab_size=PTB_VOCAB,
        embed_size=400,
        hidden_sizes=(1150, 1150, 400),
        dropout_mode="variational",
        embedding_dropout=0.1,
        input_dropout=0.4,
        hidden_dropout=0.3,
        output_dropout=0.4,
        weight_drop=0.5,
        tie_weights=True,
    ),
    "char_shakespeare": LMConfig(
        vocab_size=SHAKESPEARE_VOCAB,
        embed_size=256,
        hidden_sizes=(256, 256),
        dropout_mode="variational",
        input_dropout=0.25,
        hidden_dropout=0.25,
        output_dropout=0.25,
        recurrent_dropout=0.25,
    ),
}


def get_lm_config(name: str, **overrides) -> LMConfig:
    """Returns the named configuration, with fields replaced by ``overrides``.

    Args:
      name: a key of :data:`LM_CONFIGS`.
      **overrides: :class:`LMConfig` fields to change (e.g. ``vocab_size=33278``).

    Returns:
      An :class:`LMConfig`.

    Raises:
      ValueError: unknown ``name``. TypeError: unknown field in ``overrides``.

    Examples:
      >>> get_lm_config("awd_lstm").hidden_sizes
      (1150, 1150, 400)
      >>> get_lm_config("zaremba_small", vocab_size=50).vocab_size
      50
    """
    if name not in LM_CONFIGS:
        raise ValueError(f"name must be one of {sorted(LM_CONFIGS)}, got name={name!r}")
    return dataclasses.replace(LM_CONFIGS[name], **overrides)


def make_language_model(config: LMConfig | str, *, rngs: nnx.Rngs, **overrides):
    """Builds an :class:`RNNLanguageModel` from a config or a configuration name.

    Examples:
      >>> from flax import nnx
      >>> model = make_language_model("char_shakespeare", rngs=nnx.Rngs(0), hidden_sizes=(8,))
      >>> model.embedding.shape
      (65, 256)
    """
    if isinstance(config, str):
        config = get_lm_config(config, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    return RNNLanguageModel(config, rngs=rngs)


def param_count(model: nnx.Module | LMConfig | str, **overrides) -> int:
    """Number of scalars in a model's ``nnx.Param`` leaves.

    Given an :class:`LMConfig` or a configuration's name (and ``overrides``), counts the
    language model it builds, under ``nnx.eval_shape`` (no memory allocated).

    Args:
      model: an NNX module (concrete or from ``nnx.eval_shape``), an :class:`LMConfig`, or
        a name in :data:`LM_CONFIGS`.
      **overrides: :class:`LMConfig` fields to change (configurations only).

    Returns:
      The parameter count as a Python int.

    Raises:
      TypeError: ``overrides`` with a module.

    Examples:
      >>> param_count("zaremba_large") / 1e6  # Zaremba et al.: 66M
      66.022
      >>> param_count(nnx.Linear(3, 2, rngs=nnx.Rngs(0)))
      8
    """
    if isinstance(model, nnx.Module):
        if overrides:
            raise TypeError(f"overrides apply to configurations, not to a module: {overrides}")
    else:
        config = model
        model = nnx.eval_shape(lambda: make_language_model(config, rngs=nnx.Rngs(0), **overrides))
    leaves = jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))
    return int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in leaves))

"""Greedy and beam-search decoding of an encoder-decoder model, jitted, with a key/value cache.

Both functions take a model with the :class:`jdrop.models.TransformerSeq2Seq` interface
(``encode``, ``decode(..., decode=True)``, ``init_cache``), split it with ``nnx.split``
and run one compiled program: the source is encoded once, then a ``jax.lax.while_loop``
feeds one target position per iteration through the decoder's self-attention cache and
stops as soon as every sentence has finished (or ``max_length`` tokens were produced).
The compiled program is cached per model structure and settings: decoding another batch
of the same shapes does not compile again.

Beam search follows fairseq's bookkeeping (Ott et al. 2019): at step ``t`` the ``2K``
best extensions of the ``K`` live beams are ranked by their summed log-probability; those
among the first ``K`` that end in EOS are finished, scored with the GNMT length penalty
(Wu et al. 2016)

    score(Y) = log P(Y | X) / lp(Y),    lp(Y) = ((5 + |Y|) / 6) ** alpha

(``|Y|`` counts the EOS), and the best ``K`` that do not end in EOS stay alive. A
sentence is done once it has ``K`` finished hypotheses; at ``max_length`` the live beams
compete with the finished ones (scored as if they ended there). With ``beam_width=1``
this is exactly greedy decoding.

References:
  Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
  Wu et al. "Google's Neural Machine Translation System: Bridging the Gap between Human
  and Machine Translation". arXiv:1609.08144, 2016 (length penalty, section 7).
  Ott et al. "fairseq: A Fast, Extensible Toolkit for Sequence Modeling". NAACL 2019.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from jdrop._validation import check_int, check_number

__all__ = ["beam_search", "greedy_decode"]

_NEG = -1.0e9  # a finite "minus infinity" for log-probabilities (no inf - inf = NaN)


def _gnmt_penalty(length, alpha: float):
    """GNMT's length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016, eq. 14)."""
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def _check_inputs(model, source, source_mask, max_length, ids):
    for method in ("encode", "decode", "init_cache"):
        if not callable(getattr(model, method, None)):
            raise TypeError(
                f"model must have encode/decode/init_cache (a TransformerSeq2Seq), got "
                f"{type(model).__name__} without {method}()"
            )
    source = jnp.asarray(source)
    if source.ndim != 2 or not jnp.issubdtype(source.dtype, jnp.integer):
        raise ValueError(
            f"source must be (batch, length) integer ids, got source.shape={source.shape}, "
            f"dtype={source.dtype}"
        )
    if source_mask is None:
        source_mask = jnp.ones(source.shape, bool)
    source_mask = jnp.asarray(source_mask)
    if source_mask.shape != source.shape:
        raise ValueError(
            f"source_mask must have source's shape {source.shape}, got "
            f"source_mask.shape={source_mask.shape}"
        )
    check_int(max_length, "max_length", 1)
    limit = getattr(model, "max_length", None)
    if limit is not None and max_length > limit:
        raise ValueError(
            f"max_length must be <= the model's max_length={limit}, got max_length={max_length}"
        )
    for name, value in ids.items():
        check_int(value, name, 0)
    return source.astype(jnp.int32), source_mask.astype(bool)


def _decoder(model, source, source_mask, rows: int, max_length: int):
    """``(memory, step, cache)``: the encoded source and a pure one-position decoder step.

    ``step(cache, tokens (rows,)) -> (logits (rows, V), cache)``; ``memory`` and the mask
    are repeated to ``rows`` (beams) when that exceeds the batch.
    """
    memory = model.encode(source, source_mask, deterministic=True)
    repeat = rows // source.shape[0]
    if repeat > 1:
        memory = jnp.repeat(memory, repeat, axis=0)
        source_mask = jnp.repeat(source_mask, repeat, axis=0)
    model.init_cache(rows, max_length, dtype=memory.dtype)
    graphdef, cache, rest = nnx.split(model, nnx.Cache, ...)

    def step(cache, tokens):
        module = nnx.merge(graphdef, cache, rest)
        logits = module.decode(tokens[:, None], memory, source_mask, decode=True,
                               deterministic=True)
        return logits[:, 0], nnx.state(module, nnx.Cache)

    return step, cache


@functools.lru_cache(maxsize=32)
def _compiled(kind: str, graphdef, settings: tuple):
    """The jitted decoder of ``kind`` for one model structure (memoised)."""
    build = _greedy_program if kind == "greedy" else _beam_program

    def run(state, source, source_mask):
        model = nnx.merge(graphdef, state, copy=True)
        return build(model, source, source_mask, *settings)

    return jax.jit(run)


def _greedy_program(model, source, source_mask, max_length, bos_id, eos_id, pad_id):
    batch = source.shape[0]
    step, cache = _decoder(model, source, source_mask, batch, max_length)
    tokens = jnp.full((batch, max_length + 1), pad_id, jnp.int32).at[:, 0].set(bos_id)

    def cond(carry):
        t, _, finished, _ = carry
        return (t < max_length) & ~jnp.all(finished)

    def body(carry):
        t, tokens, finished, cache = carry
        logits, cache = step(cache, tokens[:, t])
        chosen = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        chosen = jnp.where(finished, pad_id, chosen)
        tokens = tokens.at[:, t + 1].set(chosen)
        return t + 1, tokens, finished | (chosen == eos_id), cache

    carry = (jnp.zeros((), jnp.int32), tokens, jnp.zeros((batch,), bool), cache)
    _, tokens, _, _ = jax.lax.while_loop(cond, body, carry)
    return tokens[:, 1:]


def greedy_decode(model, source, source_mask=None, *, max_length: int, bos_id: int = 1,
                  eos_id: int = 2, pad_id: int = 0):
    r"""Greedy decoding: at each step the most probable next token, until EOS.

    :math:`y_t = \arg\max_v p(v \mid y_{<t}, x)`, one position per step through the decoder's
    key/value cache, in one jitted ``jax.lax.while_loop`` that stops when every sentence
    has produced EOS.

    Args:
      model: a :class:`jdrop.models.TransformerSeq2Seq` (or a model with its
        ``encode``/``decode``/``init_cache``); not changed. Decoding is deterministic
        whatever the model's mode.
      source: ``(B, S)`` integer source ids.
      source_mask: ``(B, S)`` boolean, ``True`` at real tokens (``None``: all real).
      max_length: the most tokens generated per sentence (EOS included).
      bos_id: the decoder's first input.
      eos_id: the end-of-sentence id.
      pad_id: written after a sentence's EOS.

    Returns:
      ``(B, max_length)`` int32 ids: the tokens generated (BOS excluded), EOS included
      where produced, ``pad_id`` after it.

    Raises:
      TypeError: ``model`` lacks the encoder-decoder methods.
      ValueError: bad shapes, ``max_length`` below 1 or above the model's, negative ids.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jdrop.models import TransformerSeq2Seq
      >>> model = TransformerSeq2Seq(12, features=16, num_heads=2, ffn_features=32,
      ...                            encoder_layers=1, decoder_layers=1, max_length=8,
      ...                            rngs=nnx.Rngs(0))
      >>> src = jnp.array([[4, 5, 6, 2]])
      >>> greedy_decode(model, src, src > 0, max_length=6).shape
      (1, 6)

    References:
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
    """
    source, source_mask = _check_inputs(model, source, source_mask, max_length,
                                        dict(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id))
    graphdef, state = nnx.split(model)
    fn = _compiled("greedy", graphdef, (max_length, bos_id, eos_id, pad_id))
    return fn(state, source, source_mask)


def _gather_beams(tree, index):
    """Rows ``index`` of every leaf whose leading axis is the flattened ``batch * beam``."""
    rows = index.shape[0]
    return jax.tree.map(lambda x: x[index] if x.ndim and x.shape[0] == rows else x, tree)


def _beam_program(model, source, source_mask, max_length, beam, alpha, bos_id, eos_id,
                  pad_id):
    batch = source.shape[0]
    rows = batch * beam
    step, cache = _decoder(model, source, source_mask, rows, max_length)
    width = max_length + 1
    seqs = jnp.full((batch, beam, width), pad_id, jnp.int32).at[:, :, 0].set(bos_id)
    alive_lp = jnp.tile(jnp.array([0.0] + [_NEG] * (beam - 1), jnp.float32), (batch, 1))
    fin_seqs = jnp.full((batch, beam, width), pad_id, jnp.int32)
    fin_scores = jnp.full((batch, beam), _NEG, jnp.float32)
    fin_count = jnp.zeros((batch,), jnp.int32)
    offsets = (jnp.arange(batch, dtype=jnp.int32) * beam)[:, None]

    def cond(carry):
        t, *_, fin_count, _ = carry
        return (t < max_length) & ~jnp.all(fin_count >= beam)

    def body(carry):
        t, seqs, alive_lp, fin_seqs, fin_scores, fin_count, cache = carry
        logits, cache = step(cache, seqs[:, :, t].reshape(rows))
        vocab = logits.shape[-1]
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, beam, vocab)
        candidates = (alive_lp[:, :, None] + log_probs).reshape(batch, beam * vocab)
        top_lp, top_index = jax.lax.top_k(candidates, 2 * beam)  # (B, 2K), best first
        origin = (top_index // vocab).astype(jnp.int32)
        token = (top_index % vocab).astype(jnp.int32)
        top_seqs = jnp.take_along_axis(seqs, origin[:, :, None], axis=1)
        top_seqs = top_seqs.at[:, :, t + 1].set(token)
        is_eos = token == eos_id
        # finished: EOS among the first K candidates, of sentences not yet done
        done = fin_count >= beam
        new_fin = is_eos & (jnp.arange(2 * beam) < beam)[None] & ~done[:, None]
        new_fin &= top_lp > _NEG / 2
        new_scores = jnp.where(new_fin, top_lp / _gnmt_penalty(t + 1, alpha), _NEG)
        pool_scores = jnp.concatenate([fin_scores, new_scores], axis=1)
        pool_seqs = jnp.concatenate([fin_seqs, top_seqs], axis=1)
        fin_scores, keep = jax.lax.top_k(pool_scores, beam)
        fin_seqs = jnp.take_along_axis(pool_seqs, keep[:, :, None], axis=1)
        fin_count = fin_count + new_fin.sum(axis=1, dtype=jnp.int32)
        # alive: the best K candidates that do not end in EOS
        alive_lp, pick = jax.lax.top_k(jnp.where(is_eos, _NEG, top_lp), beam)
        seqs = jnp.take_along_axis(top_seqs, pick[:, :, None], axis=1)
        parent = jnp.take_along_axis(origin, pick, axis=1)
        cache = _gather_beams(cache, (offsets + parent).reshape(rows))
        return t + 1, seqs, alive_lp, fin_seqs, fin_scores, fin_count, cache

    carry = (jnp.zeros((), jnp.int32), seqs, alive_lp, fin_seqs, fin_scores, fin_count, cache)
    t, seqs, alive_lp, fin_seqs, fin_scores, fin_count, _ = jax.lax.while_loop(cond, body, carry)
    # sentences with fewer than K finished hypotheses: the live beams compete, scored as
    # if they ended at the last position
    open_scores = jnp.where(fin_count[:, None] >= beam, _NEG,
                            alive_lp / _gnmt_penalty(t, alpha))
    open_scores = jnp.where(alive_lp > _NEG / 2, open_scores, _NEG)
    scores = jnp.concatenate([fin_scores, open_scores], axis=1)
    pool = jnp.concatenate([fin_seqs, seqs], axis=1)
    best = jnp.argmax(scores, axis=1)
    ids = jnp.take_along_axis(pool, best[:, None, None], axis=1)[:, 0, 1:]
    return ids, jnp.take_along_axis(scores, best[:, None], axis=1)[:, 0]


def beam_search(model, source, source_mask=None, *, beam_width: int = 4,
                length_penalty: float = 0.6, max_length: int, bos_id: int = 1,
                eos_id: int = 2, pad_id: int = 0):
    """Beam search with the GNMT length penalty, jitted, with the decoder's cache.

    Keeps ``K = beam_width`` hypotheses per sentence and returns the one with the highest
    ``log P(Y | X) / ((5 + |Y|) / 6) ** alpha`` (see the module docstring for the
    bookkeeping). ``beam_width=1`` gives :func:`greedy_decode`'s output.

    Args:
      model: a :class:`jdrop.models.TransformerSeq2Seq`; not changed; decoding is
        deterministic whatever the model's mode.
      source: ``(B, S)`` integer source ids.
      source_mask: ``(B, S)`` boolean, ``True`` at real tokens (``None``: all real).
      beam_width: ``K``, hypotheses kept per sentence.
      length_penalty: ``alpha`` (``0``: raw log-probability; 0.6 as in Vaswani et al.).
      max_length: the most tokens generated per sentence (EOS included).
      bos_id: the decoder's first input.
      eos_id: the end-of-sentence id.
      pad_id: written after a hypothesis's EOS.

    Returns:
      ``(ids, scores)``: ``(B, max_length)`` int32 tokens of the best hypothesis (BOS
      excluded, EOS included where produced, ``pad_id`` after) and its ``(B,)`` float32
      length-normalised log-probability.

    Raises:
      TypeError: ``model`` lacks the encoder-decoder methods.
      ValueError: bad shapes, ``beam_width`` or ``max_length`` below 1, a negative
        ``length_penalty`` or id.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jdrop.models import TransformerSeq2Seq, greedy_decode
      >>> model = TransformerSeq2Seq(12, features=16, num_heads=2, ffn_features=32,
      ...                            encoder_layers=1, decoder_layers=1, max_length=8,
      ...                            rngs=nnx.Rngs(0))
      >>> src = jnp.array([[4, 5, 6, 2], [7, 2, 0, 0]])
      >>> ids, scores = beam_search(model, src, src > 0, beam_width=3, max_length=6)
      >>> ids.shape, scores.shape
      ((2, 6), (2,))
      >>> one, _ = beam_search(model, src, src > 0, beam_width=1, max_length=6)
      >>> bool((one == greedy_decode(model, src, src > 0, max_length=6)).all())
      True

    References:
      Wu et al. "Google's Neural Machine Translation System". arXiv:1609.08144, 2016.
      Ott et al. "fairseq: A Fast, Extensible Toolkit for Sequence Modeling". NAACL 2019.
    """
    source, source_mask = _check_inputs(model, source, source_mask, max_length,
                                        dict(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id))
    check_int(beam_width, "beam_width", 1)
    alpha = check_number(length_penalty, "length_penalty", minimum=0)
    graphdef, state = nnx.split(model)
    settings = (max_length, beam_width, float(alpha), bos_id, eos_id, pad_id)
    return _compiled("beam", graphdef, settings)(state, source, source_mask)

"""Sampling text from a trained recurrent language model, with explicit keys.

After reading the prompt, step ``s`` draws

    token_s ~ Categorical(softmax(logits_s / temperature))   with key fold_in(key, s)

and feeds the token back. ``temperature -> 0`` concentrates the distribution on the argmax;
``temperature = 0`` is greedy decoding (argmax, no randomness). The model runs
deterministically (``deterministic=True``: no dropout), and the loop is a ``lax.scan``, so the whole
function can be jitted (``nnx.jit(generate, static_argnums=3)``).

References:
  Sutskever, Martens, Hinton. "Generating Text with Recurrent Neural Networks". ICML 2011.
  Graves. "Generating Sequences With Recurrent Neural Networks". arXiv 2013.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jdrop
from jdrop._validation import is_concrete

__all__ = ["generate", "sample_logits"]


def _check_temperature(temperature):
    if is_concrete(temperature):
        value = float(np.asarray(temperature))
        if not value >= 0.0:
            raise ValueError(f"temperature must be >= 0, got temperature={temperature!r}")
        return value
    return None


def sample_logits(key, logits: jax.Array, temperature=1.0) -> jax.Array:
    """Draws one token per row of ``logits`` at a temperature (0 = argmax).

    Args:
      key: PRNG key (unused when ``temperature`` is a concrete 0).
      logits: ``(..., vocab)`` unnormalised log-probabilities.
      temperature: ``>= 0``; a Python number or a traced scalar.

    Returns:
      int32 token ids of shape ``logits.shape[:-1]``.

    Raises:
      ValueError: a concrete negative or NaN ``temperature``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sample_logits(jax.random.key(0), jnp.array([[0.0, 3.0, 1.0]]), 0.0)
      Array([1], dtype=int32)
    """
    value = _check_temperature(temperature)
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if value == 0.0:
        return greedy
    if value is not None:
        return jax.random.categorical(jdrop.as_key(key), logits / value).astype(jnp.int32)
    t = jnp.asarray(temperature, logits.dtype)
    safe = jnp.where(t > 0, t, jnp.ones((), logits.dtype))
    sampled = jax.random.categorical(jdrop.as_key(key), logits / safe).astype(jnp.int32)
    return jnp.where(t > 0, sampled, greedy)


def generate(model, key, prompt_ids, num_steps: int, temperature=1.0) -> jax.Array:
    """Continues ``prompt_ids`` by ``num_steps`` sampled tokens.

    Args:
      model: a language model called as ``model(ids, deterministic=True, state=state) ->
        (logits, state)`` with an ``init_state(batch_size)`` method
        (:class:`jdrop.models._rnn_lm.RNNLanguageModel`).
      key: PRNG key; step ``s`` samples with ``fold_in(key, s)``.
      prompt_ids: ``(P,)`` or ``(B, P)`` integer tokens, ``P >= 1``.
      num_steps: number of tokens to generate (a Python int).
      temperature: sampling temperature ``>= 0`` (0: greedy argmax).

    Returns:
      The generated tokens (without the prompt): ``(num_steps,)`` or ``(B, num_steps)``
      int32.

    Raises:
      ValueError: empty prompt, negative ``num_steps`` or ``temperature``.
      TypeError: non-integer ``prompt_ids``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from jdrop.models._lm_configs import make_language_model
      >>> model = make_language_model("char_shakespeare", rngs=nnx.Rngs(0),
      ...                             embed_size=8, hidden_sizes=(8,))
      >>> prompt = jnp.array([1, 2, 3])
      >>> out = generate(model, jax.random.key(0), prompt, 5)
      >>> out.shape, bool((out == generate(model, jax.random.key(0), prompt, 5)).all())
      ((5,), True)
    """
    prompt = jnp.asarray(prompt_ids)
    if not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise TypeError(f"prompt_ids must be integer token ids, got dtype={prompt.dtype}")
    if prompt.ndim not in (1, 2) or prompt.shape[-1] == 0:
        raise ValueError(f"prompt_ids must be (P,) or (B, P) with P >= 1, got {prompt.shape}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative int, got num_steps={num_steps!r}")
    _check_temperature(temperature)
    single = prompt.ndim == 1
    prompt = prompt[None] if single else prompt
    key = jdrop.as_key(key)
    graphdef, params = nnx.split(model)

    def apply(ids, state):
        return nnx.merge(graphdef, params)(ids, deterministic=True, state=state)

    logits, state = apply(prompt, model.init_state(prompt.shape[0]))

    def body(carry, step):
        last_logits, state = carry
        token = sample_logits(jax.random.fold_in(key, step), last_logits, temperature)
        logits, state = apply(token[:, None], state)
        return (logits[:, 0], state), token

    steps = jnp.arange(num_steps, dtype=jnp.uint32)
    _, tokens = jax.lax.scan(body, (logits[:, -1], state), steps)
    tokens = tokens.T
    return tokens[0] if single else tokens

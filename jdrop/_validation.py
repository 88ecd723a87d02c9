"""Argument validation: the one module every jdrop package checks its arguments with.

Every check names the argument and the offending value in its message
(``num_bins must be >= 1, got num_bins=0``). A value of the wrong *type* raises
:class:`ArgumentTypeError`, which is both a ``TypeError`` and a ``ValueError`` (as NumPy's
``AxisError`` is both a ``ValueError`` and an ``IndexError``), so callers may catch
either; a value of the right type outside its range raises ``ValueError``.

Traced values (inside ``jax.jit``) cannot be read: checks that need the value either skip
it (:func:`concrete_rate`, ``allow_traced=True``) or refuse it with a message that says so.
"""

from __future__ import annotations

import contextvars
import functools
import math
import operator
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

__all__ = [
    "ArgumentTypeError",
    "checked",
    "check_callable",
    "check_choice",
    "check_float_array",
    "check_int",
    "check_number",
    "check_rate",
    "concrete_rate",
    "is_concrete",
    "normalize_axes",
    "normalize_axis",
    "poison_invalid_rate",
    "require_key",
]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a ``TypeError`` that is also a ``ValueError``."""


def is_concrete(*values) -> bool:
    """True when every value is concrete: not traced, and readable from this host.

    Python numbers and NumPy arrays are concrete; a ``jax.Array`` is concrete unless it is
    a tracer or a global array with shards on other processes.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> is_concrete(0.5, jnp.ones(2))
      True
      >>> jax.jit(lambda x: jnp.asarray(is_concrete(x)))(1.0).item()
      False
    """
    for value in values:
        if isinstance(value, jax.core.Tracer):
            return False
        if isinstance(value, jax.Array) and not value.is_fully_addressable:
            return False
    return True


def check_int(value, name: str, minimum: int | None = None, *, optional: bool = False):
    """Returns ``value`` as a Python ``int`` after checking its type and lower bound.

    Args:
      value: a Python or NumPy integer (``bool`` is refused).
      name: the argument's name, for messages.
      minimum: smallest allowed value, or ``None`` for no bound.
      optional: accept ``None`` (and return it).

    Returns:
      ``int(value)``, or ``None`` when ``optional`` and ``value is None``.

    Raises:
      ArgumentTypeError: ``value`` is not an integer (or is traced).
      ValueError: ``value < minimum``.

    Examples:
      >>> check_int(3, "num_samples", 1)
      3
      >>> check_int(0, "num_samples", 1)
      Traceback (most recent call last):
      ...
      ValueError: num_samples must be >= 1, got num_samples=0
    """
    if optional and value is None:
        return None
    bound = "" if minimum is None else f" >= {minimum}"
    none = " or None" if optional else ""
    message = f"{name} must be a Python int{bound}{none}, got {name}={value!r}"
    if isinstance(value, bool | jax.core.Tracer):
        raise ArgumentTypeError(message)
    try:
        out = operator.index(value)
    except TypeError:
        raise ArgumentTypeError(message) from None
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value!r}")
    return out


def check_number(
    value,
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    optional: bool = False,
    allow_traced: bool = False,
):
    """Returns a finite real scalar as a Python ``float`` after checking its bounds.

    Args:
      value: a Python int or float, or a NumPy / JAX scalar (``bool`` is refused).
      name: the argument's name, for messages.
      minimum: smallest allowed value (inclusive), or ``None`` for no lower bound.
      positive: require ``value > 0`` (both bounds apply when both are given).
      optional: accept ``None`` (and return it).
      allow_traced: return a traced ``value`` unchanged instead of refusing it.

    Returns:
      ``float(value)`` (or ``value`` itself when traced and ``allow_traced``).

    Raises:
      ArgumentTypeError: ``value`` is not a real scalar (or is traced).
      ValueError: ``value`` is NaN, infinite, or out of bounds.

    Examples:
      >>> check_number(0.1, "learning_rate", positive=True)
      0.1
      >>> check_number(-1, "scale", minimum=0)
      Traceback (most recent call last):
      ...
      ValueError: scale must be a finite float >= 0, got scale=-1
    """
    if optional and value is None:
        return None
    if isinstance(value, jax.core.Tracer):
        if allow_traced:
            return value
        raise ArgumentTypeError(f"{name} must be a concrete number, got a traced {name}={value!r}")
    is_real = isinstance(value, int | float | np.integer | np.floating) or (
        isinstance(value, np.ndarray | jax.Array)
        and value.ndim == 0
        and (jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating))
    )
    if isinstance(value, bool | np.bool_) or not is_real:
        raise ArgumentTypeError(f"{name} must be a real number, got {name}={value!r}")
    out = float(value)
    bounds = []
    ok = math.isfinite(out)
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
        ok = ok and out >= minimum
    if positive:
        bounds.append("> 0")
        ok = ok and out > 0
    if not ok:
        bound = " " + " and ".join(bounds) if bounds else ""
        raise ValueError(f"{name} must be a finite float{bound}, got {name}={value!r}")
    return out


def concrete_rate(rate, name: str = "rate", *, allow_one: bool = True) -> float | None:
    """Returns ``rate`` as a Python float after checking it, or ``None`` when it is traced.

    The ops accept traced rates (a rate schedule inside ``jax.jit``); only a concrete rate
    can be checked.

    Raises:
      ValueError: if a concrete ``rate`` is not a scalar, is NaN, or is outside ``[0, 1]``
        (``[0, 1)`` when ``allow_one`` is false).

    Examples:
      >>> concrete_rate(0.25)
      0.25
    """
    if isinstance(rate, bool | np.bool_) or getattr(rate, "dtype", None) == np.bool_:
        raise ArgumentTypeError(
            f"{name} must be a real number in [0, 1], got a bool {name}={rate!r}"
        )
    if not is_concrete(rate):
        if jnp.ndim(rate) != 0:
            raise ValueError(f"{name} must be a scalar, got a traced {name} of shape "
                             f"{jnp.shape(rate)}")
        if not (jnp.issubdtype(rate.dtype, jnp.floating)
                or jnp.issubdtype(rate.dtype, jnp.integer)):
            raise ArgumentTypeError(
                f"{name} must be a real scalar, got a traced {name} of dtype "
                f"{rate.dtype}")
        return None
    array = np.asarray(rate)
    if array.dtype.kind not in "iuf":
        raise ArgumentTypeError(
            f"{name} must be a real number in [0, 1], got {name}={rate!r} "
            f"(dtype {array.dtype})")
    if array.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
    value = float(array)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if math.isnan(value) or value < 0.0 or not upper_ok:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {name}={rate!r}")
    return value


def check_rate(rate, name: str = "rate", *, allow_one: bool = True) -> float:
    """A rate fixed at construction (layers, models): concrete, in ``[0, 1]``, as a float.

    Raises:
      ArgumentTypeError: ``rate`` is traced (a layer stores its rate as a Python float).
      ValueError: as :func:`concrete_rate`.

    Examples:
      >>> check_rate(0.5, "input_dropout", allow_one=False)
      0.5
    """
    value = concrete_rate(rate, name, allow_one=allow_one)
    if value is None:
        raise ArgumentTypeError(
            f"{name} must be a concrete Python number when building a layer or model, "
            f"got a traced {name}={rate!r}"
        )
    return value


def check_choice(value, name: str, choices: Sequence):
    """Returns ``value`` when it is one of ``choices``; ``ValueError`` listing them otherwise.

    Examples:
      >>> check_choice("equal_mass", "binning", ("equal_width", "equal_mass"))
      'equal_mass'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {name}={value!r}")
    return value


def check_callable(value, name: str, how: str = "") -> Callable:
    """Returns ``value`` when callable; ``TypeError`` (naming ``how`` it is called) otherwise."""
    if not callable(value):
        usage = f" as {how}" if how else ""
        raise TypeError(f"{name} must be callable{usage}, got {name}={value!r}")
    return value


def check_float_array(x, name: str = "x") -> jax.Array:
    """Returns ``x`` as a JAX array, raising ``TypeError`` unless it has a floating dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} must have a floating dtype (float32, bfloat16, float16, ...), got "
            f"{name}.dtype={x.dtype}"
        )
    return x


def normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Normalises a possibly negative axis, raising ``ValueError`` when out of range."""
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an int, got {name}={axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an input with x.ndim={ndim}")
    return int(axis) % ndim


def normalize_axes(axes: Sequence[int] | int, ndim: int, name: str) -> tuple[int, ...]:
    """Normalises a tuple of axes (duplicates are an error)."""
    if isinstance(axes, int | np.integer):
        axes = (axes,)
    if isinstance(axes, str) or not isinstance(axes, Sequence | np.ndarray | set | frozenset):
        raise TypeError(
            f"{name} must be an int or a sequence of ints (() for none), got {name}={axes!r}"
        )
    out = tuple(normalize_axis(a, ndim, name) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated axes: {name}={tuple(axes)}")
    return out


def require_key(key, deterministic: bool, function: str):
    """Raises a ``ValueError`` that says what to pass when a key is needed but missing."""
    if key is None and not deterministic:
        raise ValueError(
            f"{function} needs a PRNG key while training: pass key=jax.random.key(seed) "
            "(or a key split from one), or set deterministic=True for inference."
        )


_CHECKIFY_RATES = contextvars.ContextVar("jdrop_checkify_rates", default=False)


def poison_invalid_rate(y, rate, name: str = "rate", *, allow_one: bool = True):
    """``y``, or NaN everywhere when a traced ``rate`` is NaN or outside ``[0, 1]``.

    A traced rate cannot be checked while tracing, so an invalid one makes every element
    of the op's output NaN (never a plausible result). Under :func:`checked` it also
    raises a ``checkify`` error naming ``name``. Concrete rates are returned unchanged
    (they were checked by :func:`concrete_rate`).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> jax.jit(lambda r: poison_invalid_rate(jnp.ones(2), r))(1.5)
      Array([nan, nan], dtype=float32)
    """
    if is_concrete(rate):
        return y
    r = jax.lax.stop_gradient(jnp.asarray(rate)).astype(jnp.float32)
    ok = (r >= 0) & ((r <= 1) if allow_one else (r < 1))
    if _CHECKIFY_RATES.get():
        interval = "[0, 1]" if allow_one else "[0, 1)"
        checkify.check(jnp.all(ok), f"{name} must be in {interval}, got {name}={{r}}", r=r)
    y = jnp.asarray(y)
    return jnp.where(ok, y, jnp.asarray(jnp.nan, y.dtype))


def checked(fn: Callable, errors=checkify.user_checks) -> Callable:
    """``jax.experimental.checkify.checkify(fn)`` that also checks jdrop's traced rates.

    Inside ``fn`` every jdrop op given a traced rate that is NaN or outside its interval
    raises a checkify error naming the argument (instead of only poisoning its output
    with NaN). Pass the un-jitted ``fn`` (jit the result): a function jitted before
    wrapping reuses its cached, unchecked trace.

    Args:
      fn: the function to check.
      errors: checkify's error set (``checkify.user_checks`` by default; add
        ``checkify.float_checks`` etc. as needed).

    Returns:
      ``checked_fn(*args, **kwargs) -> (error, out)``, as ``checkify.checkify``; call
      ``error.throw()`` to raise.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jdrop
      >>> f = jdrop.checked(lambda r: jdrop.dropout(jax.random.key(0), jnp.ones(4), r))
      >>> err, y = jax.jit(f)(1.5)
      >>> err.get()  # doctest: +ELLIPSIS
      'rate must be in [0, 1], got rate=1.5...'
    """
    check_callable(fn, "fn")

    @functools.wraps(fn)
    def with_rate_checks(*args, **kwargs):
        token = _CHECKIFY_RATES.set(True)
        try:
            return fn(*args, **kwargs)
        finally:
            _CHECKIFY_RATES.reset(token)

    return checkify.checkify(with_rate_checks, errors=errors)

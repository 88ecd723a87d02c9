"""Distribution shifts (jdrop.data.apply_shift): every shift changes the inputs."""

import jax
import numpy as np
import pytest

from jdrop.data import SHIFTS, apply_shift


def test_shifts_change_the_inputs():
    x = np.random.default_rng(0).normal(size=(4, 40)).astype(np.float32)
    for name in SHIFTS:
        out = apply_shift(name, jax.random.key(0), x)
        assert out.shape == x.shape and out.dtype == np.float32
        assert not np.allclose(out, x)
    with pytest.raises(ValueError, match="unknown shift 'blur'"):
        apply_shift("blur", jax.random.key(0), x)

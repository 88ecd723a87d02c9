"""Import hygiene and the public API surface."""

import subprocess
import sys

import jdrop


def test_import_does_not_pull_heavy_optional_dependencies():
    code = (
        "import sys, jdrop, jdrop.mc, jdrop.uncertainty, jdrop.nn;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tensorflow_datasets', 'matplotlib', 'torch', 'sklearn')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_public_name_is_documented():
    for name in jdrop.__all__:
        obj = getattr(jdrop, name)
        assert obj.__doc__ and len(obj.__doc__) > 40, name
        assert ">>>" in obj.__doc__ or name in {"weight_scale"}, f"{name} has no example"


def test_subpackages_are_bound_lazily_and_import_jdrop_stays_light():
    """``import jdrop`` binds jdrop.mc, jdrop.uncertainty, jdrop.nn on first use (PEP 562)
    and imports neither Flax nor the subpackages until then (a fresh interpreter)."""
    code = (
        "import sys, jdrop;"
        "early = sorted(m for m in sys.modules if m.split('.')[0] == 'flax'"
        " or m in ('jdrop.mc', 'jdrop.uncertainty', 'jdrop.nn'));"
        "assert not early, early;"
        "jdrop.mc.sample; jdrop.uncertainty.auroc; jdrop.nn.Dropout;"
        "assert 'flax' in sys.modules and 'jdrop.mc' in sys.modules;"
        "assert {'mc', 'uncertainty', 'nn'} <= set(dir(jdrop))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_function_shadows_its_module():
    """The ops live in private modules, so ``jdrop.dropout`` is the function."""
    import jdrop._dropout

    assert callable(jdrop.dropout) and jdrop.dropout is jdrop._dropout.dropout

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

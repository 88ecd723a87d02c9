"""``experiments._images``: the results note shared by the five Fashion-MNIST experiments."""

import json
import re

from experiments import _images as im
from experiments.regularizers import config as configs


def test_run_note_names_config_time_load_and_command(monkeypatch):
    monkeypatch.setattr(im.sys, "argv", ["x", "--workdir", "/tmp/reg", "--num_epochs", "3"])
    monkeypatch.setattr(im.os, "getloadavg", lambda: (1.3, 0.5, 0.25))
    note = im.run_note("regularizers", configs.smoke(), 90.0)
    config = json.loads(re.search(r"\((\{.*\})\)", note).group(1))
    assert config["name"] == "smoke" and config["hidden"] == [16]
    assert "wall time of this invocation 1.5 min" in note
    assert "1-minute load average 1.3 at its end" in note
    assert note.endswith("(`python -m experiments.regularizers --workdir /tmp/reg "
                         "--num_epochs 3`).")

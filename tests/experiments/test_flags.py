"""Flags from config dataclasses (experiments.flags), shared by every experiment."""

import pytest

from experiments import flags
from experiments.mc_dropout import config


def test_flags_override_default_or_smoke(tmp_path):
    cfg, workdir = flags.parse(config, ["--workdir", str(tmp_path), "--num_epochs", "3",
                                        "--shifts", "noise", "--no-progress",
                                        "--max_test_examples", "none"], description="")
    assert workdir == tmp_path and cfg.num_epochs == 3 and cfg.shifts == ("noise",)
    assert cfg.progress is False and cfg.max_test_examples is None
    assert cfg.width == config.default().width
    smoke, _ = flags.parse(config, ["--workdir", "w", "--smoke", "--width", "4"],
                           description="")
    assert smoke.width == 4 and smoke.num_epochs == config.smoke().num_epochs


def test_workdir_required_and_check_reported(tmp_path):
    with pytest.raises(SystemExit):
        flags.parse(config, [], description="")

    def check(cfg):
        raise ValueError("--width is bad")

    with pytest.raises(SystemExit):
        flags.parse(config, ["--workdir", str(tmp_path)], description="", check=check)


def test_command_lists_the_changed_fields():
    cmd = flags.command("experiments.mc_dropout", config.smoke())
    assert cmd.startswith("python -m experiments.mc_dropout --width 8 ")
    assert "--no-progress" in cmd and "--sample_counts 1 2 5 10" in cmd


def test_cpu_flag_starts_from_cpu_config_only_where_one_exists():
    from experiments.dataset_size import config as with_cpu

    cfg, _ = flags.parse(with_cpu, ["--workdir", "w", "--cpu", "--num_steps", "7"],
                         description="")
    assert cfg == type(cfg)(**{**with_cpu.cpu().__dict__, "num_steps": 7})
    with pytest.raises(SystemExit):  # the main job has no cpu() configuration
        flags.parse(config, ["--workdir", "w", "--cpu"], description="")


def test_an_explicit_none_overrides_a_set_value():
    """``--max_train_pairs none`` on top of ``cpu()`` (10,000 pairs) means all pairs: a flag
    given as ``none`` is a value, not the absence of the flag."""
    from experiments.translation import config as translation

    assert translation.cpu().max_train_pairs == 10_000
    cfg, _ = flags.parse(translation, ["--workdir", "w", "--cpu", "--max_train_pairs", "none"],
                         description="")
    assert cfg.max_train_pairs is None
    kept, _ = flags.parse(translation, ["--workdir", "w", "--cpu"], description="")
    assert kept == translation.cpu()

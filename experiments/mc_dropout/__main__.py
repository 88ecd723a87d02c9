"""MC-dropout uncertainty vs deterministic inference on MNIST-1D (the main job).

    python -m experiments.mc_dropout --workdir /tmp/mc_dropout          # ~5 min
    python -m experiments.mc_dropout --workdir /tmp/mc_smoke --smoke    # < 60 s

Every field of ``experiments/mc_dropout/config.py`` is a flag (``--num_epochs 3``).
"""

from experiments import flags
from experiments.mc_dropout import config, train


def main(argv=None) -> dict:
    cfg, workdir = flags.parse(config, argv, description=__doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()

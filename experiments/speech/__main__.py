"""Speech on spoken digits: isolated (official split, leave-one-speaker-out), connected
(CTC), MC-dropout uncertainty.

    python -m experiments.speech --workdir /tmp/speech           # the issue's run
    python -m experiments.speech --workdir /tmp/speech --smoke   # seconds

Every field of ``experiments/speech/config.py`` is a flag (``--epochs 3``).
"""

from experiments import flags
from experiments.speech import config, train


def main(argv=None) -> dict:
    cfg, workdir = flags.parse(config, argv, description=__doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()

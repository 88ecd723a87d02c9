"""Drop-rate sweeps on Fashion-MNIST (Srivastava et al. 2014, Figure 9).

    python -m experiments.dropout_rate --workdir /tmp/rate          # issue's run
    python -m experiments.dropout_rate --workdir /tmp/rate --cpu    # reduced run
    python -m experiments.dropout_rate --workdir /tmp/rate --smoke  # seconds

Every field of ``experiments/dropout_rate/config.py`` is a flag (``--num_epochs 3``).
"""

from experiments._images import parse_flags
from experiments.dropout_rate import config, train


def main(argv=None) -> dict:
    cfg, workdir = parse_flags(config, argv, __doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()

"""Dropout vs other regularizers on Fashion-MNIST (Srivastava et al. 2014, Table 9).

    python -m experiments.regularizers --workdir /tmp/reg          # issue's run (~75 min)
    python -m experiments.regularizers --workdir /tmp/reg --cpu    # reduced run (~15 min)
    python -m experiments.regularizers --workdir /tmp/reg --smoke  # seconds

Every field of ``experiments/regularizers/config.py`` is a flag (``--num_epochs 3``).
"""

from experiments._images import parse_flags
from experiments.regularizers import config, train


def main(argv=None) -> dict:
    cfg, workdir = parse_flags(config, argv, __doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()

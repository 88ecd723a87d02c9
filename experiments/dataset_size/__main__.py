"""Dropout vs no dropout at training-set sizes 500 .. 60,000 (Srivastava et al. 2014, Fig. 10).

    python -m experiments.dataset_size --workdir /tmp/size          # issue's run
    python -m experiments.dataset_size --workdir /tmp/size --cpu    # reduced run
    python -m experiments.dataset_size --workdir /tmp/size --smoke  # seconds

Every field of ``experiments/dataset_size/config.py`` is a flag (``--num_steps 300``).
"""

from experiments._images import parse_flags
from experiments.dataset_size import config, train


def main(argv=None) -> dict:
    cfg, workdir = parse_flags(config, argv, __doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()

"""MC averaging vs weight scaling at test time on Fashion-MNIST (Srivastava et al. 2014, Fig. 11).

    python -m experiments.test_time_rule --workdir /tmp/ttr          # issue's run
    python -m experiments.test_time_rule --workdir /tmp/ttr --cpu    # reduced run
    python -m experiments.test_time_rule --workdir /tmp/ttr --smoke  # seconds

Every field of ``experiments/test_time_rule/config.py`` is a flag (``--num_samples 50``).
"""

from experiments._images import parse_flags
from experiments.test_time_rule import config, train


def main(argv=None) -> dict:
    cfg, workdir = parse_flags(config, argv, __doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()

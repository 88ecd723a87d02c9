"""Experiment configurations: one dataclass per experiment, every field commented."""

"""Flax NNX layers and models built on the pure jdrop functions."""

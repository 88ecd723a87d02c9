"""Runnable experiments and benchmarks for jdrop (``python -m experiments.<name>``)."""

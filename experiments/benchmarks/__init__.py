"""Side-by-side benchmarks: medians and ratios measured in one run (never timed tests)."""

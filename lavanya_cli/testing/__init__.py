"""Builders of voice trees for tests and benchmarks (random weights, real layout); not used at run time."""

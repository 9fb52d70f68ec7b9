"""Baselines the benchmark compares the product with."""

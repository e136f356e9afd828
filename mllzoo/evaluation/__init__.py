"""Evaluation: the benchmark against the baselines, and a model's card."""

"""Reuse: the zero-shot ensemble of the selected models, and predict's image handling."""

"""The offline concept world: renders of WordNet concepts from openly licensed sources (see build.py)."""

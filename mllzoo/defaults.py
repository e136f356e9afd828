"""Defaults that both the library and the command line's ``--help`` use, in a module that imports
nothing, so ``mllzoo --help`` stays light and the two cannot drift apart."""

CHUNK = 1024  # images per saved, resumable unit of labeling work

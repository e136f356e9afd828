"""The ``mllzoo`` command line: a thin click layer, one module per command group."""

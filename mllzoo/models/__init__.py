"""Models and their families: ids, metadata, load/encode through the hooks, the catalogues."""

"""The SQLite side: the registry, label blocks, label files, the user's caches and settings.

The only package that opens SQLite."""

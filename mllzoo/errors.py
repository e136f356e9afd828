"""Errors a user can fix. The CLI prints them as one line and exits with status 2."""


class MllzooError(Exception):
    """A problem with the user's input or environment, not a bug: shown without a traceback."""


class ModelLoadError(MllzooError):
    """A model's weights or code could not be loaded (missing checkpoint, offline hub, ...)."""

"""Errors a user can fix. The CLI prints them as one line and exits with status 2."""


class MllzooError(Exception):
    """A problem with the user's input or environment, not a bug: shown without a traceback."""


class ModelLoadError(MllzooError):
    """A model's weights or code could not be loaded (missing checkpoint, offline hub, ...)."""


class PluginError(MllzooError):
    """A plugin raised or answered wrongly for one model: one line naming the plugin and the model."""


class InvalidLabel(MllzooError):
    """An assembled label is inconsistent with itself or its graph, so it must not be published."""


class DamagedLabelError(MllzooError):
    """A stored label that cannot be used (a blob failing its checksum, an unknown format): relabel it."""

    def __init__(self, model_id: str, problem: str):
        self.model_id = model_id
        super().__init__(f"the label of {model_id} {problem}: repair it with `mllzoo labels remove {model_id}` "
                         f"then `mllzoo register {model_id}`")

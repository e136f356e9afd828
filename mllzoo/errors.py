"""Errors a user can fix (the CLI prints them as one line and exits with status 2), and warnings."""

from __future__ import annotations

import difflib
from collections.abc import Callable


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
        super().__init__(
            f"the label of {model_id} {problem}: repair it with `mllzoo labels remove {model_id}` "
            f"then `mllzoo register {model_id}`"
        )


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler ending a job) received: ends a run as Ctrl-C does, and the CLI
    exits with 143 (128 + SIGTERM) instead of 130."""


# One path for the library's warnings and notes: something went wrong but the command goes on (a plugin
# that failed, a damaged cache, a skipped file), or something the user should know about the answer.
# Library code calls warn() or note(); the default prints "Warning: ..." or "Note: ..." on stderr, as the
# CLI shows it; a caller (a test, an application embedding mllzoo) may route them elsewhere.
WarningHandler = Callable[[str, str], None]  # (message, kind): kind is "Warning" or "Note"


def _print_warning(message: str, kind: str) -> None:
    import sys

    print(f"{kind}: {message}", file=sys.stderr)


_warning_handler: WarningHandler = _print_warning


def warn(message: str, kind: str = "Warning") -> None:
    """Report ``message`` (one line, without the "Warning: " prefix) through the current handler."""
    _warning_handler(" ".join(message.split()), kind)


def note(message: str) -> None:
    """Tell the user something about the answer that is not a fault, through the warning path."""
    warn(message, kind="Note")


def set_warning_handler(handler: WarningHandler | None) -> WarningHandler:
    """Route warnings to ``handler`` (``None``: back to stderr); returns the previous handler."""
    global _warning_handler
    previous, _warning_handler = _warning_handler, handler or _print_warning
    return previous


def did_you_mean(name: str, known: list[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``known`` (model ids, synsets), or nothing."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""

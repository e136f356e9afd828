"""Text the user reads, shared by the command line and the web pages so the two never differ."""

from __future__ import annotations

import json
from typing import Any


def json_text(data: Any) -> str:
    """The text ``mllzoo ... --json`` prints for ``data``, newline included (the web's JSON twins too)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

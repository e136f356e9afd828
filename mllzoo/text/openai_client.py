"""The OpenAI client that the OpenAI embedder and the OpenAI captioner share.

``OPENAI_BASE_URL`` points it elsewhere (a proxy, a compatible server, the tests' local one). The
``openai`` package is imported on first use, so nothing reaches the network at import time.
"""

from __future__ import annotations

import os

from mllzoo.errors import MllzooError
from mllzoo.extras import require


def check_ready(purpose: str) -> None:
    """One :class:`MllzooError` line when ``purpose`` cannot call OpenAI: no package or no key."""
    require("openai", "openai", purpose)
    if not os.environ.get("OPENAI_API_KEY"):
        raise MllzooError(f"{purpose} needs OPENAI_API_KEY")


def client():
    """An ``openai.OpenAI`` client from the environment."""
    check_ready("OpenAI")
    from openai import OpenAI

    return OpenAI()

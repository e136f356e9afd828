"""Which Hugging Face checkpoints the plugin offers: a curated catalogue plus the user's own, no torch.

Ids read ``hf/ORG--NAME.REVISION`` (``hf/openai--clip-vit-base-patch32.main``): the repository id with
``/`` written ``--`` as in the Hugging Face cache, and the revision as the tag; any character the id
grammar does not allow (a dot, as in ``Qwen2.5``) becomes ``_``
(the exact repository stays in ``extra``). Users add models with
``MLLZOO_HF_MODELS``: comma-separated ``hf:org/name[@revision]`` ids or local folders saved with
``save_pretrained`` (a folder becomes ``hf/local--FOLDERNAME.local``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mllzoo import ModelSpec

FAMILY = "hf"
MODELS_ENV = "MLLZOO_HF_MODELS"
UNKNOWN_LICENCE = "unknown"  # a model the user names: only its publisher knows its licence


def hub_spec(
    repo: str, revision: str = "main", extra: dict[str, Any] | None = None, **metadata: Any
) -> ModelSpec:
    """The spec of a Hub repository at a revision; the revision is kept verbatim in ``extra``."""
    source = f"hf-hub:{repo}" + ("" if revision == "main" else f"@{revision}")
    metadata.setdefault("license", UNKNOWN_LICENCE)
    return ModelSpec(
        family=FAMILY,
        arch=_id_part(repo.replace("/", "--")),
        tag=_id_part(revision),
        source=source,
        extra={"repo": repo, "revision": revision, **(extra or {})},
        **metadata,
    )


def folder_spec(folder: Path) -> ModelSpec:
    """The spec of a local ``save_pretrained`` folder (model and processor)."""
    path = str(folder.expanduser().resolve())
    return ModelSpec(
        family=FAMILY,
        arch="local--" + _id_part(Path(path).name),
        tag="local",
        source=path,
        license=UNKNOWN_LICENCE,
        extra={"checkpoint": path},
    )


def user_specs() -> list[ModelSpec]:
    """The models named in ``MLLZOO_HF_MODELS``."""
    specs = []
    for entry in filter(None, (part.strip() for part in os.environ.get(MODELS_ENV, "").split(","))):
        if entry.startswith("hf:"):
            repo, _, revision = entry[3:].partition("@")
            specs.append(hub_spec(repo, revision or "main"))
        else:
            specs.append(folder_spec(Path(entry)))
    return specs


def _id_part(name: str) -> str:
    """``name`` in the id grammar (letters, digits, ``_``, ``-``): a dot or any other character becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)

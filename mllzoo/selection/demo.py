"""Whether a registry's labels come from demo models only, and the one line that says so.

The shipped registry labels the minizoo: small models trained on a synthetic emoji world, there so
that ``recommend`` answers offline in seconds. Its picks show how mllzoo works, not which real model
to use, and every answer built only on such labels says so (text, ``--json`` and the web pages).
A plugin marks its own demo models with ``"demo": true`` in a spec's ``extra`` metadata.
"""

from __future__ import annotations

DEMO_FAMILIES = frozenset({"minizoo"})


def is_demo_model(model_id: str, metadata: dict) -> bool:
    """Is this a demo model: of a demo family, or flagged ``demo`` by its plugin?"""
    extra = metadata.get("extra") or {}
    return model_id.split("/", 1)[0] in DEMO_FAMILIES or extra.get("demo") is True


def demo_notice(model_ids: list[str], metadata: dict[str, dict]) -> str | None:
    """One line when every labeled model is a demo model (what the answer is, how to get real labels)."""
    if not model_ids or not all(is_demo_model(m, metadata.get(m) or {}) for m in model_ids):
        return None
    return (
        "Demo registry: all its labels are of minizoo demo models (tiny, trained on a synthetic emoji "
        "world), so the picks show how mllzoo works, not real advice. For real labels: pull "
        "published ones (mllzoo labels pull URL), or install a model plugin (in a clone: mllzoo "
        "install -e plugins/mllzoo-plugin-openclip) and run mllzoo register."
    )

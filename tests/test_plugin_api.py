"""The declared plugin API: plugins (ours and the CONTRIBUTING template) import only ``mllzoo`` and
``mllzoo.testing``, every name they take from ``mllzoo`` is declared in ``mllzoo.__all__`` and listed in
docs/plugins.md, and ``import mllzoo`` stays torch-free."""

from __future__ import annotations

import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mllzoo

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {"mllzoo", "mllzoo.testing"}
SUBMODULES = {info.name for info in pkgutil.iter_modules(mllzoo.__path__)}


def outside_api(source: str) -> list[str]:
    """Each import in ``source`` that reaches past the plugin API, as "line N: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith("mllzoo.") and a.name not in ALLOWED
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("mllzoo.") and node.module not in ALLOWED:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            elif node.module == "mllzoo":
                found += [
                    f"line {node.lineno}: from mllzoo import {a.name}"
                    for a in node.names
                    if a.name != "testing"
                    and (a.name in SUBMODULES or a.name not in mllzoo.__all__)
                ]
    return found


def template_blocks() -> list[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## Write your own plugin", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


PLUGIN_FILES = sorted((ROOT / "plugins").rglob("*.py"))


def test_the_checker_catches_each_way_past_the_api():
    assert outside_api("from mllzoo.models.vlm import ModelSpec") and outside_api(
        "import mllzoo.models.catalog"
    )
    assert outside_api("from mllzoo import vlm") and outside_api(
        "def f():\n    from mllzoo import not_a_name\n"
    )
    assert not outside_api(
        "from mllzoo import ModelSpec, hookimpl\nfrom mllzoo.testing import check_plugin\n"
        "import mllzoo\nfrom mllzoo import testing\nfrom .catalog import x\n"
    )


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT / "plugins")))
def test_plugins_use_only_the_plugin_api(path):
    assert PLUGIN_FILES, "no plugin sources found"
    assert outside_api(path.read_text(encoding="utf-8")) == []


def test_the_contributing_template_uses_only_the_plugin_api():
    blocks = template_blocks()
    assert len(blocks) >= 3  # __init__.py, model.py, the conformance test
    assert [outside_api(block) for block in blocks] == [[] for _ in blocks]


def test_every_declared_name_resolves_and_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = docs.split("## The plugin API", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([A-Za-z_]+)", section, re.M))
    assert listed == set(mllzoo.__all__)
    for name in mllzoo.__all__:
        assert getattr(mllzoo, name) is not None


def test_the_lazy_names_stay_what_they_name_after_their_modules_load():
    import importlib
    import inspect

    importlib.import_module(
        "mllzoo.selection.recommend"
    )  # as any internal `from .recommend import ...` does
    assert (
        inspect.isfunction(mllzoo.recommend) and mllzoo.recommend is mllzoo.recommend
    )  # twice, same
    assert inspect.isclass(mllzoo.Registry) and callable(mllzoo.minilm_embed)


def test_plugins_require_the_release_that_declares_the_api():
    from importlib.metadata import version

    for pyproject in (ROOT / "plugins").glob("*/pyproject.toml"):
        assert '"mllzoo>=0.2.0"' in pyproject.read_text(encoding="utf-8"), pyproject
    assert version("mllzoo") == "0.2.0" and (ROOT / "mllzoo" / "py.typed").is_file()


def test_import_mllzoo_pulls_in_no_torch_or_numpy():
    code = "import sys, mllzoo; print(sorted(m for m in ('torch', 'numpy', 'sqlite_utils') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_0_1_family_module_still_works_and_says_it_is_deprecated():
    import importlib
    import sys

    sys.modules.pop("mllzoo.family", None)
    with pytest.warns(
        DeprecationWarning, match="import family_hooks and family_available from mllzoo"
    ):
        old = importlib.import_module("mllzoo.family")
    assert (
        old.family_hooks is mllzoo.family_hooks and old.family_available is mllzoo.family_available
    )

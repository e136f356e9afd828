"""docs/ holds the design and the plugin contract, and stays true to the code (datasette's habit)."""

from __future__ import annotations

import inspect
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

PLUGINS_DOC = ROOT / "docs" / "plugins.md"
DESIGN_DOC = ROOT / "docs" / "design.md"
HOOK_HEADING = re.compile(r"^## `(mllzoo_\w+)\((.*)\)`$", re.M)


def hookspecs() -> dict[str, str]:
    """Every hook specification in mllzoo/hookspecs.py, as ``name -> "arg1, arg2"``."""
    from mllzoo import hookspecs as module

    return {
        name: ", ".join(inspect.signature(function).parameters)
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("mllzoo_") and hasattr(function, "mllzoo_spec")
    }


def test_every_hook_is_documented_with_its_signature():
    documented = dict(HOOK_HEADING.findall(PLUGINS_DOC.read_text()))
    specs = hookspecs()
    assert specs, "no hook specifications found"
    missing = [f"{name}({args})" for name, args in specs.items() if documented.get(name) != args]
    assert not missing, (
        f"add a '## `hook(args)`' section to docs/plugins.md for: {', '.join(missing)}"
    )
    stale = sorted(set(documented) - set(specs))
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {', '.join(stale)}"


def schema_sections() -> dict[str, str]:
    text = DESIGN_DOC.read_text().split("## Registry schema", 1)[1]
    parts = re.split(r"^### `(\w+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_registry_table_and_column_is_documented(tmp_path):
    from mllzoo.store.registry import Registry

    registry = Registry(tmp_path / "r.db")
    tables = {
        table.name: [column.name for column in table.columns]
        for table in registry.db.tables
        if not table.name.startswith("_")
    }
    registry.close()
    sections = schema_sections()
    assert sorted(sections) == sorted(tables), (
        "docs/design.md's registry schema lists other tables than the migrations make"
    )
    for table, columns in tables.items():
        undocumented = [c for c in columns if f"`{c}`" not in sections[table]]
        assert not undocumented, (
            f"docs/design.md, table {table}: document column(s) {', '.join(undocumented)}"
        )


def exactness_table(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| list depth |"))
    return lines[start : next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))]


def test_the_exactness_table_matches_the_benchmarks_page():
    assert exactness_table(DESIGN_DOC.read_text()) == exactness_table(
        (ROOT / "docs" / "benchmarks.md").read_text()
    )


@pytest.mark.parametrize("needle", ["DESIGN" + ".md", "../" + "shared"])
def test_nothing_cites_files_outside_the_repository(needle):
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    texts = [
        p
        for p in tracked
        if p.endswith((".py", ".md", ".toml", ".txt", ".cfg", ".sh")) or p == "Makefile"
    ]
    citing = [
        p for p in texts if needle in (ROOT / p).read_text(encoding="utf-8", errors="replace")
    ]
    assert not citing, f"{needle} is cited by {', '.join(citing)}"


CITED_PATH = re.compile(
    r"(?<![\w/.-])((?:mllzoo|tests|benchmarks|plugins|docs|examples)/[\w./-]*[\w-]\.(?:py|md|txt|json|html|png|toml))"
)


def cited_paths(text: str) -> set[str]:
    return set(CITED_PATH.findall(text))


def test_the_path_check_sees_a_cited_path():
    assert cited_paths("see `mllzoo/store/registry.py` and tests/test_x.py.") == {
        "mllzoo/store/registry.py",
        "tests/test_x.py",
    }


def test_every_path_the_docs_and_docstrings_cite_exists():
    """A file moved or renamed leaves no stale citation behind (CHANGELOG.md keeps history as it was)."""
    sources = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]
    sources += [*(ROOT / "plugins").glob("*/README.md"), *(ROOT / "mllzoo").rglob("*.py")]
    sources += [
        *(ROOT / "benchmarks").glob("*.py"),
        *(ROOT / "tests").glob("*.py"),
        ROOT / "Makefile",
    ]
    sources.remove(Path(__file__).resolve())  # its own examples above

    def exists(source: Path, path: str) -> bool:  # a plugin's README cites from its own folder too
        return (ROOT / path).exists() or (
            source.name == "README.md" and (source.parent / path).exists()
        )

    missing = {
        f"{source.relative_to(ROOT)}: {path}"
        for source in sources
        for path in cited_paths(source.read_text(encoding="utf-8"))
        if not exists(source, path)
    }
    assert sorted(missing) == []

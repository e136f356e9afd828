"""One warning path: library code calls mllzoo.errors.warn, never print, and the CLI shows "Warning: ..."."""

from __future__ import annotations

import ast
from pathlib import Path

from mllzoo.errors import set_warning_handler, warn

PACKAGE = Path(__file__).resolve().parent.parent / "mllzoo"
RENDERERS = {
    "errors.py",
    "cli/main.py",
}  # the default handler and the CLI's: they print what warn() was given


def test_warn_goes_to_the_handler_as_one_line_and_defaults_to_stderr(capsys):
    seen: list[str] = []
    previous = set_warning_handler(lambda message, kind: seen.append(message))
    try:
        warn("a damaged cache\n  was set aside")
    finally:
        set_warning_handler(previous)
    assert seen == ["a damaged cache was set aside"]
    warn("plain")
    assert capsys.readouterr().err == "Warning: plain\n"


def direct_warnings(path: Path) -> list[int]:
    """Lines where ``path`` prints a "Warning: ..." itself instead of calling warn()."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(
            node.func, "id", getattr(node.func, "attr", "")
        ) in ("print", "echo"):
            first = node.args[0] if node.args else None
            text = ast.unparse(first) if first is not None else ""
            if text.lstrip("f'\"").startswith(("Warning", "Note")):
                lines.append(node.lineno)
    return lines


def test_the_library_warns_only_through_warn():
    files = {p.relative_to(PACKAGE).as_posix(): p for p in PACKAGE.rglob("*.py")}
    found = {name: direct_warnings(p) for name, p in files.items() if name not in RENDERERS}
    assert {name: lines for name, lines in found.items() if lines} == {}

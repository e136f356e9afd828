"""The README's example output is what ``make demo`` prints today; the README stays short, and what it
links to exists."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # mllzoo CLI subprocesses: `make test-fast` leaves this module out


def demo_command() -> list[str]:
    """The ``demo`` recipe of the Makefile, with ``$(VENV)/bin/mllzoo`` as written in the README."""
    recipe = re.search(r"^demo:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)[1]
    return shlex.split(recipe.replace("$(VENV)", ".venv"))


def readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Example output of `make demo`.*?\n```\n(.*?)```", text, re.S)[1]
    return block.rstrip("\n").split("\n")


def test_readme_example_is_the_demo_output():
    command, *shown = readme_block()
    assert shlex.split(command) == demo_command()
    args = demo_command()[1:]  # `.venv/bin/mllzoo` is this interpreter's `-m mllzoo`
    printed = subprocess.run(
        [sys.executable, "-m", "mllzoo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert printed.returncode == 0, printed.stderr
    output = printed.stdout.rstrip("\n").split("\n")
    assert shown[0] == output[0] and shown[-1] == output[-1], printed.stdout
    at = 0
    for line in (
        shown
    ):  # shown lines in order; "..." stands for lines left out, none are left out elsewhere
        if line == "...":
            at += 1
            continue
        found = output.index(line, at) if line in output[at:] else -1
        assert found >= 0, (
            f"README line not printed by `make demo`: {line!r}\nit prints:\n{printed.stdout}"
        )
        assert found == at or shown[shown.index(line) - 1] == "...", (
            f"lines left out before {line!r} without '...'"
        )
        at = found + 1


def test_the_readme_is_short_and_its_links_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 20_500, "the README is a newcomer's page: details go to docs/"
    linked = set(re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text))
    assert {"docs/usage.md", "docs/benchmarks.md", "docs/reliability.md", "docs/scale.md"} <= linked
    missing = [path for path in linked if not (ROOT / path).exists()]
    assert not missing, missing
    guides = text[text.index("## Guides") :]
    assert all(
        f"({path})" in guides
        for path in linked
        if path.startswith("docs/") and path.endswith(".md")
    )


def test_the_readme_names_the_two_commands_and_the_english_only_embedder():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Two commands\n\n```bash\n(.*?)```", text, re.S)[1]
    assert [line.split()[:2] for line in block.strip().splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]
    assert "English only" in text

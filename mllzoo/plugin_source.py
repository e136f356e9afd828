"""Where a plugin installs from: a clone's ``plugins/`` folder when there is one, else the package index.

The repository's plugins are not published on PyPI yet, so ``mllzoo install mllzoo-plugin-eva`` fails
from a clone; every hint the CLI prints names the command that works where the user is.
"""

from __future__ import annotations

from pathlib import Path

from mllzoo.plugins import is_distribution_name


def local_plugin_folder(plugin: str) -> Path | None:
    """The ``plugins/PLUGIN`` folder of this clone (the working directory's, or the one mllzoo runs
    from), shown relative to the working directory when it lies under it; ``None`` outside a clone."""
    import mllzoo

    cwd = Path.cwd()
    for root in (cwd, Path(mllzoo.__file__).resolve().parent.parent):
        folder = root / "plugins" / plugin
        if (folder / "pyproject.toml").is_file():
            try:
                return folder.relative_to(cwd)
            except ValueError:
                return folder
    return None


def install_command(plugins: list[str | None]) -> str:
    """``mllzoo install ...`` for these plugins: ``-e plugins/NAME`` for each one this clone holds, the
    package name for the rest. A recorded name that is not a distribution name (free text from a label
    file or an edited registry) is shown quoted, never inside a command; a missing one as unknown."""
    commands, by_name, other = [], [], []
    for plugin in dict.fromkeys(plugins):
        if plugin is None:
            continue
        if not is_distribution_name(plugin):
            other.append(repr(plugin))
        elif (folder := local_plugin_folder(plugin)) is not None:
            commands.append(f"mllzoo install -e {folder.as_posix()}")
        else:
            by_name.append(plugin)
    if by_name:
        commands.append(f"mllzoo install {' '.join(by_name)}")
    if other:
        commands.append(
            f"a plugin recorded as {', '.join(sorted(other))} (not a distribution name, so no command to run)"
        )
    if None in plugins:
        commands.append("(unknown plugin)")
    return "; ".join(commands)


def not_on_index(pip_stderr: str) -> str | None:
    """The requirement pip found no distribution for on the index (not a network or build failure)."""
    import re

    found = re.search(r"No matching distribution found for (\S+)", pip_stderr)
    return found.group(1) if found else None


def not_on_index_message(requirement: str) -> str:
    """One line for ``mllzoo install NAME`` when the index has no NAME: the local folder if any."""
    import re

    folder = local_plugin_folder(re.split(r"[<>=!~\[;@ ]", requirement, maxsplit=1)[0])
    where = (
        f"; this clone has it: mllzoo install -e {folder.as_posix()}"
        if folder is not None
        else "; mllzoo's own plugins install from a clone: mllzoo install -e plugins/NAME"
    )
    return f"no package {requirement} on the package index (mllzoo's plugins are not published yet){where}"

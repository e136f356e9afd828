"""The ``mllzoo`` command line: a thin click layer over the library.

Heavy modules (torch, the selection and labeling code) are imported inside the commands, so
``mllzoo --help`` and plugin discovery stay fast and never import torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mllzoo.cli.bench import bench
from mllzoo.cli.concepts import concepts
from mllzoo.cli.config import config_group
from mllzoo.cli.graph import graph
from mllzoo.cli.labels import labels as labels_group
from mllzoo.cli.models import models
from mllzoo.cli.plugins import install, plugins, uninstall
from mllzoo.cli.predict import predict
from mllzoo.cli.recommend import recommend_command
from mllzoo.cli.register import register
from mllzoo.cli.serve import serve
from mllzoo.errors import MllzooError, Terminated, set_warning_handler, warn
from mllzoo.plugins import call_each

GLOBAL_OPTIONS = ("--registry",)  # accepted after the subcommand too: moved before it
GLOBAL_FLAGS = ("-v", "--verbose")


def hoist_global_options(args: list[str]) -> list[str]:
    """``mllzoo recommend c.txt --registry r.db`` as ``mllzoo --registry r.db recommend c.txt`` (up to a ``--``)."""
    moved, rest, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in GLOBAL_OPTIONS and i + 1 < len(args):
            moved += args[i : i + 2]
            i += 2
            continue
        if arg in GLOBAL_FLAGS or (arg.split("=", 1)[0] in GLOBAL_OPTIONS and "=" in arg):
            moved.append(arg)
        else:
            rest.append(arg)
        i += 1
    return moved + rest


class MllzooGroup(click.Group):
    """Turns user errors into one line on stderr and exit status 2, never a traceback.

    Exit codes follow one rule: 0 done; 1 the command ran but some of its work failed (a model that
    could not be labeled, sample images missing in ``graph check``); 2 the command could not run as asked
    (a mistake in it or its input, a missing, damaged or read-only file): nothing was changed; 130
    interrupted (Ctrl-C); 143 terminated (SIGTERM, where a command handles it: ``register``).
    """

    def main(self, args: Any = None, *rest: Any, **options: Any) -> Any:
        arguments = list(sys.argv[1:] if args is None else args)
        return super().main(hoist_global_options(arguments), *rest, **options)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MllzooError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except Terminated:
            click.echo("Terminated.", err=True)
            sys.exit(143)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=MllzooGroup)
@click.version_option(package_name="mllzoo")
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(path_type=Path),
    envvar="MLLZOO_REGISTRY",
    help="Registry file [default: ./registry.db if present, else the "
    "user data dir's copy of the shipped registry].",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Say which registry file is in use (on stderr)."
)
@click.pass_context
def cli(ctx: click.Context, registry_path: Path | None, verbose: bool) -> None:
    """mllzoo: pick and combine pre-trained vision-language models for your classes.

    \b
    mllzoo recommend classes.txt      which models to use for these classes
    mllzoo predict images/ --classes classes.txt
    mllzoo register                   label newly installed models
    mllzoo labels export ID -o FILE   move labels between registries
    """
    ctx.obj = {"registry_path": registry_path, "verbose": verbose}


for command in (
    plugins,
    models,
    install,
    uninstall,
    graph,
    register,
    recommend_command,
    concepts,
    predict,
    bench,
    serve,
):
    cli.add_command(command)
cli.add_command(labels_group)
cli.add_command(config_group)


def add_plugin_commands() -> None:
    """Plugins' commands, each plugin on its own; one may add commands but never replace the core's,
    so ``--help`` and ``uninstall`` always work."""
    core = dict(cli.commands)
    call_each("mllzoo_register_commands", "register commands", lambda plugin: {"cli": cli})
    for name, command in core.items():
        if cli.commands.get(name) is not command:
            warn(f"a plugin replaced the core command {name!r}; the core's is kept")
            cli.add_command(command, name)


add_plugin_commands()


def main() -> None:
    set_warning_handler(lambda message, kind: click.echo(f"{kind}: {message}", err=True))
    cli()

"""Each default ``--help`` shows is the library's own: the CLI and the functions it calls read one value."""

from __future__ import annotations

import inspect

import click

from mllzoo import defaults
from mllzoo.cli.main import cli
from mllzoo.evaluation.bench import run_bench
from mllzoo.graph.concept_graph import build_graph
from mllzoo.labeling.compute import LocalExecutor
from mllzoo.labeling.driver import label_models
from mllzoo.labeling.index import pull
from mllzoo.labeling.ray_executor import RayExecutor
from mllzoo.selection.recommend import Recommendation, recommend
from mllzoo.text.concept_search import find_concepts


def default_of(function, parameter: str):
    return inspect.signature(function).parameters[parameter].default


# command path, option -> the library default it must show; every shown default is listed here
LIBRARY = {
    ("graph build", "max_per_node"): default_of(build_graph, "max_per_node"),
    ("graph build", "seed"): default_of(build_graph, "seed"),
    ("register", "device"): default_of(label_models, "device"),
    ("register", "chunk_size"): default_of(label_models, "chunk"),
    ("register", "depth"): "auto",  # the library's None, written as the CLI spells it
    ("register", "allow_missing"): default_of(label_models, "allow_missing"),
    ("register", "decode_workers"): default_of(LocalExecutor.__init__, "decode_workers"),
    ("register", "executor"): "local",  # a CLI choice: the library takes an executor object
    ("register", "cpus_per_task"): default_of(RayExecutor.__init__, "cpus_per_task"),
    ("register", "shard_size"): default_of(RayExecutor.__init__, "shard_images"),
    ("recommend", "k"): default_of(recommend, "k"),
    ("recommend", "alpha"): default_of(recommend, "alpha"),
    ("recommend", "max_models"): default_of(recommend, "max_models"),
    ("predict", "k"): default_of(recommend, "k"),
    ("predict", "max_models"): default_of(recommend, "max_models"),
    ("predict", "alpha"): default_of(recommend, "alpha"),
    ("predict", "device"): default_of(Recommendation.ensemble, "device"),
    ("predict", "batch_size"): default_of(Recommendation.ensemble, "batch_size"),
    ("predict", "reuse"): default_of(Recommendation.ensemble, "reuse"),
    ("bench", "orders"): default_of(run_bench, "orders"),
    ("bench", "k"): default_of(run_bench, "k"),
    ("bench", "max_models"): default_of(run_bench, "max_models"),
    ("bench", "device"): default_of(run_bench, "device"),
    ("bench", "batch_size"): default_of(run_bench, "batch_size"),
    ("concepts", "limit"): default_of(find_concepts, "limit"),
    ("bench", "reuse"): default_of(run_bench, "reuse"),
    ("serve", "host"): defaults.HOST,
    ("serve", "port"): defaults.PORT,
    ("labels pull", "timeout"): default_of(pull, "timeout"),
}


def shown_defaults(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            yield from shown_defaults(command, path)
        for param in command.params:
            if isinstance(param, click.Option) and param.show_default:
                yield (path, param.name), param.default


def test_every_default_the_cli_shows_is_the_librarys():
    shown = dict(shown_defaults(cli))
    assert set(shown) == set(LIBRARY), "a shown default without its library value, or the reverse"
    assert {key: value for key, value in shown.items() if value != LIBRARY[key]} == {}


def test_the_defaults_module_imports_nothing():
    source = inspect.getsource(defaults)
    assert "import " not in source

"""Hook specifications: the contract between the mllzoo core and its plugins.

A plugin is a module with functions marked ``@mllzoo.hookimpl`` named like the specs below, exposed
through an entry point in the ``mllzoo`` group. Plugin modules must not import torch at import time:
the CLI imports every plugin to build ``--help``; import heavy libraries inside the hook bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:  # types only: importing the hooks stays free of numpy, torch and click
    import click
    import numpy as np

    from mllzoo.models.vlm import LoadedModel, ModelSpec
    from mllzoo.text.embedders import Embedder

hookspec = HookspecMarker("mllzoo")
hookimpl = HookimplMarker("mllzoo")


@hookspec
def mllzoo_register_models(register: Callable[[ModelSpec], None]) -> None:
    """Offer models by calling ``register(spec)`` once per :class:`mllzoo.ModelSpec`.

    Only metadata is registered here, so this must be cheap: no torch, no downloads. Plugins
    register in load order; an id another plugin registered first stays with that plugin (one
    warning names both).
    """


@hookspec(firstresult=True)
def mllzoo_load_model(spec: ModelSpec, device: str, dtype: str) -> LoadedModel | None:
    """Load ``spec`` on ``device`` in ``dtype`` and return a :class:`mllzoo.LoadedModel`.

    Return ``None`` for models of another family, so the plugin that owns the model answers (the
    plugin that registered the id is asked first). Raise :class:`mllzoo.ModelLoadError` with
    one line naming the model and where its weights would come from when they are not available;
    anything else raised here is reported as this plugin's fault, in one line, never a traceback.
    """


@hookspec(firstresult=True)
def mllzoo_encode_images(model: LoadedModel, images: Any) -> np.ndarray | None:
    """Encode a batch of preprocessed images for a :class:`~mllzoo.LoadedModel`.

    ``images`` is a float tensor ``[n, 3, H, W]`` made by ``model.preprocess``, ``n`` at most
    :data:`mllzoo.HOOK_BATCH` (the core batches). Return a numpy float array ``[n, dim]``, or
    ``None`` for models of another family. The core checks the answer (a numpy array, not a tensor
    or list; floats; that shape, one ``dim`` throughout; finite; nonzero) and L2-normalises it, so
    plugins need not; a model whose answer fails is reported and not used.
    """


@hookspec(firstresult=True)
def mllzoo_encode_texts(model: LoadedModel, texts: list[str]) -> np.ndarray | None:
    """Encode a batch of at most :data:`mllzoo.HOOK_BATCH` texts with the model's text tower.

    Return a numpy float array ``[n, dim]`` comparable with the image features, or ``None`` for
    models of another family; checked and L2-normalised by the core as for images.
    """


@hookspec
def mllzoo_register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``mllzoo`` command line (``cli.add_command``).

    A plugin may add commands but not replace the core's; one that raises here is one warning line.
    """


@hookspec
def mllzoo_register_embedders(register: Callable[[Embedder], None]) -> None:
    """Offer text embedders for model selection by calling ``register(embedder)``.

    An embedder is a :class:`mllzoo.Embedder`: an ``id`` and ``embed(texts) -> ndarray``.
    """


@hookspec(firstresult=True)
def mllzoo_model_available(spec: ModelSpec) -> bool | None:
    """Whether ``spec``'s weights are on this machine (shipped with the plugin or already cached), so
    loading it starts no download. ``None`` for models of another family.

    ``mllzoo register`` with no ids labels only the models for which this is true. It must be quick
    and must not touch the network. When no plugin answers, a model counts as available only if its
    ``source`` is an existing local path.
    """


@hookspec
def mllzoo_label_files() -> Sequence[str | Path | Any] | None:
    """Paths of label files the plugin ships (``mllzoo labels export`` output kept as package data).

    ``mllzoo register`` imports a shipped label made on the registry's graph instead of running the
    model. Return a list of paths (``str``, ``Path`` or ``importlib.resources`` files); only the
    manifest of each is read until one is needed.
    """


@hookspec(firstresult=True)
def mllzoo_describe_model(model_id: str, checkpoint: str, config: str | None) -> ModelSpec | None:
    """Check a user's checkpoint of this plugin's family and describe it as a :class:`mllzoo.ModelSpec`
    (``mllzoo models add ID --checkpoint PATH [--config FILE]``); ``None`` for another family's id.

    ``checkpoint`` is the path the user gave (a weights file, or a folder in the family's own layout);
    ``config`` the architecture file, if given. Load the weights on the CPU, safely (safetensors, or
    ``torch.load(weights_only=True)``; never unpickle), into the architecture they claim, and return
    the spec with id ``model_id`` and everything loading needs later, on another machine too (a Ray
    worker gets the spec, not the user's settings): absolute paths, the architecture itself rather
    than the config file's path. Measure ``params_m`` and ``gflops`` as the plugin's catalogue does.
    Raise :class:`mllzoo.MllzooError` with one line saying what is wrong with a checkpoint or config.
    """

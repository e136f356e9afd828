"""The conformance check every family plugin runs in its own tests, ours and third parties' alike.

    from mllzoo.testing import check_plugin
    import mllzoo_myfamily

    def test_conformance(tiny_spec):
        check_plugin(mllzoo_myfamily, family="myfamily", loadable=[tiny_spec])

``loadable`` are specs the test can load offline (tiny random-init models saved to a temp folder);
the registered catalogue is checked for metadata only. A plugin with the ``mllzoo_describe_model``
hook passes ``describable=[(model_id, checkpoint, config)]``: checkpoints the test saved. The
plugin is exercised through its own hooks on a private plugin manager, so the check neither needs
nor disturbs the installed plugins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pluggy

from mllzoo import hookspecs
from mllzoo.models.vlm import (
    LoadedModel,
    ModelSpec,
    checked_features,
    default_dtype,
    parse_model_id,
)

HEAVY_MODULES = ("torch", "open_clip", "transformers", "timm")
TEXTS = [
    "a photo of a dog.",
    "a cat",
    "an aerial photograph of a harbour with many small boats at dawn",
]
OTHER_FAMILY = "mllzoo-conformance-other"


def plugin_manager(plugin: ModuleType) -> pluggy.PluginManager:
    """A manager holding only ``plugin``; registering validates its hooks against the specs."""
    pm = pluggy.PluginManager("mllzoo")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    return pm


def registered_specs(plugin: ModuleType) -> list[ModelSpec]:
    """Everything ``plugin`` registers, in order."""
    specs: list[ModelSpec] = []
    plugin_manager(plugin).hook.mllzoo_register_models(register=specs.append)
    return specs


def check_registration(plugin: ModuleType, family: str | None) -> list[ModelSpec]:
    """Ids well formed (:data:`mllzoo.models.vlm.ID_PART`) and unique, one family (``family`` when given), a
    licence and a source per model, and the metadata selection and reports rely on."""
    specs = registered_specs(plugin)
    assert specs, f"{plugin.__name__} registers no models"
    ids = [spec.id for spec in specs]
    duplicates = sorted({model_id for model_id in ids if ids.count(model_id) > 1})
    assert not duplicates, f"ids registered twice: {duplicates[:5]}"
    for spec in specs:
        assert isinstance(spec, ModelSpec), f"registered {type(spec).__name__}, not a ModelSpec"
        assert parse_model_id(spec.id) == (spec.family, spec.arch, spec.tag), (
            f"{spec.id} does not round-trip"
        )
        expected = family or specs[0].family
        assert spec.family == expected, f"{spec.id}: family {spec.family!r}, expected {expected!r}"
        assert spec.source, f"{spec.id}: no source (where its weights come from)"
        assert isinstance(spec.license, str) and spec.license.strip(), (
            f"{spec.id}: no licence (the weights' licence as their publisher states it, or 'unknown')"
        )
        for name in ("params_m", "gflops", "image_size"):
            value = getattr(spec, name)
            assert value is None or (isinstance(value, (int, float)) and value > 0), (
                f"{spec.id}: {name}={value!r}"
            )
        top1 = spec.imagenet_top1
        assert top1 is None or 0 < top1 <= 1, f"{spec.id}: imagenet_top1={top1!r} is not a fraction"
        assert all(isinstance(hub, str) and hub for hub in spec.hubs), (
            f"{spec.id}: hubs={spec.hubs!r}"
        )
        json.dumps(spec.metadata())  # the registry stores metadata as JSON
    return specs


def check_offline_hooks(plugin: ModuleType, specs: list[ModelSpec]) -> None:
    """``mllzoo_model_available`` answers ``True``/``False`` for each of the plugin's models and ``None``
    for another family's; ``mllzoo_label_files`` answers a list of paths, each a readable label file."""
    import os

    from mllzoo.store.labelfile import open_label_file

    hook = plugin_manager(plugin).hook
    if hook.mllzoo_model_available.get_hookimpls():
        for spec in specs:
            answer = hook.mllzoo_model_available(spec=spec)
            assert isinstance(answer, bool), (
                f"{spec.id}: mllzoo_model_available answered {answer!r}, not True or False"
            )
        other = ModelSpec(family=f"not-{specs[0].family}", arch="x", tag="y", source="elsewhere")
        answer = hook.mllzoo_model_available(spec=other)
        assert answer is None, (
            f"mllzoo_model_available answered {answer!r} for {other.id}, another family's model"
        )
    for answer in hook.mllzoo_label_files():
        assert isinstance(answer, (list, tuple)), (
            f"mllzoo_label_files answered {type(answer).__name__}, not a list"
        )
        for path in answer:
            assert isinstance(path, (str, os.PathLike)) or hasattr(path, "joinpath"), (
                f"mllzoo_label_files listed {path!r}, not a path"
            )
            open_label_file(
                Path(str(path))
            )  # raises with one line when it is not a usable label file


def check_light_import(module_name: str) -> None:
    """Importing the plugin module must not import torch or a model library (``mllzoo --help`` stays fast)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module_name}"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    heavy = sorted(name for name in imported if name.split(".")[0] in HEAVY_MODULES)
    assert not heavy, f"import {module_name} imports {heavy[:5]}"


def sample_images(count: int = 4) -> list[Any]:
    """Deterministic RGB images of different sizes and contents, so resizing and cropping are exercised."""
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(48, 40), (33, 71), (64, 64), (100, 30)]
    return [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for width, height in (sizes[i % len(sizes)] for i in range(count))
    ]


def _features(features: Any, rows: int, what: str, spec: ModelSpec) -> np.ndarray:
    """What the core makes of a hook's answer (:func:`mllzoo.models.vlm.checked_features`: a finite numpy
    float ``[rows, dim]``, normalised there), as an assertion; different inputs must encode apart."""
    try:
        unit = checked_features(features, rows, what)
    except ValueError as exc:
        raise AssertionError(f"{spec.id}: {exc}") from None
    assert not np.allclose(unit[0], unit[1:], atol=1e-4), (
        f"{spec.id}: different {what}s encode alike"
    )
    return unit


def check_model(plugin: ModuleType, spec: ModelSpec, device: str = "cpu") -> LoadedModel:
    """Load ``spec`` through the plugin's hooks and check what encoding gives back."""
    import torch

    pm = plugin_manager(plugin)
    hook = pm.hook
    dtype = default_dtype(device)
    model = hook.mllzoo_load_model(spec=spec, device=device, dtype=dtype)
    assert isinstance(model, LoadedModel), f"{spec.id}: load returned {type(model).__name__}"
    assert model.spec.id == spec.id, f"{spec.id}: loaded handle names {model.spec.id}"
    assert isinstance(model.preprocess_key, str) and model.preprocess_key, (
        f"{spec.id}: empty preprocess_key"
    )
    assert isinstance(model.context_length, int) and model.context_length > 0, (
        f"{spec.id}: context_length"
    )

    pixels = [model.preprocess(image) for image in sample_images()]
    shapes = {tuple(p.shape) for p in pixels}
    assert len(shapes) == 1, f"{spec.id}: preprocess gives different shapes {shapes}"
    channels, height, width = shapes.pop()
    assert channels == 3, f"{spec.id}: preprocess gives {channels} channels"
    if spec.image_size:
        assert spec.image_size in (height, width), (
            f"{spec.id}: image_size {spec.image_size}, tensors {height}x{width}"
        )
    images = torch.stack(pixels).float()

    image_features = _features(
        hook.mllzoo_encode_images(model=model, images=images), len(pixels), "image", spec
    )
    text_features = _features(
        hook.mllzoo_encode_texts(model=model, texts=list(TEXTS)), len(TEXTS), "text", spec
    )
    assert image_features.shape[1] == text_features.shape[1], (
        f"{spec.id}: image dim {image_features.shape[1]} != text dim {text_features.shape[1]}"
    )

    # Deterministic: the same input gives the same features, alone or in a batch, and after a reload.
    again = checked_features(hook.mllzoo_encode_images(model=model, images=images[1:2]), 1, "image")
    assert np.allclose(again[0], image_features[1], atol=1e-4), (
        f"{spec.id}: image features depend on the batch"
    )
    alone = checked_features(hook.mllzoo_encode_texts(model=model, texts=[TEXTS[0]]), 1, "text")
    assert np.allclose(alone[0], text_features[0], atol=1e-4), (
        f"{spec.id}: text features depend on the batch"
    )
    reloaded = hook.mllzoo_load_model(spec=spec, device=device, dtype=dtype)
    assert reloaded.preprocess_key == model.preprocess_key, (
        f"{spec.id}: preprocess_key changes between loads"
    )
    texts_again = checked_features(
        hook.mllzoo_encode_texts(model=reloaded, texts=list(TEXTS)), len(TEXTS), "text"
    )
    assert np.allclose(texts_again, text_features, atol=1e-5), (
        f"{spec.id}: features change between loads"
    )

    # Models of other families are left to their own plugins.
    other = ModelSpec(family=OTHER_FAMILY, arch=spec.arch, tag=spec.tag)
    assert hook.mllzoo_load_model(spec=other, device=device, dtype=dtype) is None, (
        "loads another family's model"
    )
    foreign = LoadedModel(
        other,
        model.module,
        model.preprocess,
        model.preprocess_key,
        model.tokenizer,
        model.context_length,
        device,
        dtype,
    )
    assert hook.mllzoo_encode_images(model=foreign, images=images) is None, (
        "encodes another family's images"
    )
    assert hook.mllzoo_encode_texts(model=foreign, texts=list(TEXTS)) is None, (
        "encodes another family's texts"
    )
    return model


def check_describe(
    plugin: ModuleType,
    model_id: str,
    checkpoint: str,
    config: str | None = None,
    device: str = "cpu",
) -> ModelSpec:
    """The ``mllzoo_describe_model`` hook (``mllzoo models add``) on a checkpoint the test made: it
    describes ``model_id`` with measured costs, in metadata that survives the settings file's JSON
    (the spec a Ray worker gets), which then loads and encodes (:func:`check_model`); it answers
    ``None`` for another family's id and refuses a file of random bytes with one line."""
    import tempfile

    from mllzoo.errors import MllzooError

    hook = plugin_manager(plugin).hook
    assert hook.mllzoo_describe_model.get_hookimpls(), (
        f"{getattr(plugin, '__name__', 'the plugin')} does not implement mllzoo_describe_model"
    )
    spec = hook.mllzoo_describe_model(model_id=model_id, checkpoint=checkpoint, config=config)
    assert isinstance(spec, ModelSpec), f"{model_id}: described as {type(spec).__name__}"
    assert spec.id == model_id, f"described {model_id} as {spec.id}"
    for name in ("params_m", "gflops"):
        value = getattr(spec, name)
        assert value is None or (isinstance(value, (int, float)) and value > 0), (
            f"{model_id}: {name}={value!r} (measure it, or None when it cannot be measured)"
        )
    stored = json.loads(
        json.dumps({"family": spec.family, "arch": spec.arch, "tag": spec.tag, **spec.metadata()})
    )
    travelled = ModelSpec(**{**stored, "hubs": tuple(stored["hubs"])})
    check_model(plugin, travelled, device)
    _, _, tag = parse_model_id(model_id)
    other = f"{OTHER_FAMILY}/x.{tag}"
    answer = hook.mllzoo_describe_model(model_id=other, checkpoint=checkpoint, config=config)
    assert answer is None, f"mllzoo_describe_model described {other}, another family's model"
    with tempfile.TemporaryDirectory() as folder:
        garbage = Path(folder) / Path(checkpoint).name
        garbage.write_bytes(np.random.default_rng(0).bytes(4096))
        try:
            hook.mllzoo_describe_model(model_id=model_id, checkpoint=str(garbage), config=config)
        except MllzooError as exc:
            assert "\n" not in str(exc).strip(), f"refused random bytes in several lines: {exc}"
        else:
            raise AssertionError(f"{model_id}: a checkpoint of random bytes was accepted")
    return spec


def check_plugin(
    plugin: ModuleType,
    family: str,
    loadable: Iterable[ModelSpec],
    device: str = "cpu",
    describable: Iterable[tuple[str, str, str | None]] = (),
) -> None:
    """The whole check: light import, registration, every loadable spec end to end, and
    :func:`check_describe` on each ``(model id, checkpoint, config)`` of ``describable``."""
    check_light_import(plugin.__name__)
    check_offline_hooks(plugin, check_registration(plugin, family))
    specs = list(loadable)
    assert specs, "give at least one spec the test can load offline"
    for spec in specs:
        check_model(plugin, spec, device)
    for model_id, checkpoint, config in describable:
        check_describe(plugin, model_id, checkpoint, config, device)


def check_installed(distribution: str) -> list[ModelSpec]:
    """Check a plugin as ``pip install`` left it, not its source tree: run it where it is installed.

    Its ``mllzoo`` entry points load without torch, its models register (so the tables it reads were
    packaged), and every file it names is among the distribution's installed files: the label files of
    ``mllzoo_label_files`` (each a readable label file) and every model ``source`` that is a path inside
    its package (shipped weights). Returns the registered specs.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find

    from mllzoo.store.labelfile import open_label_file

    try:
        dist = find(distribution)
    except PackageNotFoundError:
        raise AssertionError(f"{distribution} is not installed") from None
    points = [ep for ep in dist.entry_points if ep.group == "mllzoo"]
    assert points, f"{distribution} declares no entry point in the 'mllzoo' group"
    installed = {Path(str(dist.locate_file(f))).resolve() for f in dist.files or []}
    specs: list[ModelSpec] = []
    for point in points:
        module = point.load()
        where = Path(module.__file__).resolve()
        if (
            dist.files is not None and where not in installed
        ):  # e.g. run from the plugin's source folder
            raise AssertionError(
                f"{distribution}: {module.__name__} was imported from {where}, not from the "
                f"installed distribution: a source tree on sys.path (the current folder?) shadows "
                f"the install; run check_installed from another folder"
            )
        check_light_import(module.__name__)
        try:
            registered = check_registration(module, family=None)
        except FileNotFoundError as exc:
            raise AssertionError(
                f"{distribution}: {exc.filename or exc} is not installed: list it in "
                f"[tool.setuptools.package-data] of the plugin's pyproject.toml"
            ) from None
        package = where.parent
        label_files = [
            Path(str(path))
            for paths in plugin_manager(module).hook.mllzoo_label_files()
            for path in paths or []
        ]
        shipped = [
            package.parent / spec.source
            for spec in registered
            if spec.source and (package.parent / spec.source).resolve().is_relative_to(package)
        ]
        for path in label_files + shipped:
            assert path.resolve() in installed, (
                f"{distribution}: {path} is not an installed file of the distribution"
            )
        for path in label_files:
            open_label_file(path)  # raises with one line when the file is not a usable label file
        specs += registered
    return specs


def registry_with_graph(folder: Any, plugins: str, **env: str) -> dict[str, str]:
    """A registry in ``folder`` holding a two-concept graph, and the environment that runs ``mllzoo``
    on it with only ``plugins`` loaded (a comma list of distributions): for a plugin's CLI tests of
    ``mllzoo register``. WordNet must be readable by NLTK (``NLTK_DATA``)."""
    from PIL import Image

    folder = Path(folder)
    for color, synset in enumerate(["dog.n.01", "cat.n.01"]):
        (folder / "samples" / synset).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (color * 200, i * 100, 0)).save(
                folder / "samples" / synset / f"{i}.png"
            )
    full_env = {
        **os.environ,
        "MLLZOO_LOAD_PLUGINS": plugins,
        "MLLZOO_REGISTRY": str(folder / "registry.db"),
        **env,
    }
    built = subprocess.run(
        [sys.executable, "-m", "mllzoo", "graph", "build", "--samples", str(folder / "samples")],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return full_env


__all__ = [
    "check_plugin",
    "check_describe",
    "check_registration",
    "check_model",
    "check_light_import",
    "check_installed",
    "registered_specs",
    "sample_images",
    "registry_with_graph",
]

"""Tiny random-init open_clip architectures for offline tests (this plugin's and the EVA plugin's).

A test names a small JSON config, open_clip builds it through its normal factory, and the weights are
saved as safetensors so loading goes through ``pretrained=/path`` exactly as a user's checkpoint does.
open_clip's config registry is restored afterwards, as open_clip's own tests do, so nothing leaks.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TINY_TEXT = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}
TINY_VIT = {
    "embed_dim": 32,
    "text_cfg": TINY_TEXT,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
}


@contextmanager
def tiny_checkpoint(
    folder: Path, arch: str, config: dict[str, Any], seed: int = 0
) -> Iterator[Path]:
    """Register ``config`` as ``arch`` with open_clip, save random weights, yield the weights file."""
    import open_clip
    import torch
    from open_clip import factory
    from safetensors.torch import save_file

    config_file = folder / f"{arch}.json"
    config_file.write_text(json.dumps(config))
    paths, configs = list(factory._MODEL_CONFIG_PATHS), factory._MODEL_CONFIGS
    open_clip.add_model_config(config_file)
    try:
        torch.manual_seed(seed)
        model = open_clip.create_model(arch, pretrained=None)
        weights = folder / f"{arch}.safetensors"
        save_file(
            {key: value.contiguous() for key, value in model.state_dict().items()}, str(weights)
        )
        yield weights
    finally:
        factory._MODEL_CONFIG_PATHS[:] = paths
        factory._MODEL_CONFIGS = configs


def custom_checkpoint(
    folder: Path, arch: str, config: dict[str, Any], suffix: str = ".safetensors", seed: int = 0
) -> tuple[Path, Path]:
    """A lab's own architecture, unknown to open_clip: ``(weights, config file)`` in ``folder``, the
    weights random (``.safetensors``, or ``.pt`` saved by ``torch.save``), built by open_clip from
    the config as ``mllzoo models add --config`` will, without registering it with open_clip."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from .loading import open_clip_name

    config_file = folder / f"{arch}.json"
    config_file.write_text(json.dumps(config))
    torch.manual_seed(seed)
    with open_clip_name(arch, config) as name:
        state = open_clip.create_model(name, pretrained=None).state_dict()
    weights = folder / f"{arch}{suffix}"
    if suffix == ".safetensors":
        save_file({key: value.contiguous() for key, value in state.items()}, str(weights))
    else:
        torch.save(state, weights)
    return weights, config_file


class _Planted:
    """Unpickling this opens (creates) a file: what a malicious checkpoint would run instead."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def planted_checkpoint(path: Path, marker: Path, writer: str = "torch.save") -> Path:
    """A ``.pt`` that creates ``marker`` when unpickled, written by ``torch.save`` in its zip format
    or (``writer="legacy"``) its bare-pickle one: a test that it is refused and never unpickled
    checks ``marker``."""
    import torch

    payload = {"state_dict": {"w": torch.zeros(1)}, "extra": _Planted(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=writer != "legacy")
    return path


def cut_off_hub(monkeypatch: Any, cache: Path) -> None:
    """Point the Hub at a closed local port (refused at once, as with no network) and the cache at ``cache``.

    Offline mode is left off, so what is tested is the reachability probe, not huggingface_hub's flag.
    """
    import huggingface_hub.constants

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))


def put_in_hub_cache(cache: Path, repo: str, files: dict[str, Path]) -> None:
    """Lay ``files`` out as huggingface_hub caches ``repo`` at ``main`` (refs/main names a snapshot)."""
    commit = "0" * 40
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    for name, source in files.items():
        shutil.copyfile(source, folder / "snapshots" / commit / name)

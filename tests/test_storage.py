"""One owner per concern: only the registry touches SQLite; images are read the way they are named."""

from __future__ import annotations

import ast

from PIL import Image

from conftest import ROOT


def test_only_the_registry_reaches_into_the_database():
    """Every module reads and writes the registry through ``Registry`` methods, never ``registry.db``."""
    sources = [
        p
        for p in (ROOT / "mllzoo").rglob("*.py")
        if p.name not in ("registry.py", "label_store.py")
    ]
    sources += [p for p in (ROOT / "plugins").glob("*/mllzoo_*/**/*.py")]
    leaks = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute) and node.attr == "db"
    ]
    assert not leaks, f"direct database access outside the registry's modules: {', '.join(leaks)}"


def test_image_cache_reads_paths_as_given(tmp_path, monkeypatch):
    import torch

    from mllzoo.graph.images import ImageCache

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "relative.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    absolute = tmp_path / "sub" / "absolute.png"
    absolute.parent.mkdir()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(absolute)
    cache = ImageCache(None, ["relative.png", str(absolute), "broken.png"])
    tensor, ok = cache.chunk("raw", lambda image: torch.tensor(image.getpixel((0, 0))), 0, 3)
    assert ok == [0, 1] and tensor.tolist() == [[255, 0, 0], [0, 0, 255]]
    assert cache.unreadable == {2} and cache.path(2) == type(tmp_path)("broken.png")


def test_class_folder_images_names_each_file_by_its_folder(tmp_path):
    from mllzoo.graph.images import class_folder_images

    for path in (
        "dog/a.png",
        "dog/b.JPG",
        "cat/c.png",
        "loose.png",
        "cat/notes.txt",
        "cat/deeper/d.png",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    found = [
        (str(file.relative_to(tmp_path)), name) for file, name in class_folder_images(tmp_path)
    ]
    assert found == [
        ("cat/c.png", "cat"),
        ("cat/deeper/d.png", "deeper"),
        ("dog/a.png", "dog"),
        ("dog/b.JPG", "dog"),
        ("loose.png", None),
    ]

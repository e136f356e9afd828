"""Fault injection on the files around a registry (issue 21): label files written and read, the
output of ``labels export``, full and read-only disks. Real ``mllzoo`` subprocesses on real SQLite
files; a full or read-only disk is a real small tmpfs (mounted when the tests may mount, as root in
CI). Every case ends in one clear line, never a traceback, a stray file or a changed registry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli, run_cli_process
from helpers import MODEL, copy_registry, fill, one_line_error, sha1, tmpfs

# labels export --------------------------------------------------------------------------------------


def test_export_never_overwrites_the_registry_being_read(world, tmp_path):
    path, env = copy_registry(world, tmp_path)
    before = sha1(path)
    (tmp_path / "link.db").symlink_to(path)
    for target in (path, tmp_path / "link.db", Path(str(path) + "-wal")):
        for force in ([], ["--force"]):
            one_line_error(
                run_cli("labels", "export", MODEL, "-o", str(target), *force, env=env),
                "it is the registry being read",
            )
    assert sha1(path) == before
    assert run_cli("models", env=env).returncode == 0


def test_export_refuses_an_existing_file_unless_forced(world, tmp_path):
    _, env = copy_registry(world, tmp_path)
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me\n")
    one_line_error(
        run_cli("labels", "export", MODEL, "-o", str(existing), env=env),
        "already exists",
        "--force",
    )
    assert existing.read_text() == "keep me\n"
    forced = run_cli("labels", "export", MODEL, "-o", str(existing), "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert existing.read_bytes()[:2] == b"PK"
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


def test_export_into_a_missing_folder_is_one_line(world, tmp_path):
    _, env = copy_registry(world, tmp_path)
    one_line_error(
        run_cli(
            "labels", "export", MODEL, "-o", str(tmp_path / "nope" / "x.mllzoo-labels"), env=env
        ),
        "does not exist",
        "nothing was written",
    )
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_export_onto_a_read_only_or_full_disk_leaves_nothing_behind(world, tmp_path, kind):
    _, env = copy_registry(world, tmp_path)
    with tmpfs(tmp_path / "disk", "256k", read_only=kind == "read-only") as disk:
        if kind == "full":
            fill(disk)
        before = sorted(p.name for p in disk.iterdir())
        error = one_line_error(
            run_cli("labels", "export", MODEL, "-o", str(disk / "x.mllzoo-labels"), env=env),
            "cannot write label file",
            "nothing was written",
        )
        assert (
            "Read-only file system" if kind == "read-only" else "No space left on device"
        ) in error
        assert sorted(p.name for p in disk.iterdir()) == before  # no .partial left behind


def label_count(path: Path) -> tuple[int, str]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return (
            conn.execute("select count(*) from labels").fetchone()[0],
            conn.execute("pragma integrity_check").fetchone()[0],
        )


@pytest.mark.slow  # real processes
def test_a_full_disk_during_import_and_register_is_one_line_and_the_registry_stays_consistent(
    world, tmp_path
):
    root, _ = world  # real processes: a command that fails on a full disk exits, closing its files
    path, env = copy_registry(world, tmp_path)
    exported = tmp_path / "both.mllzoo-labels"
    assert (
        run_cli_process(
            "labels", "export", MODEL, "tinyclip/tiny-b.seed0", "-o", str(exported), env=env
        ).returncode
        == 0
    )
    assert (
        run_cli_process("labels", "remove", MODEL, "tinyclip/tiny-b.seed0", env=env).returncode == 0
    )
    size = path.stat().st_size
    with tmpfs(tmp_path / "disk", f"{3 * size // 1024 + 256}k") as disk:
        on_disk = disk / "r.db"
        on_disk.write_bytes(path.read_bytes())
        env = {**env, "MLLZOO_REGISTRY": str(on_disk)}
        before = label_count(on_disk)
        fill(disk)
        for args in (
            ["labels", "import", str(exported)],
            ["register", MODEL, "--samples", str(root / "samples")],
        ):
            error = one_line_error(
                run_cli_process(*args, env=env),
                "database or disk is full",
                "the registry is consistent",
            )
            assert "Traceback" not in error
            assert label_count(on_disk) == before
        for filler in disk.glob("filler*"):
            filler.unlink()
        assert run_cli_process("labels", "import", str(exported), env=env).returncode == 0
        assert label_count(on_disk) == (before[0] + 2, "ok")


# label file contents --------------------------------------------------------------------------------


def rewrite(source: Path, target: Path, change) -> Path:
    """A copy of a label file whose manifest ``change(manifest)`` edited, re-checksummed as a forger would."""
    import hashlib
    import json
    import zipfile

    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    change(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    members["manifest.sha256"] = hashlib.sha256(members["manifest.json"]).hexdigest().encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


@pytest.fixture
def exported(world, tmp_path) -> tuple[Path, dict]:
    """A registry copy without MODEL's label or models row, and MODEL's label file."""
    path, env = copy_registry(world, tmp_path)
    assert (
        run_cli(
            "labels", "export", MODEL, "-o", str(tmp_path / "m.mllzoo-labels"), env=env
        ).returncode
        == 0
    )
    assert run_cli("labels", "remove", MODEL, env=env).returncode == 0
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("delete from models where id = ?", [MODEL])
    return tmp_path / "m.mllzoo-labels", env


def dump(path: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def set_model(key: str, value, metadata: bool = True):
    def change(manifest):
        target = manifest["labels"][0]["model"]
        (target["metadata"] if metadata else target)[key] = value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (
            set_model("gflops", -1000),
            "metadata gflops must be a non-negative finite number, not -1000",
        ),
        (
            set_model("gflops", "4.6"),
            "metadata gflops must be a non-negative finite number, not '4.6'",
        ),
        (
            set_model("params_m", "big"),
            "metadata params_m must be a non-negative finite number, not 'big'",
        ),
        (
            set_model("params_m", True),
            "metadata params_m must be a non-negative finite number, not True",
        ),
        (set_model("imagenet_top1", 7), "metadata imagenet_top1 must be a number from 0 to 1"),
        (set_model("id", "spoofed/model.x"), "unknown metadata key(s) 'id'"),
        (set_model("plugin", ["a", "b"], metadata=False), "plugin must be text, not list"),
        (
            set_model("plugin", "mllzoo-plugin-x --index-url https://e.example/ ; sh", False),
            "plugin 'mllzoo-plugin-x --index-url https://e.example/ ; sh' is not a distribution name",
        ),
        (
            set_model("plugin_version", {"v": 1}, metadata=False),
            "plugin_version must be text, not dict",
        ),
    ],
)
def test_label_file_model_rows_are_checked_before_import(exported, tmp_path, change, message):
    label_file, env = exported
    forged = rewrite(label_file, tmp_path / "forged.mllzoo-labels", change)
    before = dump(Path(env["MLLZOO_REGISTRY"]))
    one_line_error(
        run_cli("labels", "import", str(forged), env=env),
        f"model {MODEL}: {message}",
        "nothing was imported",
    )
    assert dump(Path(env["MLLZOO_REGISTRY"])) == before


def test_the_installed_plugins_catalogue_wins_over_a_files_metadata(exported, tmp_path):
    import json

    label_file, env = exported
    forged = rewrite(label_file, tmp_path / "cheap.mllzoo-labels", set_model("gflops", 0.0))
    assert run_cli("labels", "import", str(forged), env=env).returncode == 0
    listed = {row["id"]: row for row in json.loads(run_cli("models", "--json", env=env).stdout)}
    assert (
        listed[MODEL]["gflops"] is None and listed[MODEL]["params_m"] == 0.1
    )  # tinyclip's catalogue
    import sqlite3

    with sqlite3.connect(env["MLLZOO_REGISTRY"]) as conn:
        stored = json.loads(
            conn.execute("select metadata from models where id = ?", [MODEL]).fetchone()[0]
        )
    assert stored["gflops"] is None and stored["params_m"] == 0.1


@pytest.mark.parametrize(
    "field, value",
    [
        ("gflops", -1.0),
        ("gflops", float("nan")),
        ("params_m", "40"),
        ("image_size", 0),
        ("imagenet_top1", 78.5),
    ],
)
def test_a_plugin_cannot_register_metadata_a_label_file_could_not_carry(field, value):
    from mllzoo import ModelSpec

    with pytest.raises(ValueError, match=f"model f/a.b: metadata {field} must be"):
        ModelSpec(family="f", arch="a", tag="b", **{field: value})


# settings files -------------------------------------------------------------------------------------


def config_run(home: Path, *args: str):
    return run_cli("config", *args, env={"XDG_CONFIG_HOME": str(home)}, timeout=60)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("fifo", "is not a regular file"),
        ("dev-zero", "is not a regular file"),
        ("huge", "is larger than 64 KB"),
        ("nested", "nested too deeply"),
        ("folder", "is not a regular file"),
    ],
)
def test_a_config_file_that_is_not_one_is_one_line_in_every_command(tmp_path, kind, message):
    folder = tmp_path / "home" / "mllzoo"
    folder.mkdir(parents=True)
    path = folder / "config.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        path.write_text('{"embedder": "' + "x" * 100_000 + '"}')
    elif kind == "nested":
        path.write_text('{"embedder": ' + "[" * 30_000 + "]" * 30_000 + "}")
    else:
        path.mkdir()
    for args in (["get", "embedder"], ["list"], ["set", "captioner", "openai"]):
        one_line_error(config_run(tmp_path / "home", *args), message)


def test_config_set_in_a_read_only_folder_is_one_line(tmp_path):
    with tmpfs(tmp_path / "home", "64k", read_only=True) as home:
        for args in (["set", "captioner", "openai"], ["unset", "captioner"]):
            one_line_error(
                config_run(home, *args), "cannot change the settings", "Read-only file system"
            )
        assert config_run(home, "get", "captioner").stdout == "templates\n"


def members(label_file: Path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(label_file) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(target: Path, contents: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(target, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return target


def with_manifest(contents: dict[str, bytes], manifest: bytes) -> dict[str, bytes]:
    import hashlib

    return {
        **contents,
        "manifest.json": manifest,
        "manifest.sha256": hashlib.sha256(manifest).hexdigest().encode(),
    }


def patched(label_file: Path, target: Path, local: int, central: int, value: int) -> Path:
    """A stored copy of ``label_file`` whose every local and central header has ``value`` (two bytes)
    at the given offsets: general-purpose flags at 6/8, compression method at 8/10."""
    data = bytearray(write_members(target, members(label_file)).read_bytes())
    for signature, offset in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = data.find(signature)
        while at >= 0:
            data[at + offset : at + offset + 2] = value.to_bytes(2, "little")
            at = data.find(signature, at + 4)
    target.write_bytes(bytes(data))
    return target


def test_encrypted_members_and_unknown_compression_are_refused(exported, tmp_path):
    label_file, env = exported
    encrypted = patched(label_file, tmp_path / "enc.mllzoo-labels", 6, 8, 0x1)
    one_line_error(
        run_cli("labels", "import", str(encrypted), env=env), "is encrypted", "nothing was imported"
    )
    aes = patched(label_file, tmp_path / "m99.mllzoo-labels", 8, 10, 99)
    one_line_error(
        run_cli("labels", "import", str(aes), env=env),
        "uses compression method 99",
        "nothing was imported",
    )


def test_a_deeply_nested_manifest_is_one_line(exported, tmp_path):
    label_file, env = exported
    deep = with_manifest(
        members(label_file), b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    )
    one_line_error(
        run_cli(
            "labels", "import", str(write_members(tmp_path / "deep.mllzoo-labels", deep)), env=env
        ),
        "manifest.json is nested too deeply",
        "nothing was imported",
    )


@pytest.mark.parametrize("kind", ["manifest", "array"])
@pytest.mark.slow  # real processes
def test_declared_sizes_are_capped_before_reading(exported, tmp_path, kind):
    """A small zip declaring 256 MiB (deflated zeros or spaces) is refused before it is read: the
    importing process never grows by the declared size."""
    import json
    import sys
    import zipfile

    label_file, env = exported
    contents = members(label_file)
    manifest = json.loads(contents["manifest.json"])
    big = 256 * 1024**2
    if kind == "manifest":
        contents = with_manifest(
            contents, contents["manifest.json"] + b" " * big
        )  # still valid JSON
    else:
        import hashlib

        lists = manifest["labels"][0]["arrays"]["lists"]
        lists["shape"] = [big // np_itemsize(lists["dtype"])]
        lists["sha256"] = hashlib.sha256(b"\0" * big).hexdigest()
        contents = with_manifest(contents, json.dumps(manifest).encode())
        contents[lists["file"]] = b"\0" * big
    target = tmp_path / "big.mllzoo-labels"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    del contents
    assert target.stat().st_size < 2 * 1024**2
    measure = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.stderr.write(r.stderr)"
    )
    import os

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            measure,
            sys.executable,
            "-m",
            "mllzoo",
            "labels",
            "import",
            str(target),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    code, peak_kb = map(int, result.stdout.split())
    assert code == 2 and "Traceback" not in result.stderr, result.stderr
    assert (
        "manifest.json declares" if kind == "manifest" else "array lists declares shape"
    ) in result.stderr
    assert peak_kb * 1024 < big, peak_kb


def np_itemsize(dtype: str) -> int:
    import numpy as np

    return np.dtype(dtype).itemsize


def test_a_label_file_that_is_a_folder_or_fifo_is_not_reported_missing(exported, tmp_path):
    import os

    _, env = exported
    (tmp_path / "folder.mllzoo-labels").mkdir()
    os.mkfifo(tmp_path / "fifo.mllzoo-labels")
    for name in ("folder.mllzoo-labels", "fifo.mllzoo-labels"):
        one_line_error(
            run_cli("labels", "import", str(tmp_path / name), env=env), "is not a regular file"
        )
    one_line_error(run_cli("labels", "import", "/dev/null", env=env), "is not a regular file")


# class files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("dog\ncat" + "s" * 300 + "\n", "class 2 is 303 characters long; at most 256"),
        ("dog\n" + "x" * 10_000_000 + "\n", "is larger than 8 MB"),
        (
            "dog\nflag\u202egod\n",
            "invisible formatting character U+202E",
        ),  # a right-to-left override
        ("dog\nc\u200bat\n", "invisible formatting character U+200B"),  # zero width space
        ("dog\ncat\U000e0041\n", "invisible formatting character U+E0041"),  # a tag character
    ],
)
def test_class_files_are_bounded_and_invisible_characters_refused(world, tmp_path, text, message):
    _, env = world
    classes = tmp_path / "classes.txt"
    classes.write_text(text, encoding="utf-8")
    error = one_line_error(run_cli("recommend", str(classes), env=env, timeout=60), message)
    assert "\u202e" not in error and "\u200b" not in error


def test_a_class_file_that_never_ends_is_refused(world):
    _, env = world
    one_line_error(run_cli("recommend", "/dev/zero", env=env, timeout=60), "is larger than 8 MB")


# registry contents ----------------------------------------------------------------------------------


def test_a_nul_byte_in_a_registry_image_path_is_a_missing_image(world, tmp_path):
    import sqlite3

    root, _ = world
    path, env = copy_registry(world, tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("update images set path = path || char(0) || '.png' where idx = 0")
    checked = run_cli("graph", "check", "--samples", str(root / "samples"), env=env)
    assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stderr
    assert "1 missing" in checked.stdout + checked.stderr
    assert run_cli("labels", "remove", MODEL, env=env).returncode == 0
    one_line_error(
        run_cli("register", MODEL, "--samples", str(root / "samples"), env=env), "missing"
    )


# wide images: 16-bit and float grayscale --------------------------------------------------------


def wide_copies(image):
    """An 8-bit grayscale image as a 16-bit PNG and a float TIFF holding the same picture."""
    import io

    import numpy as np
    from PIL import Image

    gray = np.asarray(image.convert("L"), dtype=np.uint16)
    copies = {}
    for name, wide, fmt in (
        ("16-bit", Image.fromarray(gray * 257), "PNG"),
        ("float", Image.fromarray((gray / 255).astype(np.float32)), "TIFF"),
    ):
        out = io.BytesIO()
        wide.save(out, fmt)
        copies[name] = out.getvalue()
    return copies


def test_16_bit_and_float_images_decode_as_their_8_bit_copy(world):
    import numpy as np
    from PIL import Image

    from mllzoo.graph.images import decode_rgb

    root, _ = world
    for path in sorted((root / "task").rglob("*.png"))[:4]:
        with Image.open(path) as image:
            eight = np.asarray(image.convert("L").convert("RGB"))
            copies = wide_copies(image)
        for name, data in copies.items():
            decoded = np.asarray(decode_rgb(data))
            assert np.array_equal(decoded, eight), (name, path)


def test_predict_on_16_bit_and_float_copies_predicts_as_on_the_8_bit_ones(world, tmp_path):
    import json

    from PIL import Image

    root, env = world
    folders = {kind: tmp_path / kind for kind in ("8-bit", "16-bit", "float")}
    for path in sorted((root / "task").rglob("*.png")):
        with Image.open(path) as image:
            copies = {**wide_copies(image), "8-bit": None}
            for kind, data in copies.items():
                target = (
                    folders[kind]
                    / path.parent.name
                    / f"{path.stem}.{'tiff' if kind == 'float' else 'png'}"
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                if data is None:
                    image.convert("L").save(target)
                else:
                    target.write_bytes(data)
    predicted = {}
    for kind, folder in folders.items():
        done = run_cli(
            "predict", str(folder), "--classes", str(root / "classes.txt"), "--json", env=env
        )
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)["predictions"]
        predicted[kind] = [
            (Path(r["path"]).parent.name, Path(r["path"]).stem, r["label"]) for r in rows
        ]
    assert predicted["16-bit"] == predicted["8-bit"] and predicted["float"] == predicted["8-bit"]

"""No exported label names this machine's files (issue 28): a user's checkpoint, named by an
absolute path in a model's ``source`` or ``extra["checkpoint"]``, is kept and exported by file name
only. A real registry, a real label file."""

from __future__ import annotations

import json
import shutil
import zipfile

from click.testing import CliRunner

from mllzoo.cli.main import cli
from mllzoo.models.catalog import CatalogEntry
from mllzoo.models.vlm import ModelSpec, portable_metadata
from mllzoo.store.registry import Registry


def test_absolute_paths_become_file_names_and_the_rest_is_kept():
    metadata = ModelSpec(
        family="open_clip",
        arch="labvit",
        tag="epoch3",
        source="/home/lab/ck/epoch3.pt",
        extra={"checkpoint": "/home/lab/ck/epoch3.pt", "context_length": 77, "note": "a/b"},
    ).metadata()
    portable = portable_metadata(metadata)
    assert portable["source"] == "epoch3.pt"
    assert portable["extra"] == {"checkpoint": "epoch3.pt", "context_length": 77, "note": "a/b"}
    assert portable_metadata({"source": "hf-hub:timm/x", "extra": {}})["source"] == "hf-hub:timm/x"
    windows = portable_metadata({"source": None, "extra": {"checkpoint": "C:\\lab\\ck.pt"}})
    assert windows["extra"]["checkpoint"] == "ck.pt"


def test_an_exported_label_carries_no_path_of_this_machine(world, tmp_path):
    root, env = world
    db = tmp_path / "r.db"
    shutil.copyfile(env["MLLZOO_REGISTRY"], db)
    registry = Registry(db)
    model_id = sorted(registry.labeled_model_ids(registry.require_graph_id()))[0]
    family, rest = model_id.split("/")
    arch, tag = rest.split(".")
    checkpoint = tmp_path / "lab" / "weights" / f"{arch}.safetensors"
    spec = ModelSpec(
        family=family,
        arch=arch,
        tag=tag,
        source=str(checkpoint),
        extra={"checkpoint": str(checkpoint)},
    )
    registry.record_models([CatalogEntry(spec, "mllzoo-plugin-tinyclip", "0.1")])
    stored = registry.model(model_id)
    registry.close()
    assert stored is not None and str(tmp_path) not in json.dumps(stored)
    out = tmp_path / "out.mllzoo-labels"
    exported = CliRunner().invoke(
        cli, ["--registry", str(db), "labels", "export", model_id, "-o", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(out) as archive:
        manifest = archive.read("manifest.json").decode()
    assert str(tmp_path) not in manifest and "/lab/" not in manifest
    (entry,) = json.loads(manifest)["labels"]
    assert entry["model"]["metadata"]["extra"]["checkpoint"] == f"{arch}.safetensors"

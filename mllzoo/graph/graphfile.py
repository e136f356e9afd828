"""The graph file: a registry's semantic graph without its images, so a registry can start from nothing.

A zip archive (``.mllzoo-graph``) holding

- ``manifest.json``: ``{"format": "mllzoo-graph", "version": 1, "graph": {"id", "name", "meta"},
  "members": {name: {"bytes", "sha256"}}, "embeddings": [{"embedder", "file", "dtype", "shape"}]}``;
- ``nodes.json``: per node its idx, synset, wnid, name, definition, caption, depth and parents (the edges);
- ``images.json``: per image its SHA-1 (what ``graph check`` compares) and its path in the sample folder;
- ``samples.bin``: the (node, image) pairs, little-endian int32 ``[n, 2]``;
- ``embeddings/N.bin``: the caption embeddings of one embedder, little-endian float32 ``[nodes, dim]``.

Reading checks every member against its SHA-256, the structure (indices in range, samples sorted) and
recomputes the graph id from the synsets, image hashes and samples
(:func:`mllzoo.graph.concept_graph.content_id`), so a graph file is the graph it claims to be. Never a
pickle; no WordNet and no images needed.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mllzoo.errors import MllzooError, warn
from mllzoo.store import blobs
from mllzoo.store.files import replaced_atomically
from mllzoo.store.registry import Registry

FORMAT_NAME = "mllzoo-graph"
VERSION = 1
SUFFIX = ".mllzoo-graph"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same graph always gives the same bytes
MAX_MEMBER_BYTES = 512 * 1024**2  # a paper-scale graph's largest member is tens of MB
NODE_FIELDS = {
    "idx": int,
    "synset": str,
    "wnid": str,
    "name": str,
    "definition": str,
    "caption": str,
    "depth": int,
    "parents": list,
}
IMAGE_HASH = re.compile(r"^[0-9a-f]{40}\Z")
DRIVE = re.compile(r"^[A-Za-z]:")  # a Windows path is no more relative than a POSIX one


class GraphFileError(MllzooError):
    """A graph file that cannot be used: named in the one line the CLI prints."""


@dataclass
class PublishedGraph:
    """A graph read from a graph file, every part checked."""

    id: str
    name: str
    meta: dict
    nodes: list[dict]
    images: list[tuple[str, str]]
    samples: np.ndarray
    embeddings: dict[str, np.ndarray]

    def sizes(self) -> dict[str, int]:
        return {"nodes": len(self.nodes), "images": len(self.images), "samples": len(self.samples)}

    def save(self, registry: Registry) -> None:
        """Store the graph and its caption embeddings, and make it the registry's graph."""
        registry.save_graph(
            self.id,
            self.name,
            self.meta,
            ({**node, "parents": json.dumps(node["parents"])} for node in self.nodes),
            self.images,
            self.samples,
        )
        for embedder, vectors in self.embeddings.items():
            registry.save_node_embeddings(self.id, embedder, vectors)


def write_graph_file(path: Path, registry: Registry, graph_id: str) -> None:
    """Write the registry's graph ``graph_id`` to ``path`` atomically (damaged embeddings left out, with a warning)."""
    names = ["idx", "synset", "wnid", "name", "definition", "caption", "depth"]
    nodes = [
        {**dict(zip(names, row[:-1])), "parents": json.loads(row[-1])}
        for row in registry.graph_nodes(graph_id)
    ]
    members = {
        "nodes.json": json.dumps(nodes, sort_keys=True).encode(),
        "images.json": json.dumps([list(row) for row in registry.graph_images(graph_id)]).encode(),
        "samples.bin": blobs.pack(registry.graph_samples(graph_id).astype(np.int32))["data"],
    }
    embeddings: list[dict] = []
    for embedder in registry.node_embedders(graph_id):
        try:
            vectors = registry.node_embeddings(graph_id, embedder)
        except blobs.DamagedBlob as exc:
            warn(
                f"the {embedder} caption embeddings of graph {graph_id} are damaged ({exc}): left out"
            )
            continue
        assert vectors is not None  # listed by node_embedders
        packed = blobs.pack(vectors.astype(np.float32))
        file = f"embeddings/{len(embeddings)}.bin"
        members[file] = packed["data"]
        embeddings.append(
            {
                "embedder": embedder,
                "file": file,
                "dtype": packed["dtype"],
                "shape": json.loads(packed["shape"]),
            }
        )
    meta = {k: v for k, v in (registry.graph_meta(graph_id) or {}).items() if k != "source"}
    name = registry.graph_name(graph_id)
    manifest = {
        "format": FORMAT_NAME,
        "version": VERSION,
        "graph": {"id": graph_id, "name": name, "meta": meta},
        "members": {
            member: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for member, data in members.items()
        },
        "embeddings": embeddings,
    }
    with (
        replaced_atomically(Path(path), ".partial") as stream,
        zipfile.ZipFile(stream, "w") as archive,
    ):
        for member, data in [
            ("manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode()),
            *members.items(),
        ]:
            archive.writestr(zipfile.ZipInfo(member, FIXED_TIME), data, zipfile.ZIP_DEFLATED)


def read_graph_file(path: Path) -> PublishedGraph:
    """The graph in ``path``, every member checked and its id recomputed; one line when it cannot be used."""

    def refuse(reason: str) -> GraphFileError:
        return GraphFileError(f"graph file {path}: {reason}; nothing was changed")

    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.file_size > MAX_MEMBER_BYTES or info.flag_bits & 0x1:
                    raise refuse(f"member {info.filename} is encrypted or too large")
            manifest = json.loads(archive.read("manifest.json"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
                raise refuse("not an mllzoo graph file")
            if manifest.get("version") != VERSION:
                raise refuse(
                    f"version {manifest.get('version')!r}, this mllzoo reads version {VERSION}: "
                    f"upgrade mllzoo"
                )
            data = {}
            for member, described in manifest["members"].items():
                data[member] = archive.read(member)
                if hashlib.sha256(data[member]).hexdigest() != described["sha256"]:
                    raise refuse(f"checksum of {member} does not match: the file was altered")
            for entry in manifest["embeddings"]:
                data[entry["file"]] = archive.read(entry["file"])
                if entry["file"] not in manifest["members"]:
                    raise refuse(f"{entry['file']} has no checksum")
            graph = manifest["graph"]
            nodes = json.loads(data["nodes.json"])
            images = [tuple(row) for row in json.loads(data["images.json"])]
            samples = blobs.fitting(
                "<i4", json.dumps([len(data["samples.bin"]) // 8, 2]), data["samples.bin"]
            )
            embeddings = {
                entry["embedder"]: blobs.fitting(
                    entry["dtype"], json.dumps(entry["shape"]), data[entry["file"]]
                )
                for entry in manifest["embeddings"]
            }
    except GraphFileError:
        raise
    except (
        zipfile.BadZipFile,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        zlib.error,
        OSError,
        EOFError,
        RecursionError,
    ) as exc:
        raise refuse(f"unreadable ({type(exc).__name__}: {exc})") from None
    problem = _structure_problem(nodes, images, samples, embeddings)
    if problem:
        raise refuse(problem)
    from mllzoo.graph.concept_graph import content_id

    recomputed = content_id([n["synset"] for n in nodes], [h for h, _ in images], samples)
    if not isinstance(graph.get("id"), str) or recomputed != graph["id"]:
        raise refuse(f"it claims graph {graph.get('id')!r} but its content is graph {recomputed}")
    return PublishedGraph(
        graph["id"],
        str(graph.get("name") or graph["id"]),
        graph.get("meta") if isinstance(graph.get("meta"), dict) else {},
        nodes,
        [(str(h), str(p)) for h, p in images],
        samples.copy(),
        {k: v.astype(np.float32) for k, v in embeddings.items()},
    )


def _structure_problem(
    nodes: object, images: list, samples: np.ndarray, embeddings: dict[str, np.ndarray]
) -> str | None:
    """What makes the graph's parts not a graph: fields and types, indices out of range, unsorted samples."""
    if not isinstance(nodes, list) or not nodes:
        return "it has no nodes"
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or any(
            not isinstance(node.get(key), kind) or isinstance(node.get(key), bool)
            for key, kind in NODE_FIELDS.items()
        ):
            return f"node {i} lacks a field or has one of the wrong type"
        if node["idx"] != i or not all(
            isinstance(p, int) and 0 <= p < len(nodes) for p in node["parents"]
        ):
            return f"node {i}: its index or a parent is out of range"
    for image in images:
        if not (
            len(image) == 2
            and isinstance(image[0], str)
            and IMAGE_HASH.match(image[0])
            and isinstance(image[1], str)
            and not image[1].startswith(("/", "\\"))
            and not DRIVE.match(image[1])
            and ".." not in image[1].replace("\\", "/").split("/")
        ):
            return f"image {str(image)[:60]} is not a SHA-1 and a relative path"
    if len(samples) and (
        samples[:, 0].min() < 0
        or samples[:, 0].max() >= len(nodes)
        or samples[:, 1].min() < 0
        or samples[:, 1].max() >= len(images)
    ):
        return "a sample names a node or an image that is not there"
    if len(samples) > 1 and not np.all(
        np.diff(samples[:, 0].astype(np.int64) * len(images) + samples[:, 1]) > 0
    ):
        return "its samples are not sorted and unique"
    for embedder, vectors in embeddings.items():
        if (
            vectors.dtype.kind != "f"
            or vectors.ndim != 2
            or len(vectors) != len(nodes)
            or not np.isfinite(vectors).all()
        ):
            return f"the {embedder} caption embeddings do not fit its {len(nodes)} nodes"
    return None

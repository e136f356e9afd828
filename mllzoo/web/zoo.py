"""What the web pages show, as plain data: one :class:`Zoo` per registry file, kept across requests.

Nothing here imports Datasette, so the pages' numbers are testable on their own and the JSON twins are
these dicts as they are. Every registry call runs on the zoo's one worker thread: SQLite connections
belong to the thread that opened them, and the loaded :class:`~mllzoo.selection.recommend.Selector` (graph,
caption matrix, embedder) is made once there and reused by every request. A registry has two zoos, two
lanes: long class lists queue on their own worker, so they never hold up the pages and small lists.
Each request runs under a cancellation token (:mod:`mllzoo.cancellation`) that the server sets when its
client leaves or its time is up: long work stops at its next batch and frees the worker.

A served registry may change underneath (``register``, ``labels import``/``remove``). Each request
therefore starts by comparing the file's identity and a cheap signature of what the pages read (the
current graph, each label's token, the models rows) with what the zoo last saw: a changed file is
reopened, changed contents drop what was computed from them. After the request the signature is read
again, and a request that straddled a change is run again on the new state, so no answer mixes two.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mllzoo.cancellation import cancellable
from mllzoo.classes import parse_classes, unsafe_character
from mllzoo.defaults import MAX_K, MAX_MODELS, K, model_budget
from mllzoo.errors import DamagedLabelError, MllzooError

MAX_REQUEST_BYTES = (
    1024 * 1024
)  # a 5,000-class list of long names fits; anything bigger is refused unread
MAX_TEXT = 200  # characters of a domain or task
MAX_COMPARE = 5
MAX_BRANCHES = 16  # the top-level split stops here even when a branch is still large
BRANCH_SHARE = 0.25  # ... or when no branch holds more than this share of the graph's nodes
KEPT_CLASS_LISTS = 32  # class lists whose embeddings a selector keeps (a server sees many)
CHANGED_TRIES = 3  # a request that straddles a change of the registry is run again, this many times
LONG_LIST = (
    200  # classes from which a recommend runs in the long lane (a cold 5,000 takes a minute)
)


# what every page's answer depends on, read in one statement (so from one state of the file)
class BadRequest(MllzooError):
    """Input the page refuses (HTTP 400)."""


class NotFound(MllzooError):
    """An unknown model id or synset (HTTP 404)."""


MAX_SEARCH = 200  # characters of a concept search kept


class Busy(MllzooError):
    """The registry kept changing while a request read it (HTTP 503: try again)."""


def plain_text(value: str, what: str) -> str:
    """``value`` stripped, refused (one line) when it holds a character class names may not hold."""
    problem = unsafe_character(value)
    if problem:
        raise BadRequest(f"{what} contains {problem}; it must be plain text")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{what} is longer than {MAX_TEXT} characters")
    return value.strip()


def whole_number(value: str | None, what: str, low: int, high: int) -> int | None:
    """An optional whole number within ``[low, high]``; empty means not given."""
    if value is None or not value.strip():
        return None
    digits = value.strip()
    # ASCII digits only (str.isdigit also takes "²", "١" and "１"), no longer than the bound needs
    if (
        not digits.isascii()
        or not digits.isdigit()
        or len(digits) > len(str(high))
        or not low <= int(digits) <= high
    ):
        raise BadRequest(f"{what} must be a whole number from {low} to {high}, not {digits[:20]!r}")
    return int(digits)


def max_models_field(value: str | None) -> int | None:
    """The form's max models: empty means the default, 0 means no limit (as ``--max-models 0``)."""
    given = whole_number(value, "max models", 0, 10_000)
    return MAX_MODELS if given is None else model_budget(given)


@dataclass
class RecommendInput:
    classes: list[str]
    domain: str | None = None
    task: str | None = None
    k: int = K
    max_models: int | None = MAX_MODELS  # None: no limit
    skip_damaged: bool = False
    include_uninstalled: bool = False

    @classmethod
    def parse(
        cls, fields: dict[str, str], class_file: tuple[str, bytes] | None = None
    ) -> RecommendInput:
        """The form's fields (and an uploaded class file, ``(name, bytes)``), checked as the CLI checks a
        class file (:func:`mllzoo.classes.parse_classes`: UTF-8, no control character, no duplicate, at
        most :data:`~mllzoo.classes.MAX_CLASSES`)."""
        if class_file is not None and class_file[1].strip():
            name = plain_text(Path(class_file[0] or "upload").name, "the file name") or "upload"
            names = parse_classes(class_file[1], f"uploaded file {name}")
        else:
            names = parse_classes((fields.get("classes") or "").encode("utf-8"), "the class list")
        return cls(
            names,
            plain_text(fields.get("domain") or "", "the domain") or None,
            plain_text(fields.get("task") or "", "the task") or None,
            whole_number(fields.get("k"), "k", 1, MAX_K) or K,
            max_models_field(fields.get("max_models")),
            (fields.get("skip_damaged") or "") not in ("", "0"),
            (fields.get("include_uninstalled") or "") not in ("", "0"),
        )

    def query(self) -> dict[str, str]:
        """The URL parameters that give this input back (a shared link)."""
        out = {"classes": "\n".join(self.classes)}
        for name, value in (
            ("domain", self.domain),
            ("task", self.task),
            ("k", self.k if self.k != K else None),
            ("max_models", None if self.max_models == MAX_MODELS else self.max_models or 0),
            ("skip_damaged", "1" if self.skip_damaged else None),
            ("include_uninstalled", "1" if self.include_uninstalled else None),
        ):
            if value is not None:
                out[name] = str(value)
        return out


class Zoo:
    """One registry, opened read-only and followed as it changes (module docstring); ``immutable``
    (a file served as one nobody writes) opens it without locks, so nothing is left beside it, and
    follows it by the file's identity alone."""

    def __init__(self, path: str | Path, immutable: bool = False):
        self.path = Path(path).resolve()  # once: the file a link names, its journal beside it
        self.immutable = immutable
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="mllzoo-web")
        self._registry = None
        self._file: tuple | None = None  # the file's identity when the registry was opened
        self._signature: tuple | None = None  # the contents the caches below were computed from
        self._cache = None  # the user embedding cache outlives a selector
        self._graph = None
        self._selector = None
        self._notice: tuple[str] | None = None
        self._children: list[list[int]] | None = None
        self._branches: list[tuple[int, np.ndarray]] | None = None
        self._tables: dict[
            tuple[str, str | None], tuple[np.ndarray, np.ndarray] | DamagedLabelError
        ] = {}
        self._cards: dict[str, dict] = {}

    def run(self, fn, *args, token: threading.Event | None = None):
        """``fn(*args)`` on the zoo's worker thread, on the registry's current state (a future:
        ``asyncio.wrap_future`` awaits it); setting ``token`` stops it at its next checkpoint."""
        return self._worker.submit(self._current, token or threading.Event(), fn, *args)

    def _current(self, token: threading.Event, fn, *args):
        with cancellable(token):
            return self._consistent(fn, *args)

    def _consistent(self, fn, *args):
        for _ in range(CHANGED_TRIES):
            seen = self._follow()
            try:
                result = fn(*args)
            except sqlite3.DatabaseError:
                if self._file_identity() == self._file:
                    raise
                self._reopen()  # an immutable read of a file written meanwhile: read it again
                continue
            if self._unchanged(seen):
                return result
        raise Busy(
            f"the registry changed {CHANGED_TRIES} times while this request read it: try again"
        )

    def _file_identity(self) -> tuple:
        """The registry file's and its journal's identity, size and change time."""
        found: list[tuple | None] = []
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                st = os.stat(path)
                found.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            except FileNotFoundError:
                found.append(None)
        return tuple(found)

    def _follow(self) -> tuple:
        """Reopen a replaced or (for an immutable connection) rewritten file, and forget what was
        computed from contents that changed since; the contents' signature."""
        identity = self._file_identity()
        if self._registry is not None and identity != self._file:
            same_file = self._file is not None and identity[0][:2] == self._file[0][:2]
            if not same_file or self._registry.immutable_connection:
                self._reopen()
        self._file = identity
        signature = self._read_signature()
        if signature != self._signature:
            self._forget()
            self._signature = signature
        return signature

    def _unchanged(self, seen: tuple) -> bool:
        """Whether the registry is as it was when the request began: an immutable connection cannot
        see a change, so the file's identity tells; a locking one reads the signature again."""
        if self.registry.immutable_connection:
            return self._file_identity() == self._file
        return self._read_signature() == seen

    def _read_signature(self) -> tuple:
        return self.registry.change_signature()

    def _reopen(self) -> None:
        if self._registry is not None:
            self._registry.close()
        self._registry = None
        self._file = self._file_identity()
        self._forget()

    def _forget(self) -> None:
        """Drop everything computed from the registry's contents (they changed)."""
        self._graph = None
        self._selector = None
        self._children = None
        self._branches = None
        self._tables = {}
        self._cards = {}

    def close(self) -> None:
        def shut():
            if self._registry is not None:
                self._registry.close()

        self._worker.submit(shut).result()
        self._worker.shutdown()

    # loaded once, on the worker thread -----------------------------------------------------------
    @property
    def registry(self):
        assert threading.current_thread().name.startswith("mllzoo-web"), (
            "registry calls run on the worker"
        )
        if self._registry is None:
            from mllzoo.store.registry import Registry

            self._registry = Registry(
                self.path, create=False, write=False, read_only=True, immutable=self.immutable
            )
        return self._registry

    @property
    def graph(self):
        if self._graph is None:
            from mllzoo.graph.concept_graph import load_graph

            self._graph = load_graph(
                self.registry, images=False
            )  # nodes and samples, not image hashes
        return self._graph

    @property
    def selector(self):
        if self._selector is None:
            from mllzoo.selection.recommend import Selector
            from mllzoo.store.usercache import EmbeddingCache

            self._cache = self._cache or EmbeddingCache()
            self._selector = Selector(self.registry, cache=self._cache)
        return self._selector

    @property
    def children(self) -> list[list[int]]:
        if self._children is None:
            children: list[list[int]] = [[] for _ in self.graph.nodes]
            for node in self.graph.nodes:
                for parent in node.parents:
                    children[parent].append(node.idx)
            self._children = children
        return self._children

    def subtree(self, root: int) -> np.ndarray:
        """The node and all its descendants, sorted."""
        seen, stack = set(), [root]
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.children[n])
        return np.array(sorted(seen), dtype=np.int64)

    @property
    def branches(self) -> list[tuple[int, np.ndarray]]:
        """The graph's top-level branches with their nodes: from the roots' children down, the branch with
        the most nodes is split into its children until none holds more than :data:`BRANCH_SHARE` of the
        graph (or there are :data:`MAX_BRANCHES`). A node under two branches counts in both."""
        if self._branches is None:
            roots = [n.idx for n in self.graph.nodes if not n.parents]
            tops = sorted({c for r in roots for c in self.children[r]}) or roots
            found = {n: self.subtree(n) for n in tops}
            while len(found) < MAX_BRANCHES:
                biggest = max(found, key=lambda n: (len(found[n]), -n))
                split = [c for c in self.children[biggest] if c not in found]
                if (
                    len(found[biggest]) <= BRANCH_SHARE * len(self.graph.nodes)
                    or not split
                    or len(found) - 1 + len(split) > MAX_BRANCHES
                ):
                    break
                del found[biggest]
                found.update({c: self.subtree(c) for c in split})
            self._branches = sorted(
                found.items(), key=lambda item: self.graph.nodes[item[0]].name.lower()
            )
        return self._branches

    def labeled(self) -> list[str]:
        return sorted(self.registry.labeled_model_ids(self.graph.id))

    @property
    def notice(self) -> str | None:
        """The demo-registry line (:func:`mllzoo.selection.demo.demo_notice`) every page shows."""
        if self._notice is None:
            from mllzoo.selection.demo import demo_notice

            metadata = {row["id"]: row["metadata"] for row in self.registry.models()}
            self._notice = (demo_notice(self.labeled(), metadata) or "",)
        return self._notice[0] or None

    def table(self, model_id: str) -> tuple[np.ndarray, np.ndarray] | DamagedLabelError:
        """Per node, the model's accuracy (NaN without samples) and readable sample count; computed once per
        label (keyed by when it was made) and kept; a damaged label gives its error instead."""
        from mllzoo.evaluation.model_card import concept_accuracy

        key = (model_id, self.registry.label_created(model_id, self.graph.id))
        if key not in self._tables:
            try:
                label, _ = self.registry.label(model_id, self.graph.id, self.graph.samples)
                self._tables[key] = concept_accuracy(
                    label, self.graph.samples, len(self.graph.nodes)
                )
            except DamagedLabelError as error:
                self._tables[key] = error
        return self._tables[key]

    def node_index(self, synset: str) -> int:
        for node in self.graph.nodes:
            if synset in (node.synset, node.wnid):
                return node.idx
        from mllzoo.graph.names import search

        found = search(self.graph, synset, 3)
        wanted = synset.strip().lower()
        exact = [n for n, _ in found if self.graph.nodes[n].name.lower() == wanted]
        named = [self.graph.nodes[n].synset for n in exact or [n for n, _ in found]]
        from mllzoo.errors import did_you_mean

        hint = (
            f" (did you mean {' or '.join(named)}?)"
            if named
            else did_you_mean(synset, [n.synset for n in self.graph.nodes])
        )
        raise NotFound(f"no concept {synset!r} in this registry's graph{hint}")

    def concept_ref(self, n: int) -> dict:
        node = self.graph.nodes[n]
        return {"synset": node.synset, "name": node.name}

    def branch_accuracy(self, table: tuple[np.ndarray, np.ndarray]) -> list[dict]:
        """Per top-level branch: the share of its nodes' readable samples the model ranks first."""
        accuracy, counts = table
        first = np.rint(np.nan_to_num(accuracy) * counts)
        rows = []
        for root, nodes in self.branches:
            total = int(counts[nodes].sum())
            rows.append(
                {
                    **self.concept_ref(root),
                    "nodes": int(len(nodes)),
                    "samples": total,
                    "accuracy": round(float(first[nodes].sum() / total), 6) if total else None,
                }
            )
        return rows

    # pages (each a JSON-ready dict; called on the worker thread) ------------------------------------
    def overview(self) -> dict:
        """The registry at a glance; each model's figures are weighed against the other labeled models
        (best on how many concepts, its accuracy as a share of the best's), since accuracy over
        thousands of concepts reads as near zero without a yardstick."""
        models: list[dict[str, Any]] = []
        tables = {}
        for model_id in self.labeled():
            table = self.table(model_id)
            if isinstance(table, DamagedLabelError):
                models.append({"id": model_id, "damaged": str(table)})
                continue
            tables[model_id] = table
            accuracy, counts = table
            first = np.rint(np.nan_to_num(accuracy) * counts)
            models.append(
                {"id": model_id, "accuracy": round(float(first.sum() / max(counts.sum(), 1)), 6)}
            )
        figures = weighed(tables)
        for row in models:
            row.update(figures.get(row["id"], {}))
        return {
            "registry": self.path.name,
            **({"notice": self.notice} if self.notice else {}),
            "graph": self.graph.id,
            "nodes": len(self.graph.nodes),
            "models": models,
            "branches": [
                {**self.concept_ref(root), "nodes": int(len(nodes))}
                for root, nodes in self.branches
            ],
        }

    def recommend(self, given: RecommendInput) -> dict:
        """Exactly what ``mllzoo recommend --json`` prints for the same input (its candidates and selector)."""
        from mllzoo.selection.candidates import candidate_models

        selector = self.selector
        pool = candidate_models(
            selector.model_ids, self.registry, include_uninstalled=given.include_uninstalled
        )
        result = selector.recommend(
            given.classes,
            given.domain,
            given.task,
            k=given.k,
            max_models=given.max_models,
            models=pool,
            skip_damaged=given.skip_damaged,
        )
        while (
            len(selector._description_vectors) > KEPT_CLASS_LISTS
        ):  # oldest first: the Selector keeps every list
            selector._description_vectors.pop(next(iter(selector._description_vectors)))
        data = result.to_dict()
        glosses = {node.synset: node.definition for node in self.graph.nodes}
        return {
            "document": data,
            "glosses": {
                n["synset"]: glosses[n["synset"]] for row in data["classes"] for n in row["nodes"]
            },
        }

    def model(self, model_id: str) -> dict:
        """:func:`mllzoo.evaluation.model_card.model_card` plus accuracy per top-level branch (or why there is none)."""
        from mllzoo.evaluation.model_card import model_card
        from mllzoo.models.vlm import MODEL_ID

        if not MODEL_ID.match(model_id):
            full = [m for m in self.labeled() if m.split("/", 1)[-1] == model_id]
            hint = f" (did you mean {' or '.join(full)}?)" if full else ""
            raise NotFound(f"{model_id!r} is not a model id (family/arch.tag){hint}")
        if model_id not in self._cards:
            try:
                card = model_card(self.registry, model_id, graph=self.graph)
            except DamagedLabelError as error:
                card = {"id": model_id, "labeled": True, "damaged": str(error)}
            except MllzooError as error:
                raise NotFound(str(error)) from None
            self._cards[model_id] = card
        card = dict(self._cards[model_id])
        if card.get("labeled") and "damaged" not in card:
            table = self.table(model_id)
            if isinstance(table, DamagedLabelError):
                card["damaged"] = str(table)
            else:
                card["branches"] = self.branch_accuracy(table)
        if "damaged" in card and "metadata" not in card:
            from mllzoo.models.status import model_status
            from mllzoo.store.user_models import known_models

            row = self.registry.model(model_id) or {}
            status = model_status(model_id, row.get("plugin"), known_models())
            card.update(
                {k: row.get(k) for k in ("family", "plugin", "plugin_version")},
                metadata=row.get("metadata") or {},
                installed=status.runs,
                plugin_installed=status.plugin_installed,
                availability=status.text(),
            )
        return card

    def concept(self, synset: str) -> dict:
        n = self.node_index(synset)
        node = self.graph.nodes[n]
        ranked: list[dict[str, Any]] = []
        damaged: list[str] = []
        for model_id in self.labeled():
            table = self.table(model_id)
            if isinstance(table, DamagedLabelError):
                damaged.append(str(table))
                continue
            accuracy, counts = table
            ranked.append(
                {
                    "id": model_id,
                    "samples": int(counts[n]),
                    "accuracy": None if np.isnan(accuracy[n]) else round(float(accuracy[n]), 6),
                }
            )
        ranked.sort(key=lambda m: (m["accuracy"] is None, -(m["accuracy"] or 0), m["id"]))
        return {
            "synset": node.synset,
            "wnid": node.wnid,
            "name": node.name,
            "gloss": node.definition,
            "depth": node.depth,
            "parents": [self.concept_ref(p) for p in node.parents],
            "children": sorted(
                (self.concept_ref(c) for c in self.children[n]), key=lambda c: c["name"].lower()
            ),
            "models": ranked,
            "damaged": damaged,
        }

    def concepts(self, query: str) -> dict:
        """The web twin of ``mllzoo concepts QUERY`` (:func:`mllzoo.text.concept_search.find_concepts`)."""
        from mllzoo.text.concept_search import find_concepts

        query = plain_text(query, "the search")[:MAX_SEARCH]
        return {"query": query, "concepts": find_concepts(self.registry, query, graph=self.graph)}

    def compare(self, model_ids: list[str]) -> dict:
        if not 2 <= len(model_ids) <= MAX_COMPARE or len(set(model_ids)) != len(model_ids):
            raise BadRequest(
                f"name 2 to {MAX_COMPARE} different labeled models, comma-separated "
                f"(models=ID,ID), not {len(model_ids)}"
            )
        labeled = self.labeled()
        unknown = [m for m in model_ids if m not in labeled]
        if unknown:
            from mllzoo.errors import did_you_mean

            raise NotFound(
                f"not labeled in this registry: {', '.join(unknown)}{did_you_mean(unknown[0], labeled)}"
            )
        columns, damaged = {}, []
        for model_id in model_ids:
            table = self.table(model_id)
            if isinstance(table, DamagedLabelError):
                damaged.append(str(table))
            else:
                columns[model_id] = self.branch_accuracy(table)
        branches = [
            {
                **self.concept_ref(root),
                "accuracy": {m: rows[i]["accuracy"] for m, rows in columns.items()},
            }
            for i, (root, _) in enumerate(self.branches)
        ]
        return {"models": list(columns), "branches": branches, "damaged": damaged}


def weighed(tables: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """Per model, figures against the others on the concepts with samples: ``best_on`` (the concepts
    where no other model is more accurate), ``share_of_best`` (its accuracy over the best model's,
    averaged over concepts), ``rank`` (by that share) and ``concepts`` (how many were weighed)."""
    if not tables:
        return {}
    accuracy = np.stack([table[0] for table in tables.values()])
    known = ~np.isnan(accuracy)
    best = np.where(known, accuracy, -1.0).max(axis=0)
    weighed_nodes = best > 0
    share = np.where(
        known & weighed_nodes, np.nan_to_num(accuracy) / np.where(best > 0, best, 1), 0
    )
    mean_share = share[:, weighed_nodes].mean(axis=1) if weighed_nodes.any() else share[:, 0] * 0
    order = np.argsort(-mean_share, kind="stable")
    ranks = np.empty(len(order), int)
    ranks[order] = np.arange(1, len(order) + 1)
    return {
        model_id: {
            "best_on": int((known[i] & weighed_nodes & (accuracy[i] >= best)).sum()),
            "share_of_best": round(float(mean_share[i]), 6),
            "rank": int(ranks[i]),
            "concepts": int(weighed_nodes.sum()),
        }
        for i, model_id in enumerate(tables)
    }


_ZOOS: dict[tuple[str, bool, bool], Zoo] = {}
_LOCK = threading.Lock()


def zoo_for(path: str | Path, immutable: bool = False, long_lane: bool = False) -> Zoo:
    """The :class:`Zoo` of a registry file in this process, in its lane: ``long_lane`` for class
    lists of :data:`LONG_LIST` or more (a link and its target share them)."""
    key = (str(Path(path).resolve()), immutable, long_lane)
    with _LOCK:
        if key not in _ZOOS:
            _ZOOS[key] = Zoo(*key[:2])
        return _ZOOS[key]

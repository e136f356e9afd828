"""Class descriptions: several texts per class name that selection embeds and matches to nodes.

The offline default uses templates with the task's domain and task words, plus the WordNet gloss
when the name is a lemma of a node in the registry's graph. The OpenAI captioner asks a chat model
for visual descriptions, as the MLL paper does, and caches them in the registry.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

from mllzoo.classes import display_name
from mllzoo.errors import MllzooError
from mllzoo.graph.concept_graph import caption
from mllzoo.store.registry import Registry

CHAT_MODEL = "gpt-4o-mini"


class Captioner(Protocol):
    id: str

    def describe(
        self, names: list[str], domain: str | None, task: str | None
    ) -> list[list[str]]: ...


class TemplateCaptioner:
    """Offline: templates and WordNet glosses from the graph stored in the registry."""

    id = "templates"

    def __init__(self, glosses: dict[str, str]):
        self.glosses = glosses

    def describe(self, names: list[str], domain: str | None, task: str | None) -> list[list[str]]:
        out = []
        for raw in names:
            name = display_name(raw)
            texts = [name, f"a photo of a {name}."]
            if domain:
                texts.append(f"a {name}, a type of {domain}.")
            if task:
                texts.append(f"{name}, in {task}.")
            gloss = self.glosses.get(name.lower())
            if gloss:
                texts.append(caption(name, gloss))
            out.append(texts)
        return out


class OpenAICaptioner:
    """Visual descriptions from an OpenAI chat model, cached per (class, domain, task) in the registry."""

    id = f"openai:{CHAT_MODEL}"

    def __init__(self, registry: Registry):
        self.registry = registry

    def describe(self, names: list[str], domain: str | None, task: str | None) -> list[list[str]]:
        return [self._one(name, domain, task) for name in names]

    def _one(self, raw: str, domain: str | None, task: str | None) -> list[str]:
        key = hashlib.sha1(json.dumps([raw, domain, task]).encode()).hexdigest()
        cached = self.registry.cached_descriptions(self.id, key)
        if cached is not None:
            return cached
        from mllzoo.text.openai_client import client

        name = display_name(raw)
        context = "".join(
            [
                f" The images are {domain}." if domain else "",
                f" The task is {task}." if task else "",
            ]
        )
        response = client().chat.completions.create(
            model=CHAT_MODEL,
            temperature=0,
            messages=[
                {
                    "role": "user",
                    "content": f"Describe what a '{name}' looks like in an image, in 5 short sentences, one per line."
                    f"{context} Do not number the lines.",
                }
            ],
        )
        lines = [
            line.strip(" -*\t") for line in (response.choices[0].message.content or "").splitlines()
        ]
        texts = [name] + [line for line in lines if line]
        self.registry.save_descriptions(self.id, key, raw, texts)
        return texts


def get_captioner(choice: str | None, registry: Registry, glosses: dict[str, str]) -> Captioner:
    """``templates`` or ``openai``: the ``choice`` given, else the ``captioner`` setting (``mllzoo config``).

    Never chosen by the environment: an ``OPENAI_API_KEY`` alone does not switch to the paid captioner.
    """
    from mllzoo.store.config import setting

    choice = choice or setting("captioner")
    if choice == "templates":
        return TemplateCaptioner(glosses)
    if choice == "openai":
        from mllzoo.text.openai_client import check_ready

        check_ready("the openai captioner")
        return OpenAICaptioner(registry)
    raise MllzooError(f"unknown captioner {choice!r}: use templates or openai")

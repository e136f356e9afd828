"""A Datasette plugin over an mllzoo registry: recommend, model, concept and compare pages, each with a
JSON twin. Found through Datasette's entry-point group ``datasette`` (``pip install 'mllzoo[web]'``), so
``datasette registry.db`` shows the pages under ``/-/mllzoo``; ``mllzoo serve`` starts Datasette on the
registry, read-only. Either way the pages follow the registry as it changes (:mod:`mllzoo.web.zoo`).

The pages' data comes from :mod:`mllzoo.web.zoo` (no Datasette there); this module parses requests,
bounds them, and renders. User errors are one line on the page (or ``{"ok": false, "error": ...}``).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode

from datasette import hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup

from mllzoo.defaults import MAX_K, MAX_MODELS, K
from mllzoo.errors import DamagedLabelError, MllzooError
from mllzoo.output import json_text
from mllzoo.web.svg import bar_chart
from mllzoo.web.zoo import (
    LONG_LIST,
    MAX_REQUEST_BYTES,
    BadRequest,
    Busy,
    NotFound,
    RecommendInput,
    zoo_for,
)

PREFIX = "/-/mllzoo"
MAX_QUERY_BYTES = (
    32 * 1024
)  # servers and browsers refuse longer URLs anyway; long lists go as a POSTed file
NESTED_MULTIPART = re.compile(rb"(?im)^content-type:[ \t]*multipart/")  # a part's own header
REQUEST_SECONDS = 120.0  # one request's bound, time queued behind others included
SHARE_LINK_LIMIT = 8000  # longer inputs are not offered as a link: servers refuse very long URLs


class TooLarge(MllzooError):
    """A request over :data:`MAX_REQUEST_BYTES` (HTTP 413)."""


class TimedOut(MllzooError):
    """A request that waited or ran past :data:`REQUEST_SECONDS` (HTTP 503)."""


@hookimpl
def register_routes():
    return [
        (rf"^{PREFIX}/?(?P<format>\.json)?$", index_view),
        (rf"^{PREFIX}/recommend(?P<format>\.json)?$", recommend_view),
        (rf"^{PREFIX}/model/(?P<model_id>[^/]+/[^/]+?)(?P<format>\.json)?$", model_view),
        (rf"^{PREFIX}/model/(?P<model_id>[^/]+?)(?P<format>\.json)?$", model_view),  # no family
        (rf"^{PREFIX}/concept/(?P<synset>.+?)(?P<format>\.json)?$", concept_view),
        (rf"^{PREFIX}/compare(?P<format>\.json)?$", compare_view),
        (rf"^{PREFIX}/concepts(?P<format>\.json)?$", concepts_view),
        (rf"^{PREFIX}/.*?(?P<format>\.json)?$", not_found_view),  # last: what no page matched
    ]


@hookimpl
def startup(datasette):
    """A registry this user cannot write is read immutable, as ``mllzoo serve`` does: a read-only
    reader would leave ``-wal``/``-shm`` files beside it, as read-only as the file, and once it is
    writable again every write would fail on them."""
    from mllzoo.store.registry_file import cannot_leave_journal

    for db in datasette.databases.values():
        if db.path is not None and db.is_mutable and cannot_leave_journal(Path(db.path)):
            db.is_mutable = False


@hookimpl
def skip_csrf(scope):
    """The recommend form's POST (a class file upload) changes nothing, so it needs no CSRF token; and
    asgi-csrf 0.11 cannot parse multipart bodies with python-multipart 0.0.34 (a 500 before any plugin runs)."""
    return scope.get("type") == "http" and scope.get("path") in (
        f"{PREFIX}/recommend",
        f"{PREFIX}/recommend.json",
    )


@hookimpl
def extra_template_vars(datasette):
    """``mllzoo_notice``: the demo-registry line the pages show above their content."""

    async def notice():
        try:
            zoo = await registry_zoo(datasette)
            work = asyncio.wrap_future(zoo.run(lambda: zoo.notice))  # on the zoo's one worker
            return {"mllzoo_notice": await asyncio.wait_for(work, REQUEST_SECONDS)}
        except (
            MllzooError,
            sqlite3.Error,
            TimeoutError,
        ):  # the page says what is wrong, in one line
            return {}

    return notice


@hookimpl
def menu_links(datasette):
    return [{"href": datasette.urls.path(PREFIX), "label": "Model zoo (mllzoo)"}]


async def registry_zoo(datasette, long_lane: bool = False):
    """The zoo of the served registry (in the long lane, for long class lists): the database the plugin
    setting ``database`` names, else the first attached one that is an mllzoo registry; opened immutable
    where Datasette serves it so."""
    wanted = (datasette.plugin_config("mllzoo") or {}).get("database")
    for name, db in datasette.databases.items():
        if db.path is None or (wanted and name != wanted):
            continue
        tables = set(await db.table_names())
        if {"_sqlite_migrations", "labels", "nodes"} <= tables:  # any schema: an old one says so
            return zoo_for(db.path, immutable=not db.is_mutable, long_lane=long_lane)
    raise NotFound(
        f"no database named {wanted!r} is an mllzoo registry"
        if wanted
        else "none of the served databases is an mllzoo registry (datasette registry.db)"
    )


async def on_worker(request, zoo, fn, *args):
    """``fn(*args)`` on the zoo's one worker, within :data:`REQUEST_SECONDS`: past it the answer is a
    503, and work not started yet (queued behind another request) never runs; nor does it once the
    client has gone. Work already running is cancelled: it stops at its next checkpoint."""
    token = threading.Event()
    future = zoo.run(fn, *args, token=token)
    work = asyncio.wrap_future(future)
    gone = asyncio.ensure_future(client_gone(request))
    try:
        done, _ = await asyncio.wait(
            {work, gone}, timeout=REQUEST_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
    if work in done:
        return work.result()
    token.set()
    future.cancel()
    work.cancel()
    raise TimedOut(
        f"this request waited or ran longer than {REQUEST_SECONDS:.0f} s (the server is busy): "
        f"try again, or send fewer classes"
    )


async def client_gone(request) -> None:
    """Returns once the client has disconnected (the request's body has been read already)."""
    while True:
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            return


async def form_fields(request) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """The query string's fields, or a POSTed form's (urlencoded or multipart with a ``class_file``),
    never reading more than :data:`MAX_REQUEST_BYTES`."""
    if len(request.query_string) > MAX_QUERY_BYTES:
        raise TooLarge(
            f"the URL is longer than {MAX_QUERY_BYTES // 1024} KB: upload the class list as a file"
        )
    if request.method != "POST":
        return utf8_fields(request.query_string), None
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise TooLarge(f"the request is larger than {MAX_REQUEST_BYTES // 1024} KB")
    body = b""
    more = True
    while more:
        message = await request.receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_REQUEST_BYTES:
            raise TooLarge(f"the request is larger than {MAX_REQUEST_BYTES // 1024} KB")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await asyncio.to_thread(multipart_fields, content_type, body)  # off the event loop
    try:
        return utf8_fields(body.decode("utf-8")), None
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None


def utf8_fields(query: str) -> dict[str, str]:
    """A query string's fields; percent-encoded bytes that are not UTF-8 (``caf%E9``) are refused, as
    the CLI and an upload refuse such a class list, never read as U+FFFD."""
    try:
        return dict(parse_qsl(query, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise BadRequest(
            "the form is not UTF-8 (a percent-encoded byte of another encoding)"
        ) from None


def multipart_fields(
    content_type: str, body: bytes
) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """A multipart form's fields and its ``class_file``; a part that is itself multipart is refused
    before parsing (the form has one level: nesting only makes the parser recurse)."""
    if NESTED_MULTIPART.search(body):
        raise BadRequest("a form part is itself multipart: send one flat multipart/form-data form")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    )
    fields: dict[str, str] = {}
    upload = None
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        name = (
            name if isinstance(name, str) else None
        )  # a malformed RFC 2231 value comes as a tuple
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "class_file":
            upload = (part.get_filename() or "", data)
        elif name:
            try:
                fields[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"form field {name[:40]!r} is not UTF-8") from None
    return fields, upload


async def not_found_view(datasette, request):
    """Every path under the prefix that no page matches: a 404 in the pages' own form (Datasette's
    handler would render it with ``rich`` outside an exception, a 500)."""

    async def build():
        raise NotFound(f"no mllzoo page at {request.path[:200]}")

    return await respond(
        datasette, request, request.url_vars.get("format"), "mllzoo_index.html", build
    )


def status_of(error: MllzooError) -> int:
    if isinstance(error, TooLarge):
        return 413
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, DamagedLabelError):
        return 409
    if isinstance(error, (Busy, TimedOut)):
        return 503
    return 400


async def respond(datasette, request, fmt, template, build, context=None):
    """Run ``build()`` (a coroutine giving ``(json_data, page_context)``); answer JSON for ``.json``, else the
    page; a user error is one line either way."""
    try:
        data, page = await build()
        status, error = 200, None
    except MllzooError as exc:
        status, error, data, page = status_of(exc), str(exc), None, {}
        if isinstance(exc, DamagedLabelError):
            error += " (or tick \u201cskip damaged labels\u201d)"
    if fmt:
        body = (
            json_text(data)
            if error is None
            else json_text({"ok": False, "error": error, "status": status})
        )
        return Response(body, status=status, content_type="application/json; charset=utf-8")
    html = await datasette.render_template(
        [template],
        {
            "error": error,
            "prefix": datasette.urls.path(PREFIX),
            "json_url": json_url(request),
            **(context or {}),
            **page,
        },
        request=request,
    )
    return Response.html(html, status=status)


def json_url(request) -> str:
    path = request.path.rstrip("/") or request.path
    return path + ".json" + (f"?{request.query_string}" if request.query_string else "")


async def index_view(datasette, request):
    async def build():
        zoo = await registry_zoo(datasette)
        data = await on_worker(request, zoo, zoo.overview)
        return data, {"data": data}

    return await respond(
        datasette, request, request.url_vars.get("format"), "mllzoo_index.html", build
    )


async def recommend_view(datasette, request):
    fmt = request.url_vars.get("format")
    context = {"given": {}, "k_max": MAX_K, "k_default": K, "max_models_default": MAX_MODELS}

    async def build():
        fields, upload = await form_fields(request)
        context["given"] = {
            k: fields.get(k, "")
            for k in (
                "classes",
                "domain",
                "task",
                "k",
                "max_models",
                "skip_damaged",
                "include_uninstalled",
            )
        }
        if not (fields.get("classes", "").strip() or (upload and upload[1].strip())):
            if fmt or request.method == "POST" or "classes" in fields:
                raise BadRequest(
                    "no classes given: paste class names, one per line, or upload a class file"
                )
            return None, {"result": None}
        given = RecommendInput.parse(fields, upload)
        context["given"]["classes"] = "\n".join(given.classes)
        zoo = await registry_zoo(datasette, long_lane=len(given.classes) >= LONG_LIST)
        found = await on_worker(request, zoo, zoo.recommend, given)
        share = f"{datasette.urls.path(PREFIX)}/recommend?{urlencode(given.query())}"
        return found["document"], {
            "result": found["document"],
            "glosses": found["glosses"],
            "share_url": share if len(share) <= SHARE_LINK_LIMIT else None,
            "json_share_url": share.replace("/recommend?", "/recommend.json?", 1)
            if len(share) <= SHARE_LINK_LIMIT
            else None,
        }

    return await respond(datasette, request, fmt, "mllzoo_recommend.html", build, context)


async def model_view(datasette, request):
    model_id, fmt = unquote(request.url_vars["model_id"]), request.url_vars.get("format")

    async def build():
        zoo = await registry_zoo(datasette)
        card = await on_worker(request, zoo, zoo.model, model_id)
        branches = card.get("branches") or []
        chart = (
            Markup(
                bar_chart(
                    [(b["name"], [b["accuracy"]]) for b in branches],
                    [card["id"]],
                    f"accuracy of {card['id']} per top-level branch",
                )
            )
            if branches
            else None
        )
        others = [m for m in await on_worker(request, zoo, zoo.labeled) if m != card["id"]]
        return card, {"card": card, "chart": chart, "others": others}

    return await respond(datasette, request, fmt, "mllzoo_model.html", build)


async def concept_view(datasette, request):
    synset, fmt = unquote(request.url_vars["synset"]), request.url_vars.get("format")

    async def build():
        zoo = await registry_zoo(datasette)
        data = await on_worker(request, zoo, zoo.concept, synset)
        return data, {"concept": data}

    return await respond(datasette, request, fmt, "mllzoo_concept.html", build)


async def concepts_view(datasette, request):
    """The graph's concepts found by name, lemma, id, gloss or meaning (``mllzoo concepts``)."""
    fmt = request.url_vars.get("format")

    async def build():
        fields, _ = await form_fields(request)
        if not (fields.get("q") or "").strip() and not fmt:
            return None, {"found": None}
        zoo = await registry_zoo(datasette)
        found = await on_worker(request, zoo, zoo.concepts, fields.get("q") or "")
        return found, {"found": found}

    return await respond(datasette, request, fmt, "mllzoo_concepts.html", build)


async def compare_view(datasette, request):
    fmt = request.url_vars.get("format")
    context = {"given": ""}

    async def build():
        fields, _ = await form_fields(request)
        given = fields.get("models", "")
        context["given"] = given
        zoo = await registry_zoo(datasette)
        overview = await on_worker(request, zoo, zoo.overview)
        context["labeled"] = [m["id"] for m in overview["models"]]
        ids = [part.strip() for part in given.split(",") if part.strip()]
        if not ids and not fmt and "models" not in fields:
            return None, {"data": None}
        data = await on_worker(request, zoo, zoo.compare, ids)
        chart = (
            Markup(
                bar_chart(
                    [
                        (b["name"], [b["accuracy"][m] for m in data["models"]])
                        for b in data["branches"]
                    ],
                    data["models"],
                    "accuracy per top-level branch",
                )
            )
            if data["models"]
            else None
        )
        return data, {"data": data, "chart": chart}

    return await respond(datasette, request, fmt, "mllzoo_compare.html", build, context)

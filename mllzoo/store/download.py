"""Ranged, verified downloads through the standard library: what ``mllzoo labels pull`` fetches.

A source is an ``http://`` or ``https://`` URL, a ``file://`` URL or a local path. A file is fetched
into ``<sha256>.partial`` in the download folder; an interrupted download leaves that file behind and
the next run asks the server for the rest (HTTP ``Range``). Reading stops at the size the index
declares, and the file becomes ``<sha256>.verified`` (linked where the caller asked) only once its size
and SHA-256 match, so nothing unverified is ever opened by the importer. Every socket operation is
bounded by ``timeout``; at most :data:`MAX_REDIRECTS` redirects are followed, never from ``https`` down
to ``http``, and credentials given in a URL (``user:password@``) go to that host only, never through a
redirect."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

from mllzoo.defaults import DOWNLOAD_TIMEOUT
from mllzoo.errors import MllzooError
from mllzoo.store.usercache import CACHE_ENV

MAX_REDIRECTS = 5  # a hub's resolve URL redirects once to its CDN; more is a loop or a trap
CHUNK = 1 << 20  # a read per MB: the Python loop costs little against the bytes


class DownloadError(MllzooError):
    """A download that failed or did not match what the index declares: one line naming it."""


def without_credentials(url: str) -> str:
    """``url`` as it may be shown and stored: no ``user:password@``, no query string, no fragment (where
    signed URLs carry their tokens)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def download_dir() -> Path:
    """Where downloads wait to be verified and imported: ``$MLLZOO_CACHE_DIR/downloads``, else the user
    cache folder's."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / "downloads"
    import platformdirs

    return Path(platformdirs.user_cache_dir("mllzoo")) / "downloads"


def local_path(source: str) -> Path | None:
    """The path a ``file://`` URL or a plain path names; ``None`` for an HTTP URL."""
    parts = urlsplit(source)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme in ("http", "https"):
        return None
    if len(parts.scheme) > 1:  # (a one-letter scheme is a Windows drive)
        raise DownloadError(
            f"{source}: only https://, http://, file:// URLs and local folders can be read"
        )
    return Path(source)


def read_bytes(url: str, limit: int, timeout: float = DOWNLOAD_TIMEOUT) -> bytes:
    """The whole content of ``url``, refused once it passes ``limit`` bytes."""
    with _opened(url, 0, timeout) as (stream, _):
        data = _read(stream, url, limit + 1, timeout)
    if len(data) > limit:
        raise DownloadError(f"{without_credentials(url)} is larger than {limit:,} bytes; refused")
    return data


def fetch(
    url: str,
    size: int,
    sha256: str,
    into: Path,
    timeout: float = DOWNLOAD_TIMEOUT,
    progress: bool | None = None,
) -> Path:
    """Make ``into`` the verified copy of ``url`` (``size`` bytes with this ``sha256``): downloaded,
    resumed, or the one a run before left in the download folder (which stays there until
    :func:`discard`, so a failed run's complete files are not fetched again).

    One process at a time works on a file (a lock beside it). ``progress`` ``None`` shows a bar only on
    a terminal. A file larger than ``size``, or with other content, is deleted and refused; an
    interrupted one is kept for the next run."""
    folder = download_dir()
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / f"{sha256}.verified"
    with _locked(folder / f"{sha256}.lock"):
        if not (done.is_file() and _sha256(done).hexdigest() == sha256):
            _verified(url, size, sha256, folder / f"{sha256}.partial", done, timeout, progress)
        with contextlib.suppress(FileNotFoundError):
            into.unlink()
        try:
            os.link(done, into)  # another run may discard ``done``: this name stays
        except OSError:
            shutil.copyfile(done, into)
    return into


def discard(sha256: str) -> None:
    """Forget the verified download of ``sha256`` (once imported); runs that linked it keep their copy."""
    folder = download_dir()
    with _locked(folder / f"{sha256}.lock"):
        with contextlib.suppress(FileNotFoundError):
            (folder / f"{sha256}.verified").unlink()


def _verified(
    url: str,
    size: int,
    sha256: str,
    partial: Path,
    done: Path,
    timeout: float,
    progress: bool | None,
) -> None:
    """Download (or resume) ``url`` into ``partial`` and rename it ``done`` once its SHA-256 matches."""
    for _ in range(2):  # a resumed prefix that was already wrong: once more from the start
        resumed = partial.stat().st_size if partial.is_file() else 0
        if resumed > size:
            partial.unlink()
            resumed = 0
        if resumed == size and _sha256(partial).hexdigest() == sha256:  # complete, not yet renamed
            os.replace(partial, done)
            return
        if _download(url, partial, resumed, size, timeout, progress) == sha256:
            os.replace(partial, done)
            return
        partial.unlink()
        if not resumed:
            break
    raise DownloadError(
        f"{without_credentials(url)}: its SHA-256 differs from the index's {sha256[:12]}...: the file "
        f"is not the one the index lists; nothing was imported"
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (POSIX ``flock``; where there is none, no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent pulls of one file are not serialised there
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(
    url: str, partial: Path, start: int, size: int, timeout: float, progress: bool | None
) -> str:
    """Append the bytes of ``url`` from ``start`` to ``partial``, at most up to ``size``; the SHA-256 of
    the whole file, computed as it is written (the kept prefix read once)."""
    from tqdm import tqdm

    shown = without_credentials(url)
    with _opened(url, start, timeout) as (stream, offset):
        if offset != start:  # the server sent the whole file: start over
            start = 0
        with (
            open(partial, "r+b" if start and partial.exists() else "wb") as out,
            tqdm(
                total=size,
                initial=start,
                unit="B",
                unit_scale=True,
                desc=shown.rsplit("/", 1)[-1][:40],
                disable=None if progress is None else not progress,
                file=sys.stderr,
                leave=False,
            ) as bar,
        ):
            digest = _sha256(partial, start) if start else hashlib.sha256()
            out.seek(start)
            out.truncate()
            got = start
            for chunk in _chunks(stream, url, size - start + 1, timeout):
                if got + len(chunk) > size:
                    out.close()
                    partial.unlink()
                    raise DownloadError(
                        f"{shown} is larger than the {size:,} bytes the index declares (stopped "
                        f"reading there); nothing was imported"
                    )
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    if got < size:
        raise DownloadError(
            f"{shown} ended after {got:,} of its {size:,} bytes; run the same pull again to resume; "
            f"nothing was imported"
        )
    return digest.hexdigest()


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Few redirects, and never from https down to http."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(req.full_url).scheme == "https" and urlsplit(newurl).scheme != "https":
            raise DownloadError(
                f"{without_credentials(req.full_url)} redirects to {without_credentials(newurl)}, "
                f"from https to plain http: refused"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _opened:
    """``with _opened(url, start, timeout) as (stream, offset)``: the body from byte ``offset`` (``start``
    when the source honoured the range, else 0), errors as one :class:`DownloadError` line."""

    def __init__(self, url: str, start: int, timeout: float):
        self.url, self.start, self.timeout = url, start, timeout
        self.stream: BinaryIO | http.client.HTTPResponse | None = None

    def __enter__(self) -> tuple[BinaryIO, int]:
        path = local_path(self.url)
        if path is not None:
            return self._local(path)
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        request = urllib.request.Request(
            urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
            headers={"User-Agent": "mllzoo", "Accept-Encoding": "identity"},
        )
        if parts.username is not None:  # sent to this host only: a redirect does not carry it
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            request.add_unredirected_header(
                "Authorization", "Basic " + base64.b64encode(login.encode()).decode()
            )
        if self.start:
            request.add_header("Range", f"bytes={self.start}-")
        shown = without_credentials(self.url)
        try:
            response = urllib.request.build_opener(_Redirects()).open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and self.start:  # the range is past what the server holds
                self.start = 0
                return self.__enter__()
            if 300 <= exc.code < 400:
                raise DownloadError(
                    f"{shown}: more than {MAX_REDIRECTS} redirects (HTTP {exc.code}); refused"
                ) from None
            raise DownloadError(f"{shown}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _network_error(shown, exc, self.timeout) from None
        self.stream = response
        offset = 0
        if response.status == 206:
            offset = _range_start(response.headers.get("Content-Range", ""))
            if offset != self.start:
                response.close()
                raise DownloadError(
                    f"{shown}: the server answered a range from byte {self.start} with one from "
                    f"{offset}; refused"
                )
        return response, offset

    def _local(self, path: Path) -> tuple[BinaryIO, int]:
        if path.is_dir():
            raise DownloadError(f"{path} is a folder where a file should be; nothing was imported")
        try:
            stream = open(path, "rb")
        except FileNotFoundError:
            raise DownloadError(f"{path} not found") from None
        except OSError as exc:
            raise DownloadError(f"{path} cannot be read ({exc.strerror or exc})") from None
        stream.seek(self.start)
        self.stream = stream
        return stream, self.start

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


def _range_start(content_range: str) -> int:
    """The first byte of ``bytes START-END/TOTAL``; -1 when the header is not one."""
    try:
        unit, rest = content_range.split(" ", 1)
        return int(rest.split("-", 1)[0]) if unit == "bytes" else -1
    except ValueError:
        return -1


def _chunks(stream: BinaryIO, url: str, limit: int, timeout: float) -> Iterator[bytes]:
    """The stream's bytes in chunks, at most ``limit`` of them; a stall or a dropped connection is one line."""
    left = limit
    while left > 0:
        try:
            chunk = stream.read(min(CHUNK, left))
        except (OSError, http.client.HTTPException) as exc:
            raise _network_error(without_credentials(url), exc, timeout) from None
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def _read(stream: BinaryIO, url: str, limit: int, timeout: float) -> bytes:
    return b"".join(_chunks(stream, url, limit, timeout))


def _network_error(shown: str, exc: BaseException, timeout: float) -> DownloadError:
    """The one line for a connection that could not be made, stalled or broke off."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return DownloadError(
            f"{shown}: no answer within {timeout:g} s (the server stopped answering); "
            f"run the same pull again to resume; nothing was imported"
        )
    if isinstance(reason, ConnectionRefusedError):
        return DownloadError(f"{shown}: connection refused (is the server running?)")
    if isinstance(exc, http.client.IncompleteRead) or isinstance(reason, ConnectionError):
        return DownloadError(
            f"{shown}: the connection broke off ({type(reason).__name__}); run the same pull again "
            f"to resume; nothing was imported"
        )
    return DownloadError(f"{shown}: cannot be downloaded ({reason})")


def _sha256(path: Path, limit: int | None = None) -> hashlib._Hash:
    """The SHA-256 object of ``path``'s first ``limit`` bytes (all of them by default)."""
    digest = hashlib.sha256()
    left = path.stat().st_size if limit is None else limit
    with open(path, "rb") as stream:
        while left > 0:
            block = stream.read(min(1 << 20, left))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest

"""cyclone.staticfile: ``StaticFileHandler``, Tornado 6's static file server.

Serve a directory::

    app = cyclone.web.Application([
        (r"/static/(.*)", StaticFileHandler, {"path": "/var/www"}),
    ])

or let the ``static_path`` setting add the routes for ``static_url_prefix``
("/static/"), ``/favicon.ico`` and ``/robots.txt``.

What it does:

* a strong ``Etag`` (the SHA-512 hex digest of the content, 128 characters,
  cached per file; see ``static_hash_cache``), ``Last-Modified``,
  ``Accept-Ranges: bytes``;
* ``If-None-Match`` (weak comparison, ``*``), and when that header is absent
  ``If-Modified-Since``, answer 304;
* one ``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` answers 206 with
  ``Content-Range`` (``bytes=a``, as Tornado reads it, means ``bytes=a-``);
  a range that starts past the end, ``bytes=5-3`` or ``bytes=-0`` answers
  416 with ``Content-Range: bytes */size``, as Tornado does; a range that
  covers the whole file answers 200 (Chrome refuses a 206 there for audio);
  a header we do not understand (another unit, several ranges) is ignored,
  as RFC 9110 allows, and so is a ``Range`` whose ``If-Range`` does not match
  (RFC 9110 §13.1.5; Tornado ignores ``If-Range``);
* a request with a ``v`` argument (``static_url`` adds ``?v=<hash>``) gets a
  ten-year ``Expires``/``Cache-Control``;
* symlinks are followed only when they resolve inside the served directory,
  or inside ``allowed_symlink_directory`` (one directory or a list, which
  replaces the served directory for that check, as in Tornado);
* with ``compress_response`` (or ``gzip``) a compressible 200 response is
  gzipped by the application's output transform under the same rule as any
  other response (a compressible type, 1 KiB or more when sent in one piece;
  ``Vary: Accept-Encoding``; the ETag turns weak; ``Content-Length`` is the
  compressed length, or dropped for a file streamed in pieces); a 206 never
  is (its ``Content-Range`` counts bytes of the file);
* the body is read from disk in 64 KiB pieces and each one is flushed before
  the next is read, so a slow client never makes the server hold the file.

Override points (as in Tornado): ``get_absolute_path``,
``validate_absolute_path``, ``get_content``, ``get_content_version``,
``get_content_size``, ``get_modified_time``, ``get_content_type``,
``get_cache_time``, ``set_extra_headers``, ``parse_url_path``,
``compute_etag``, ``should_return_304``, ``make_static_url``. Serving from
somewhere other than the filesystem (a dict, a database) takes overriding
``get_absolute_path``, ``validate_absolute_path``, ``get_content``,
``get_content_size`` and ``get_modified_time``; nothing else touches disk.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import mimetypes
import os
import re
import stat
import threading
from typing import Any, Iterable, Iterator

from cyclone.httpserver import StreamClosedError
from cyclone.log import gen_log
from cyclone.web import HTTPError, RequestHandler

__all__ = ["StaticFileHandler"]

_CHUNK_SIZE = 64 * 1024
# RFC 9110 §14.1.2: one byte-range-spec; several (comma separated) are not served.
# The dash is optional because Tornado reads "bytes=7" as "bytes=7-".
_BYTE_RANGE_RE = re.compile(r"(\d*)(-?)(\d*)")


class _Unsatisfiable(Exception):
    """The Range header is valid but selects no byte of the file (416)."""


def _parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive, clipped to ``size``) for a single
    ``bytes=`` range, None when the header should be ignored; raises
    ``_Unsatisfiable`` (416) when the range selects nothing: it starts at or
    past the end, is ``bytes=-0``, or ends before it starts (as Tornado)."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    match = _BYTE_RANGE_RE.fullmatch(spec.strip())
    if match is None:
        return None
    first, dash, last = match.groups()
    if not first:
        if not (dash and last):
            return None  # "bytes=" or "bytes=-"
        suffix = int(last)
        if suffix == 0:
            raise _Unsatisfiable()
        start, end = max(size - suffix, 0), size
    else:
        start = int(first)
        if last:
            if int(last) < start:
                raise _Unsatisfiable()
            end = min(int(last) + 1, size)
        else:
            end = size
    if start >= size:
        raise _Unsatisfiable()
    return start, end


def _parse_http_date(value: str) -> datetime.datetime | None:
    """An HTTP date as an aware UTC datetime, None if it does not parse."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _as_utc(parsed)


def _as_utc(value: datetime.datetime) -> datetime.datetime:
    # naive datetimes (from an overridden get_modified_time, or a "-0000" date) are UTC
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def _inside(root: str, path: str) -> bool:
    """True when ``path`` is ``root`` or below it, after resolving symlinks."""
    return _under(os.path.realpath(root), os.path.realpath(path))


def _under(directory: str, path: str) -> bool:
    """True when ``path`` is ``directory`` or below it, both taken as written."""
    if not directory.endswith(os.path.sep):
        # not for "/": a root of "/" must not become "//"
        directory += os.path.sep
    # the separator added to path lets the directory itself match
    return (path + os.path.sep).startswith(directory)


def _is_regular_file_inside(root: str, path: str) -> bool:
    return "\x00" not in path and _inside(root, path) and os.path.isfile(path)


def _open_regular_file(path: str):
    """``open(path, "rb")`` that refuses, without blocking, anything but a
    regular file: the path may have become a FIFO since it was checked, and
    opening a FIFO for reading waits for a writer forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path!r} is not a regular file")
        # O_NONBLOCK means nothing for a regular file's reads
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class StaticFileHandler(RequestHandler):
    """Serve the files below a directory.

    ``initialize(path, default_filename=None, allowed_symlink_directory=None)``;
    URL spec: ``(r"/static/(.*)", StaticFileHandler, {"path": root})``; the
    group is the file's path relative to ``root``.

    ``allowed_symlink_directory`` (a directory or a list of them; default
    ``path``) is where a requested path may lead once its symlinks are
    resolved. It replaces ``path`` for that check, so a list that should
    still serve the ordinary files must include ``path`` itself. The path
    as written (``../``) must stay below ``path`` whatever this says.
    """

    #: seconds of caching for versioned requests (``?v=``): ten years
    CACHE_MAX_AGE = 86400 * 365 * 10
    #: the largest content ``get_content_version`` hashes: hashing runs on the
    #: reactor thread, so a bigger file gets no version rather than stalling it
    MAX_VERSION_CONTENT_SIZE = 64 * 1024 * 1024
    #: how many versions ``get_version`` keeps; the least recently used goes first
    MAX_CACHED_VERSIONS = 10000

    # content hashes by (class, absolute path), least recently used first: a
    # subclass may hash differently
    _static_hashes: dict[tuple[type, str], str | None] = {}
    _lock = threading.Lock()

    # Per-request state lives on the class as defaults, so that a subclass
    # whose initialize() does not call ours (Jupyter's do not) still works.
    default_filename: str | None = None
    allowed_symlink_directory: str | list[str] | None = None
    #: the URL path after ``parse_url_path`` (set by ``get``)
    path: str | None = None
    #: the validated file path (set by ``get``)
    absolute_path: str | None = None
    #: ``get_modified_time()`` of this request's file
    modified: datetime.datetime | None = None
    # the stat() made by validate_absolute_path, and the path it describes
    _stat_result: os.stat_result | None = None
    _stat_path: str | None = None

    def initialize(
        self,
        path: str,
        default_filename: str | None = None,
        allowed_symlink_directory: str | list[str] | None = None,
    ) -> None:
        self.root = path
        self.default_filename = default_filename
        self.allowed_symlink_directory = allowed_symlink_directory

    # -- class-level API ----------------------------------------------------------------

    @classmethod
    def reset(cls) -> None:
        """Forget every cached content hash (web.py calls this per request when
        ``static_hash_cache`` is False)."""
        with cls._lock:
            # mutate the one shared dict: a subclass's reset() must clear it too
            StaticFileHandler._static_hashes.clear()

    @classmethod
    def make_static_url(cls, settings: dict[str, Any], path: str, include_version: bool = True) -> str:
        """``static_url_prefix + path``, plus ``?v=<SHA-512 hex of the content>``
        when ``include_version`` and the file can be read."""
        url = settings.get("static_url_prefix", "/static/") + path
        if not include_version:
            return url
        version = cls.get_version(settings, path)
        if not version:
            return url
        return f"{url}?v={version}"

    @classmethod
    def get_version(cls, settings: dict[str, Any], path: str) -> str | None:
        """The content version of ``path`` below ``settings["static_path"]``
        (None if unreadable); cached unless ``static_hash_cache`` is False.

        Raises ``HTTPError(403)`` for a path written to leave the static
        root (``../``), from ``get_absolute_path``. None, without opening
        it, for anything on disk but a regular file inside the static root:
        ``static_url()`` of a FIFO, a device or a symlink out of the root
        must neither hang nor read outside the root. A path that is not on
        disk at all (a subclass serving from elsewhere) goes to
        ``get_content_version``.
        """
        root = settings["static_path"]
        absolute_path = cls.get_absolute_path(root, path)
        if isinstance(absolute_path, str) and (
            "\x00" in absolute_path
            or (
                isinstance(root, str)
                and os.path.lexists(absolute_path)
                and not _is_regular_file_inside(root, absolute_path)
            )
        ):
            gen_log.error(
                "Could not open static file %r: it is not a file inside the static directory %r",
                absolute_path, root,
            )
            return None
        if settings.get("static_hash_cache", True) is False:
            return cls._compute_version(absolute_path)
        return cls._get_cached_version(absolute_path)

    @classmethod
    def _get_cached_version(cls, absolute_path: str) -> str | None:
        key = (cls, absolute_path)
        with cls._lock:
            hashes = StaticFileHandler._static_hashes
            if key in hashes:
                hashes[key] = hashes.pop(key)  # now the most recently used
            else:
                version = cls._compute_version(absolute_path)
                while hashes and len(hashes) >= max(cls.MAX_CACHED_VERSIONS, 1):
                    del hashes[next(iter(hashes))]
                hashes[key] = version
            return hashes[key]

    @classmethod
    def _compute_version(cls, absolute_path: str) -> str | None:
        try:
            return cls.get_content_version(absolute_path) or None
        except (OSError, ValueError, HTTPError) as e:
            gen_log.error("Could not open static file %r: %s", absolute_path, e)
            return None
        except Exception:
            gen_log.error("Could not open static file %r", absolute_path, exc_info=True)
            return None

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        """``path`` (relative, from the URL) joined to ``root``, normalised.

        Raises ``HTTPError(403)`` when the result, as written, is not below
        ``root`` (``../``, an absolute path): this is also what keeps
        ``static_url`` from reading outside the root. Symlinks are checked
        by ``validate_absolute_path``. An override may return any string
        its ``get_content`` understands.
        """
        absolute_path = os.path.abspath(os.path.join(root, path))
        if not _under(os.path.abspath(root), absolute_path):
            raise HTTPError(403, "%s is not in root static directory", path)
        return absolute_path

    @classmethod
    def get_content(
        cls, abspath: str, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes] | bytes:
        """The bytes of ``abspath`` from ``start`` to ``end`` (exclusive), as
        an iterator of pieces of at most 64 KiB. An override may return bytes.
        Raises OSError, without blocking, for anything but a regular file."""
        with _open_regular_file(abspath) as f:
            if start is not None:
                f.seek(start)
            remaining = None if end is None else end - (start or 0)
            while remaining is None or remaining > 0:
                want = _CHUNK_SIZE if remaining is None else min(_CHUNK_SIZE, remaining)
                chunk = f.read(want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    @classmethod
    def get_content_version(cls, abspath: str) -> str:
        """The SHA-512 hex digest (128 characters) of ``get_content(abspath)``:
        the ETag and ``?v=``. Raises ValueError for content over
        ``MAX_VERSION_CONTENT_SIZE`` (it then gets no version)."""
        hasher = hashlib.sha512()
        content = cls.get_content(abspath)
        chunks = [content] if isinstance(content, bytes) else content
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > cls.MAX_VERSION_CONTENT_SIZE:
                    raise ValueError(
                        f"content is larger than MAX_VERSION_CONTENT_SIZE ({cls.MAX_VERSION_CONTENT_SIZE} bytes)"
                    )
                hasher.update(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # shut the file now when we stopped early
        return hasher.hexdigest()

    # -- per-request hooks ----------------------------------------------------------------

    def parse_url_path(self, url_path: str) -> str:
        """The file path (relative to the root) for the URL's path group."""
        if os.path.sep != "/":
            url_path = url_path.replace("/", os.path.sep)
        return url_path

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        """The file to serve (symlinks resolved), or None when a response was
        already sent (the redirect of a directory to its trailing-slash URL).

        Raises 403 for a path outside ``root`` as written, or one whose
        symlinks lead outside ``allowed_symlink_directory`` (default
        ``root``), a directory without ``default_filename``, or anything that
        is not a regular file; 404 when nothing is there.
        """
        if "\x00" in absolute_path:
            raise HTTPError(404)  # no file name holds a NUL; os.stat would raise ValueError
        # As written first: allowed_symlink_directory may be wider than the
        # root, and must not let a ../ through.
        if not _under(os.path.abspath(root), absolute_path):
            raise HTTPError(403, "%s is not in root static directory", self.path)
        allowed = self.allowed_symlink_directory or root
        allowed_directories = [allowed] if isinstance(allowed, str) else list(allowed)
        # Resolved before the directory check: a redirect for a symlink out of
        # bounds would tell an existing target from a missing one.
        absolute_path = self._resolve_allowed(absolute_path, allowed_directories)
        if os.path.isdir(absolute_path) and self.default_filename is not None:
            request_path = self.request.path
            if not request_path.endswith("/"):
                if request_path.startswith("//"):
                    # "//host/..." in Location is a protocol-relative URL: an open redirect
                    raise HTTPError(403, "cannot redirect path with two initial slashes")
                self.redirect(request_path + "/", permanent=True)
                return None
            # the default file may itself be a symlink out of bounds
            absolute_path = self._resolve_allowed(
                os.path.join(absolute_path, self.default_filename), allowed_directories
            )
        try:
            # one stat for the checks and the headers: they describe one file
            stat_result = os.stat(absolute_path)
        except (OSError, ValueError):
            raise HTTPError(404) from None
        if not stat.S_ISREG(stat_result.st_mode):
            raise HTTPError(403, "%s is not a file", self.path)
        self._stat_result, self._stat_path = stat_result, absolute_path
        return absolute_path

    def _resolve_allowed(self, absolute_path: str, allowed_directories: list[str]) -> str:
        """``absolute_path`` with its symlinks resolved; 403 unless that lies in
        one of ``allowed_directories`` (themselves resolved: /var/www may be
        a link to /srv/www)."""
        resolved = os.path.realpath(absolute_path)
        for directory in allowed_directories:
            if _under(os.path.realpath(directory), resolved):
                return resolved
        # the same error as for ../: which way a path left is not told
        raise HTTPError(403, "%s is not in root static directory", self.path)

    def _stat(self) -> os.stat_result:
        path = self.absolute_path
        assert path is not None
        # validate_absolute_path's stat, unless an override skipped it or
        # returned another path
        if self._stat_result is None or self._stat_path != path:
            self._stat_result, self._stat_path = os.stat(path), path
        return self._stat_result

    def get_content_size(self) -> int:
        """The size in bytes of the whole file (``Content-Length``, ranges)."""
        return self._stat().st_size

    def get_modified_time(self) -> datetime.datetime | None:
        """The file's mtime in whole seconds, an aware UTC datetime (None: no
        ``Last-Modified`` and no ``If-Modified-Since`` check)."""
        # whole seconds: HTTP dates have no fraction, and IMS compares with >=
        return datetime.datetime.fromtimestamp(int(self._stat().st_mtime), datetime.timezone.utc)

    def get_content_type(self) -> str:
        """The ``Content-Type`` guessed from the file name; a compressed file
        (``.gz`` …) is sent as itself, never with ``Content-Encoding``."""
        assert self.absolute_path is not None
        mime_type, encoding = mimetypes.guess_type(self.absolute_path)
        if encoding == "gzip":
            return "application/gzip"
        if encoding is not None:
            return "application/octet-stream"
        return mime_type or "application/octet-stream"

    def get_cache_time(self, path: str, modified: datetime.datetime | None, mime_type: str) -> int:
        """Seconds of client caching: ``CACHE_MAX_AGE`` for a versioned URL
        (a ``v`` argument), else 0 (no ``Expires``/``Cache-Control``)."""
        return self.CACHE_MAX_AGE if "v" in self.request.arguments else 0

    def set_extra_headers(self, path: str) -> None:
        """Hook: add headers to every response of this handler."""

    def compute_etag(self) -> str | None:
        """``"<content version>"``: strong, the same for GET, HEAD and ranges."""
        if self.absolute_path is None:
            return None
        if self.settings.get("static_hash_cache", True) is False:
            version = self._compute_version(self.absolute_path)
        else:
            version = self._get_cached_version(self.absolute_path)
        if not version:
            return None
        return f'"{version}"'

    def set_headers(self) -> None:
        """The headers shared by 200, 206, 304 and 416 responses."""
        self.set_header("Accept-Ranges", "bytes")
        self.set_etag_header()
        if self.modified is not None:
            self.set_header("Last-Modified", self.modified)
        content_type = self.get_content_type()
        if content_type:
            self.set_header("Content-Type", content_type)
        cache_time = self.get_cache_time(self.path or "", self.modified, content_type)
        if cache_time > 0:
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=cache_time)
            self.set_header("Expires", expires)
            self.set_header("Cache-Control", f"public, max-age={cache_time}")
        self.set_extra_headers(self.path or "")

    def should_return_304(self) -> bool:
        """True when the client's copy is current: ``If-None-Match`` decides
        when present, else ``If-Modified-Since`` >= the modified time."""
        if self.request.headers.get("If-None-Match"):
            return self.check_etag_header()
        since_header = self.request.headers.get("If-Modified-Since")
        if since_header is None or self.modified is None:
            return False
        since = _parse_http_date(since_header)
        return since is not None and since >= _as_utc(self.modified)

    def _range_applies(self) -> bool:
        """RFC 9110 §13.1.5: honour ``Range`` only if ``If-Range`` (when sent)
        names this version: our strong ETag, or exactly our Last-Modified."""
        if_range = self.request.headers.get("If-Range")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith('"') or if_range.startswith("W/"):
            etag = self._headers.get("Etag", "")
            return bool(etag) and not etag.startswith("W/") and if_range == etag
        since = _parse_http_date(if_range)
        return since is not None and self.modified is not None and since == _as_utc(self.modified)

    # -- verbs ------------------------------------------------------------------------------

    async def get(self, path: str, include_body: bool = True) -> None:
        """Send the file (or the requested range of it) named by ``path``."""
        self.path = self.parse_url_path(path)
        absolute_path = self.get_absolute_path(self.root, self.path)
        self.absolute_path = self.validate_absolute_path(self.root, absolute_path)
        if self.absolute_path is None:
            return
        self.modified = self.get_modified_time()
        self.set_headers()
        if self.should_return_304():
            self.set_status(304)
            return

        size = self.get_content_size()
        start, end = 0, size
        range_header = self.request.headers.get("Range")
        if range_header and self._range_applies():
            try:
                requested = _parse_byte_range(range_header, size)
            except _Unsatisfiable:
                self.set_status(416)
                self.set_header("Content-Type", "text/plain")
                self.set_header("Content-Range", f"bytes */{size}")
                return
            if requested is not None:
                start, end = requested
                if (start, end) != (0, size):
                    self.set_status(206)
                    self.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        length = end - start
        self.set_header("Content-Length", length)
        if not include_body:
            return
        partial = self.get_status() == 206
        content = self.get_content(self.absolute_path, start if partial else None, end if partial else None)
        await self._send(content, length)

    def head(self, path: str) -> Any:  # type: ignore[override]
        """GET without the body: the same status, ETag and Content-Length."""
        return self.get(path, include_body=False)

    async def _send(self, content: Iterable[bytes] | bytes, length: int) -> None:
        """Write ``content`` piece by piece, waiting for the client to take
        each one; never more than ``length`` bytes (the Content-Length sent)."""
        if isinstance(content, bytes):
            content = [content]
        remaining = length
        # The last piece is left in the buffer for finish(): output transforms
        # (gzip) only end their stream when finish() hands them a last chunk.
        pending = b""
        try:
            for chunk in content:
                if remaining <= 0:
                    break
                # cut at Content-Length: the file may have grown since stat()
                chunk = chunk[:remaining]
                if not chunk:
                    continue
                remaining -= len(chunk)
                if pending:
                    self.write(pending)
                    try:
                        await self.flush()
                    except StreamClosedError:
                        return  # the client went away; finish() only cleans up
                pending = chunk
            if pending:
                self.write(pending)
        finally:
            close = getattr(content, "close", None)
            if close is not None:
                close()  # a generator's close() shuts its file now, not at GC time

"""cyclone.cgi: run CGI scripts (RFC 3875), one process per request.

``CGIHandler`` is a ``RequestHandler`` that runs a script and answers with
what it prints::

    from cyclone.cgi import CGIHandler

    cyclone.web.Application([
        (r"/cgi-bin/date(/.*)?", CGIHandler, {"script": "/srv/cgi/date.sh"}),
        (r"/report(/.*)?", CGIHandler, {"script": "/srv/cgi/report.py",
                                        "filter": sys.executable, "timeout": 10}),
    ])

The script gets RFC 3875's meta-variables in its environment
(``GATEWAY_INTERFACE``, ``REQUEST_METHOD``, ``SCRIPT_NAME``, ``PATH_INFO``
(the route's last group, percent-decoded), ``QUERY_STRING``,
``CONTENT_TYPE``, ``CONTENT_LENGTH``, ``REMOTE_ADDR``, ``SERVER_NAME``,
``SERVER_PORT``, ``SERVER_PROTOCOL``, ``SERVER_SOFTWARE``, ``HTTP_*``), the
request body on its standard input, and runs in its own directory. Only
``PATH`` is taken from the server's environment (add more with ``env``);
``Authorization`` and ``Proxy`` headers are not passed (the latter would
become ``HTTP_PROXY``, which many tools read as their proxy: "httpoxy"), nor
are header names with an underscore.

The script prints header lines, a blank line, then the body, which is
streamed to the client as it comes (the script is paused while the client
is behind). ``Status: 404 Not Found`` sets the status; ``Location: /path``
alone is a local redirect (the server answers as for a GET of that path);
``Location: http://...`` is a 302 (or the ``Status`` given). Other headers
pass through (``Connection``, ``Transfer-Encoding`` and the like are the
server's, and are dropped).

Failures get a clear answer, with a log line: output that is not a header
block (a line without ":", a bad ``Status``, neither ``Content-Type`` nor
``Location``, a header block over ``max_header_size``) or a script that
exits before finishing its headers is 502 Bad Gateway; one still running
after ``timeout`` seconds is killed, and gets 504 Gateway Timeout; if the
body has started, the connection is closed instead. A script that cannot
be started is 502 too. The client going away kills the script. What the
script writes to its standard error is logged (``cyclone.application``).

The request body is read before the script starts (``max_body_size``
applies). The application's checks apply as to any handler: with
``xsrf_cookies`` on, a POST needs the XSRF token unless a subclass sets
``no_xsrf = True``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any

from twisted.internet import defer, error, protocol

import cyclone
from cyclone.httputil import HTTPHeaders, HTTPServerRequest
from cyclone.log import app_log
from cyclone.web import HTTPError, RequestHandler
from cyclone.wsgi import split_path

__all__ = ["CGIHandler", "CGIResponseParser", "CGIOutputError"]

#: the default of ``timeout``: seconds a script may run
DEFAULT_TIMEOUT = 30.0
#: the default of ``max_header_size``: bytes of the script's header block
DEFAULT_MAX_HEADER_SIZE = 65536
#: the default of ``max_redirects``: local redirects followed for one request
DEFAULT_MAX_REDIRECTS = 5
#: at most this many stderr lines of one run are logged, each cut to 1000 characters
_MAX_STDERR_LINES = 100

_STATUS_RE = re.compile(rb"([1-9][0-9][0-9])(?:[ \t]+([^\x00-\x1f\x7f]*))?\Z")
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# the server's business (RFC 3875 §6.3.4): never taken from the script
_SERVER_HEADERS = frozenset(
    (b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer", b"proxy-connection")
)
# request headers never passed to the script (RFC 3875 §4.1.18; httpoxy)
_PRIVATE_HEADERS = frozenset(("Authorization", "Proxy-Authorization", "Proxy"))
_SERVER_SOFTWARE = f"cyclone/{cyclone.__version__}"


class CGIOutputError(ValueError):
    """The script's output is not a CGI response (RFC 3875 §6)."""


class CGIResponseParser:
    """Sans-IO: the script's output in, its response head and body out.

    ``feed(data)`` returns the body bytes that follow the header block
    (b"" while the block is incomplete); once ``head`` is set, everything
    fed is body. ``head`` is ``(status, reason, headers)`` with
    ``headers`` a list of ``(name, value)`` str pairs; ``location`` the
    ``Location`` value if any. Raises ``CGIOutputError`` for output that
    is not a CGI header block.
    """

    def __init__(self, max_header_size: int = DEFAULT_MAX_HEADER_SIZE) -> None:
        self.max_header_size = max_header_size
        self.head: tuple[int, str | None, list[tuple[str, str]]] | None = None
        self.location: str | None = None
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes:
        if self.head is not None:
            return data
        buffer = self._buffer
        start = max(0, len(buffer) - 3)  # the blank line may straddle two pieces
        buffer += data
        end = None
        for separator in (b"\n\n", b"\n\r\n"):
            found = buffer.find(separator, start)
            if found >= 0 and (end is None or found < end[0]):
                end = (found, len(separator))
        if end is None:
            if len(buffer) > self.max_header_size:
                raise CGIOutputError(f"no end of the header block in the first {self.max_header_size} bytes")
            return b""
        position, length = end
        if position > self.max_header_size:
            raise CGIOutputError(f"header block over {self.max_header_size} bytes")
        block = bytes(buffer[:position])
        body = bytes(buffer[position + length :])
        self._buffer = bytearray()
        self.head = self._parse(block)
        return body

    def eof(self) -> None:
        """The output ended: ``CGIOutputError`` if the header block did not."""
        if self.head is None:
            if self._buffer.strip():
                raise CGIOutputError("the output ended inside the header block")
            raise CGIOutputError("no output")

    def _parse(self, block: bytes) -> tuple[int, str | None, list[tuple[str, str]]]:
        status: int | None = None
        reason: str | None = None
        headers: list[tuple[str, str]] = []
        content_type = False
        for raw in block.split(b"\n"):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN_RE.match(name):
                raise CGIOutputError(f"not a header line: {line[:100]!r}")
            value = value.strip(b" \t")
            if _BAD_VALUE_RE.search(value):
                raise CGIOutputError(f"control character in header {name.decode()}")
            lower = name.lower()
            if lower == b"status":
                match = _STATUS_RE.match(value)
                if match is None or status is not None:
                    raise CGIOutputError(f"bad Status: {value[:100]!r}")
                status = int(match.group(1))
                reason = match.group(2).decode("latin-1").strip() if match.group(2) else None
                continue
            if lower == b"location":
                if self.location is not None or not value:
                    raise CGIOutputError("bad Location")
                self.location = value.decode("latin-1")
            elif lower == b"content-type":
                content_type = True
            elif lower in _SERVER_HEADERS:
                app_log.warning("CGI script sent %s: dropped (the server frames the response)", name.decode())
                continue
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if self.location is None and not content_type:
            raise CGIOutputError("neither Content-Type nor Location in the header block")
        if status is None:
            status = 302 if self.location is not None and not self.location.startswith("/") else 200
        return status, reason or None, headers

    @property
    def local_redirect(self) -> bool:
        """The response is a local redirect (RFC 3875 §6.2.2): ``Location:
        /path`` and no other field."""
        if self.head is None or self.location is None or not self.location.startswith("/"):
            return False
        if self.location.startswith("//"):  # a network-path reference: another host
            return False
        status, _, headers = self.head
        return status == 200 and len(headers) == 1


class _ScriptProcess(protocol.ProcessProtocol):
    """Feeds the request body to the script and its output to the handler."""

    def __init__(self, handler: CGIHandler) -> None:
        self.handler = handler
        self.parser = CGIResponseParser(handler.max_header_size)
        self.done: defer.Deferred = defer.Deferred()
        self.stderr_lines = 0
        self._stderr_partial = b""
        self._paused = False
        self.ended = False

    def connectionMade(self) -> None:
        body = self.handler.request.body
        if body:
            self.transport.write(body)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        handler = self.handler
        if handler.failed or handler._finished or handler.client_gone:
            return
        try:
            body = self.parser.feed(data)
        except CGIOutputError as exc:
            handler.fail(502, f"bad output: {exc}")
            return
        if self.parser.head is None:
            return
        if not handler.head_set:
            try:
                handler.start_response(self.parser)
            except ValueError as exc:  # a header the handler refuses
                handler.fail(502, f"bad output: {exc}")
                return
            if handler._finished:  # a local redirect
                return
        if body:
            handler.write(body)
            drained = handler.flush()
            if not drained.called and not self._paused:
                # the client is behind: stop reading the script until it catches up
                self._paused = True
                self.transport.pauseProducing()
                drained.addBoth(self._resume)

    def _resume(self, result: Any) -> None:
        self._paused = False
        if not self.ended:
            self.transport.resumeProducing()

    def errReceived(self, data: bytes) -> None:
        lines = (self._stderr_partial + data).split(b"\n")
        self._stderr_partial = lines.pop()[-1000:]
        for line in lines:
            self._log_stderr(line)

    def _log_stderr(self, line: bytes) -> None:
        self.stderr_lines += 1
        if self.stderr_lines <= _MAX_STDERR_LINES:
            app_log.warning("CGI %s stderr: %s", self.handler.script,
                            line[:1000].decode("utf-8", "replace").rstrip("\r"))

    def processEnded(self, reason: Any) -> None:
        self.ended = True
        if self._stderr_partial:
            self._log_stderr(self._stderr_partial)
        code = getattr(reason.value, "exitCode", None)
        signal = getattr(reason.value, "signal", None)
        self.done.callback((code, signal))


class CGIHandler(RequestHandler):
    """Runs ``script`` for each request (see the module's docstring).

    ``filter``: the interpreter to run the script with (``filter script``),
    for scripts that are not executable or have no ``#!`` line (Twisted
    Web's ``FilteredScript``). ``timeout`` (30 s): seconds the script may
    run. ``env``: more environment variables. ``max_header_size`` (64 KiB):
    bytes of the script's header block. ``max_redirects`` (5): local
    redirects followed. The route's last group is ``PATH_INFO``.
    """

    # every method goes to the script (it answers 405 itself if it likes)
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(
        self,
        script: str,
        filter: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        env: dict[str, str] | None = None,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
    ) -> None:
        self.script = os.path.abspath(script)
        self.filter = filter
        self.timeout = timeout
        self.extra_env = env or {}
        self.max_header_size = max_header_size
        self.max_redirects = max_redirects
        self.head_set = False
        self.failed = False
        self.client_gone = False
        self._process: _ScriptProcess | None = None

    def decode_argument(self, value: bytes | str, name: str | None = None) -> bytes | str:
        return value  # PATH_INFO is bytes: passed to the script as they are

    async def _serve(self, *args: Any, **kwargs: Any) -> None:
        from twisted.internet import reactor

        if self.filter is None and not os.access(self.script, os.X_OK):
            app_log.error("CGI script %s is not executable (give filter= an interpreter)", self.script)
            raise HTTPError(502)
        environment = self.cgi_environment(args, kwargs)
        process = self._process = _ScriptProcess(self)
        argv = [self.filter, self.script] if self.filter else [self.script]
        try:
            reactor.spawnProcess(process, argv[0], argv, env=environment, path=os.path.dirname(self.script))
        except (OSError, error.ProcessExitedAlready) as exc:
            app_log.error("CGI script %s could not be started: %s", self.script, exc)
            raise HTTPError(502) from None
        timer = None
        if self.timeout:
            timer = reactor.callLater(self.timeout, self._timed_out)
        try:
            code, signal = await process.done
        finally:
            if timer is not None and timer.active():
                timer.cancel()
        if self._finished or self.failed or self.client_gone:
            return
        try:
            process.parser.eof()
        except CGIOutputError as exc:
            detail = f"exit status {code}" if signal is None else f"killed by signal {signal}"
            self.fail(502, f"{exc} ({detail})")
            return
        if code:
            app_log.warning("CGI script %s exited with status %s after its response", self.script, code)
        if not self._finished:
            self.finish()

    get = post = put = delete = patch = options = head = _serve

    def cgi_environment(self, args: Any, kwargs: Any) -> dict[bytes, bytes]:
        """RFC 3875's meta-variables (and ``PATH``, and ``env``), as bytes."""
        request = self.request
        full_path = urllib.parse.unquote_to_bytes(request.path)
        script_name, path_info = split_path(full_path, args, kwargs)
        if b"\x00" in full_path:
            raise HTTPError(400, reason="NUL in the path")
        try:
            local = request.connection.transport.getHost()
            server_port = str(local.port)
            server_address = local.host
        except AttributeError:
            server_port, server_address = ("443" if request.protocol == "https" else "80"), "localhost"
        env: dict[bytes, bytes] = {
            b"GATEWAY_INTERFACE": b"CGI/1.1",
            b"REQUEST_METHOD": request.method.encode(),
            b"SCRIPT_NAME": script_name,
            b"PATH_INFO": path_info,
            b"QUERY_STRING": request.query.encode("latin-1"),
            b"REMOTE_ADDR": (request.remote_ip or "").encode(),
            b"REMOTE_HOST": (request.remote_ip or "").encode(),  # no DNS lookup (§4.1.9 allows the address)
            b"SERVER_NAME": (request.host_name if request.headers.get("Host") else server_address).encode("latin-1"),
            b"SERVER_PORT": server_port.encode(),
            b"SERVER_PROTOCOL": request.version.encode(),
            b"SERVER_SOFTWARE": _SERVER_SOFTWARE.encode(),
            b"SCRIPT_FILENAME": os.fsencode(self.script),
            b"PATH": os.fsencode(os.environ.get("PATH", os.defpath)),
        }
        if request.protocol == "https":
            env[b"HTTPS"] = b"on"
        body = request.body
        if body or "Content-Length" in request.headers or "Transfer-Encoding" in request.headers:
            env[b"CONTENT_LENGTH"] = str(len(body)).encode()
        for name, value in request.headers.get_all():
            if name == "Content-Type":
                env[b"CONTENT_TYPE"] = value.encode("latin-1")
                continue
            if name in ("Content-Length", "Transfer-Encoding") or name in _PRIVATE_HEADERS or "_" in name:
                continue
            key = ("HTTP_" + name.upper().replace("-", "_")).encode("latin-1")
            previous = env.get(key)
            encoded = value.encode("latin-1")
            env[key] = encoded if previous is None else previous + b", " + encoded
        for name, value in self.extra_env.items():
            env[os.fsencode(name)] = os.fsencode(value)
        return env

    # -- the response -------------------------------------------------------------------

    def start_response(self, parser: CGIResponseParser) -> None:
        """The script's header block is in: set the status and headers, or
        follow a local redirect."""
        self.head_set = True
        if parser.local_redirect:
            self._redirect_locally(parser.location)
            return
        status, reason, headers = parser.head
        self.set_status(status, reason)
        self.clear_header("Content-Type")
        for name, value in headers:
            self.add_header(name, value)

    def _redirect_locally(self, location: str) -> None:
        """Answer as for ``GET location`` (RFC 3875 §6.2.2)."""
        request = self.request
        count = getattr(request, "_cgi_redirects", 0) + 1
        if count > self.max_redirects:
            self.fail(502, f"more than {self.max_redirects} local redirects")
            return
        self._kill()
        headers = HTTPHeaders()
        for name, value in request.headers.get_all():
            if name not in ("Content-Length", "Content-Type", "Transfer-Encoding"):
                headers.add(name, value)
        redirected = HTTPServerRequest(
            "GET", location, version=request.version, headers=headers, remote_ip=request.remote_ip,
            protocol=request.protocol, host=request.host, connection=request.connection,
        )
        redirected._cgi_redirects = count
        self._finished = True  # the redirected request's handler answers
        self.application(redirected)

    def fail(self, status: int, message: str) -> None:
        """The script failed: log it; answer ``status`` if nothing was sent,
        else close the connection."""
        if self.failed or self._finished:
            return
        self.failed = True
        app_log.error("CGI script %s for %s: %s", self.script, self._request_summary(), message)
        self._kill()
        if self._headers_written:
            self._abort()  # closes: the client sees a cut response
            return
        self.clear()
        self.send_error(status)

    def _timed_out(self) -> None:
        self.fail(504, f"still running after {self.timeout} seconds: killed")

    def _kill(self) -> None:
        process = self._process
        if process is not None and not process.ended:
            try:
                process.transport.signalProcess("KILL")
            except error.ProcessExitedAlready:
                pass
            # a child the script started may hold its pipes open: close ours,
            # so the end is seen when the script itself has gone
            process.transport.loseConnection()

    def on_connection_close(self) -> None:
        self.client_gone = True
        self._kill()

"""cyclone.wsgi: serve WSGI applications (PEP 3333) from a cyclone server.

``WSGIContainer(app)`` runs a WSGI application (Flask, Django, anything that
follows PEP 3333) in a thread pool and answers through cyclone's HTTP
server. Route to it like any target; the route's last group is
``PATH_INFO`` and what the path has before it ``SCRIPT_NAME``::

    from cyclone.wsgi import WSGIContainer

    flask_app = WSGIContainer(flask.Flask(__name__))
    application = cyclone.web.Application([
        (r"/ws", ChatSocket),                       # cyclone handlers and the app on one port
        (r"/flask(/.*)?", flask_app),               # SCRIPT_NAME "/flask", PATH_INFO "/..."
    ])

or as Tornado's ``FallbackHandler``:
``(r".*", FallbackHandler, {"fallback": WSGIContainer(app)})``. Served as a
route (or as ``HTTPServer(container)``) the body is streamed: the app reads
``wsgi.input`` while the client sends, and a client that sends faster than
the app reads is slowed down. Through ``FallbackHandler`` the body has been
read first (``max_body_size`` applies either way).

The app never runs on the reactor thread. What it yields is sent as it is
yielded (never the whole body at once): each piece goes to the reactor with
``callFromThread`` and the app's thread waits while more than
``write_buffer_size`` bytes are written but not yet taken by the client, so a
slow client costs a bounded amount of memory whatever the body's size.

``environ`` has every PEP 3333 key: ``REQUEST_METHOD``, ``SCRIPT_NAME``,
``PATH_INFO`` (percent-decoded, as Latin-1 "native strings"),
``QUERY_STRING``, ``CONTENT_TYPE``, ``CONTENT_LENGTH``, ``SERVER_NAME``,
``SERVER_PORT``, ``SERVER_PROTOCOL``, ``SERVER_SOFTWARE``, ``REMOTE_ADDR``,
``HTTP_*`` (repeated fields joined with ", ", cookies with "; "), ``wsgi.*``
and ``wsgi.input_terminated`` (True: ``wsgi.input`` returns b"" at the end of
the body, also of a chunked one). A request header whose name has an
underscore is not passed: ``X_User`` would become the same
``HTTP_X_USER`` as ``X-User`` (a proxy that checks one can be bypassed with
the other; nginx and gunicorn drop them too).

The app's response goes to the connection as the app made it: the
``Application``'s output transforms (``compress_response``) do not apply;
wrap the app in a WSGI middleware for that. One access-log line per request
goes to ``cyclone.access``.

Errors: an exception from the app before anything is sent is a 500 with a
log line (``cyclone.application``); after the head was sent the connection
is closed, so the client sees a cut response. The iterable's ``close()`` is
always called. A response head the app makes wrong (a status that is not
"NNN reason", headers that are not a list of pairs of ``str``, a hop-by-hop
header such as ``Connection``) raises ``WSGIResponseError`` in the app's call
to ``start_response``, which then becomes that 500.
"""

from __future__ import annotations

import io
import logging
import queue
import re
import threading
import time
import urllib.parse
from typing import Any, Callable, Iterable

from twisted.internet import defer
from twisted.python import failure

import cyclone
from cyclone.log import access_log, app_log, gen_log
from cyclone.routing import Router

__all__ = ["WSGIContainer", "WSGIResponseError", "ClientDisconnected", "FileWrapper", "split_path"]

#: the default of ``max_threads``: how many requests run the app at once
DEFAULT_MAX_THREADS = 10
#: the default of ``write_buffer_size``: bytes written and not yet sent
#: before the app's thread waits
DEFAULT_WRITE_BUFFER_SIZE = 256 * 1024
#: the default of ``input_buffer_size``: request body bytes received and
#: not yet read by the app before the client is made to wait
DEFAULT_INPUT_BUFFER_SIZE = 256 * 1024

_SERVER_SOFTWARE = f"cyclone/{cyclone.__version__}"
_STATUS_RE = re.compile(r"([1-9][0-9][0-9]) ([^\x00-\x1f\x7f]*)\Z")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9110 §7.6.1 and PEP 3333: the server's business, never the app's
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "trailers", "transfer-encoding", "upgrade")
)
_NO_BODY_STATUSES = frozenset((204, 304))
# header name -> environ key (a handful of names make most requests)
_environ_keys: dict[str, str | None] = {"Content-Type": "CONTENT_TYPE", "Content-Length": "CONTENT_LENGTH"}


class WSGIResponseError(ValueError):
    """The app's ``start_response`` call breaks PEP 3333 (a bad status or
    header, a hop-by-hop header, a second call without ``exc_info``)."""


class ClientDisconnected(OSError):
    """The client went away: raised by ``write()`` and by ``wsgi.input``
    reads the client will not complete."""


class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file-like object in ``block_size``
    pieces and closes it with the response (PEP 3333 "Optional
    Platform-Specific File Handling")."""

    def __init__(self, filelike: Any, block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration


class _ErrorStream:
    """``wsgi.errors``: text written by the app goes to ``cyclone.application``
    as one ERROR record per line."""

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors takes str, not {type(text).__name__}")
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            app_log.error("wsgi.errors: %s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            app_log.error("wsgi.errors: %s", line)


class _StreamedInput:
    """``wsgi.input`` of a body still arriving: reads wait for the client.

    Pieces are kept in a ``bytearray`` owned by the exchange and guarded by
    its lock; the reactor adds, the app's thread takes.
    """

    def __init__(self, exchange: _Exchange) -> None:
        self._exchange = exchange

    def read(self, size: int | None = -1) -> bytes:
        exchange = self._exchange
        wanted = None if size is None or size < 0 else size
        pieces = []
        with exchange.lock:
            buffer = exchange.input
            while True:
                # take what is here before waiting: the client is let go on
                # sending only once the buffer has room
                if wanted is None:
                    piece = bytes(buffer)
                    buffer.clear()
                else:
                    piece = bytes(buffer[:wanted])
                    del buffer[:wanted]
                    wanted -= len(piece)
                if piece:
                    pieces.append(piece)
                    exchange.input_taken()
                if wanted == 0 or (exchange.input_eof and not buffer):
                    break
                exchange.wait_for_input()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readline(self, size: int | None = -1) -> bytes:
        exchange = self._exchange
        wanted = None if size is None or size < 0 else size
        pieces = []
        with exchange.lock:
            buffer = exchange.input
            while True:
                end = buffer.find(b"\n")
                found = end >= 0
                end = end + 1 if found else len(buffer)
                if wanted is not None and end > wanted:
                    end, found = wanted, True
                piece = bytes(buffer[:end])
                del buffer[:end]
                if piece:
                    pieces.append(piece)
                    exchange.input_taken()
                    if wanted is not None:
                        wanted -= len(piece)
                if found or wanted == 0 or (exchange.input_eof and not buffer):
                    break
                exchange.wait_for_input()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> _StreamedInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if line:
            return line
        raise StopIteration


class WSGIContainer(Router):
    """Serves the WSGI application ``app``.

    ``threadpool`` runs the app: a ``twisted.python.threadpool.ThreadPool``
    (e.g. ``reactor.getThreadPool()``, which its owner starts and stops) or
    a ``concurrent.futures`` executor; None gives the container its own
    threads, up to ``max_threads`` (default 10), started as requests come
    and stopped when the reactor stops.
    ``write_buffer_size`` (256 KiB) is how much of the response may wait to
    be sent before the app's thread waits; ``input_buffer_size`` (256 KiB)
    how much of a streamed request body may wait to be read by the app
    before the client is made to wait.

    A route to it (``(r"/app(/.*)?", container)``) gives ``find_handler``
    the route's groups: the last one (or the one named ``path_info``) is
    ``PATH_INFO``, what comes before it ``SCRIPT_NAME``; with no group the
    whole path is ``PATH_INFO``. ``container(request)`` serves a request
    whose body was read (Tornado's interface, used by ``FallbackHandler``).
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        threadpool: Any = None,
        *,
        max_threads: int = DEFAULT_MAX_THREADS,
        write_buffer_size: int = DEFAULT_WRITE_BUFFER_SIZE,
        input_buffer_size: int = DEFAULT_INPUT_BUFFER_SIZE,
        reactor: Any = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"a WSGI application is a callable, not {app!r}")
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1: {max_threads}")
        if write_buffer_size < 1 or input_buffer_size < 1:
            raise ValueError("write_buffer_size and input_buffer_size must be positive")
        if reactor is None:
            from twisted.internet import reactor
        self.app = app
        self.reactor = reactor
        self.max_threads = max_threads
        self.write_buffer_size = write_buffer_size
        self.input_buffer_size = input_buffer_size
        self._own_pool = threadpool is None
        self._threadpool = threadpool
        self._submit: Callable[[Callable[[], None]], Any] | None = None
        self._active: set[_Exchange] = set()
        self._shutdown_trigger: Any = None
        self._stopping = False

    # -- routing -------------------------------------------------------------------

    def find_handler(self, request: Any, **kwargs: Any) -> _Exchange:
        """The request delegate serving ``request`` (``cyclone.routing``)."""
        return _Exchange(self, request, kwargs.get("path_args"), kwargs.get("path_kwargs"))

    def __call__(self, request: Any, path_args: list | None = None, path_kwargs: dict | None = None) -> None:
        """Serve ``request``, whose body is in ``request.body``."""
        exchange = _Exchange(self, request, path_args, path_kwargs)
        exchange.start(io.BytesIO(request.body))

    # -- the thread pool -----------------------------------------------------------

    def _run_in_thread(self, function: Callable[[], None]) -> None:
        submit = self._submit
        if submit is None:
            submit = self._submit = self._make_submit()
        submit(function)

    def _make_submit(self) -> Callable[[Callable[[], None]], Any]:
        pool = self._threadpool
        if pool is None:
            pool = self._threadpool = _WorkerPool(self.max_threads)
        # before the reactor's own pool stops ("during"): threads waiting on
        # a client are let go first, or stopping would wait for them forever
        self._shutdown_trigger = self.reactor.addSystemEventTrigger("before", "shutdown", self._stop)
        call_in_thread = getattr(pool, "callInThread", None)
        if call_in_thread is not None:
            return call_in_thread
        return pool.submit  # a concurrent.futures executor, or ours

    def _stop(self) -> None:
        self._stopping = True
        for exchange in list(self._active):
            exchange.abandon()
        if self._own_pool and self._threadpool is not None:
            pool, self._threadpool = self._threadpool, None
            self._submit = None
            pool.shutdown()


class _WorkerPool:
    """The container's own threads: up to ``max_threads``, started as
    calls come and none is idle, fed from one queue. (Leaner per call than
    Twisted's ``ThreadPool``; daemon threads, so an app stuck forever does
    not keep the process alive.)"""

    def __init__(self, max_threads: int) -> None:
        self.max_threads = max_threads
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, function: Callable[[], None]) -> None:
        if self._stopped:
            raise RuntimeError("the pool is shut down")
        self._queue.put(function)
        if self._idle.acquire(blocking=False):
            return  # a thread is waiting for it
        with self._lock:
            if len(self._threads) < self.max_threads:
                thread = threading.Thread(
                    target=self._work, name=f"cyclone.wsgi-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        get = self._queue.get
        idle = self._idle
        while True:
            function = get()
            if function is None:
                return
            try:
                function()
            except BaseException:  # noqa: B036 - _run logs the app's errors; keep the thread
                app_log.error("Uncaught exception in a cyclone.wsgi thread", exc_info=True)
            idle.release()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Let the threads finish their calls and end (waiting ``timeout``
        seconds in all for them)."""
        self._stopped = True
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Exchange:
    """One request served by the app: the request delegate (reactor side)
    and ``start_response``/``write`` (the app's thread)."""

    def __init__(self, container: WSGIContainer, request: Any, path_args: Any, path_kwargs: Any) -> None:
        self.container = container
        self.request = request
        self.connection = request.connection
        self.path_args = path_args
        self.path_kwargs = path_kwargs
        self.lock = threading.Lock()
        self.condition = threading.Condition(self.lock)
        # guarded by the lock
        self.input = bytearray()
        self.input_eof = False
        self.closed = False  # the client will take nothing more
        self.unsent = 0  # bytes handed to the reactor, not yet taken by the transport
        self._resume_scheduled = False
        self._operations: list[tuple] = []
        self._operations_scheduled = False
        # reactor side
        self._input_waiter: defer.Deferred | None = None
        self._done = False  # the response is finished or abandoned
        self._head_written = False  # the connection took the head
        self._streamed = False
        # the app's thread
        self._status: tuple[int, str] | None = None
        self._headers: list[tuple[str, str]] | None = None
        self._head_sent = False
        self._sent_status = 500

    # -- request delegate (reactor thread) -------------------------------------------

    def headers_received(self) -> None:
        headers = self.request.headers
        if "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0":
            self._streamed = True
            self.start(_StreamedInput(self))
        else:
            self.input_eof = True
            self.start(io.BytesIO(b""))

    def data_received(self, chunk: bytes) -> defer.Deferred | None:
        if not self._streamed:
            return None
        with self.lock:
            if self._done or self.closed:
                return None  # the response is over: what is left is dropped
            self.input += chunk
            self.condition.notify_all()
            if len(self.input) <= self.container.input_buffer_size:
                return None
            d = self._input_waiter = defer.Deferred()
            return d

    def finish(self) -> None:
        with self.lock:
            self.input_eof = True
            self.condition.notify_all()

    def on_connection_close(self) -> None:
        self.abandon()

    def abandon(self) -> None:
        """The client is gone (or the reactor stops): wake the app's thread."""
        with self.lock:
            self.closed = True
            self.condition.notify_all()
        self._done = True
        self._resume_input()

    # -- starting (reactor thread) --------------------------------------------------

    def start(self, wsgi_input: Any) -> None:
        container = self.container
        if container._stopping:
            self.connection.write_head(503, [("Content-Length", "0")], finish=True)
            return
        environ = self._environ(wsgi_input)
        container._active.add(self)
        container._run_in_thread(lambda: self._run(environ))

    def _environ(self, wsgi_input: Any) -> dict[str, Any]:
        request = self.request
        full_path = urllib.parse.unquote_to_bytes(request.path)
        script_name, path_info = split_path(full_path, self.path_args, self.path_kwargs)
        environ = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": script_name.decode("latin-1"),
            "PATH_INFO": path_info.decode("latin-1"),
            "QUERY_STRING": request.query,
            "SERVER_PROTOCOL": request.version,
            "SERVER_SOFTWARE": _SERVER_SOFTWARE,
            "REMOTE_ADDR": request.remote_ip or "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.protocol,
            "wsgi.input": wsgi_input,
            "wsgi.errors": _ErrorStream(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
        }
        environ["SERVER_NAME"], environ["SERVER_PORT"] = self._server_name_and_port()
        keys = _environ_keys
        for name, value in request.headers.get_all():
            key = keys.get(name)
            if key is None:
                if name in keys or "_" in name:
                    keys[name] = None
                    continue
                key = keys[name] = "HTTP_" + name.upper().replace("-", "_")
                if len(keys) > 1000:  # names are client-chosen: keep the cache bounded
                    keys.clear()
                    keys["Content-Type"] = "CONTENT_TYPE"
                    keys["Content-Length"] = "CONTENT_LENGTH"
            previous = environ.get(key)
            if previous is not None:
                value = previous + ("; " if key == "HTTP_COOKIE" else ", ") + value
            environ[key] = value
        return environ

    def _server_name_and_port(self) -> tuple[str, str]:
        request = self.request
        connection = self.connection
        local = getattr(connection, "_wsgi_local_address", None)
        if local is None:
            try:
                address = connection.transport.getHost()
                local = (address.host, str(address.port))
            except AttributeError:  # a UNIX socket
                local = ("localhost", "443" if request.protocol == "https" else "80")
            try:
                connection._wsgi_local_address = local  # the same for every request of the connection
            except AttributeError:
                pass
        if request.headers.get("Host"):
            return request.host_name, local[1]
        return local

    # -- the app's thread ---------------------------------------------------------------

    def _run(self, environ: dict[str, Any]) -> None:
        result = None
        try:
            result = self.container.app(environ, self.start_response)
            if type(result) is list and self._status is not None and not self._head_sent:
                self._respond_whole(result)
            else:
                for chunk in result:
                    if type(chunk) is not bytes and not isinstance(chunk, bytes):
                        raise TypeError(f"a WSGI application yields bytes, not {type(chunk).__name__}")
                    if chunk and not self._send(chunk):
                        break  # the client went away: stop, and close() the iterable
                self._end()
        except BaseException as exc:  # noqa: B036 - the app is not trusted; never kill the pool
            self._app_failed(exc)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    self._app_failed(exc, where="close() of the iterable")
            self._post(("done",))

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        """PEP 3333's ``start_response``."""
        if exc_info is not None:
            try:
                if self._head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no cycle through the traceback
        elif self._status is not None:
            raise WSGIResponseError("start_response() called a second time without exc_info")
        if type(status) is not str:
            raise WSGIResponseError(f"the status is a str such as '200 OK', not {status!r}")
        match = _STATUS_RE.match(status)
        if match is None:
            raise WSGIResponseError(f"the status must be 'NNN reason', not {status!r}")
        if type(headers) is not list:
            raise WSGIResponseError(f"the headers are a list of (name, value) pairs, not {type(headers).__name__}")
        for pair in headers:
            if type(pair) is not tuple or len(pair) != 2:
                raise WSGIResponseError(f"a header is a (name, value) tuple, not {pair!r}")
            name, value = pair
            if type(name) is not str or not _TOKEN_RE.match(name):
                raise WSGIResponseError(f"bad header name {name!r}")
            if type(value) is not str or _BAD_VALUE_RE.search(value):
                raise WSGIResponseError(f"bad value for header {name}: {value!r}")
            if name.lower() in _HOP_BY_HOP:
                raise WSGIResponseError(f"{name} is a hop-by-hop header: the server sets it, not the app")
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise WSGIResponseError(f"header {name}'s value is not Latin-1: {value!r}") from None
        self._status = (int(match.group(1)), match.group(2))
        self._headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write()`` callable: sends ``data`` now (waiting while
        the client is behind); ``ClientDisconnected`` once it is gone."""
        if self._status is None:
            raise WSGIResponseError("write() before start_response()")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if not self._send(data):
            raise ClientDisconnected("the client went away")

    def _send(self, data: bytes) -> bool:
        """Hand ``data`` (and the head, the first time) to the reactor;
        False if the client is gone."""
        if self._status is None:
            raise WSGIResponseError("the application returned body data before calling start_response()")
        size = len(data)
        limit = self.container.write_buffer_size
        with self.lock:
            while self.unsent > limit and not self.closed:
                self.condition.wait()
            if self.closed:
                return False
            self.unsent += size
        head = None
        if not self._head_sent:
            self._head_sent = True
            head = self._status, self._headers
            self._sent_status = self._status[0]
        self._post(("data", head, data))
        return True

    def _end(self) -> None:
        """The iterable is exhausted: finish the response."""
        if self._status is None:
            raise WSGIResponseError("the application returned without calling start_response()")
        head = None
        if not self._head_sent:
            self._head_sent = True
            code, reason = self._status
            headers = self._headers
            if code not in _NO_BODY_STATUSES and code >= 200 and not _has_content_length(headers):
                headers = headers + [("Content-Length", "0")]
            head = (code, reason), headers
            self._sent_status = code
        self._post(("end", head))

    def _respond_whole(self, chunks: list) -> None:
        """A list of bytes: the head, body and end in one call to the reactor."""
        try:
            body = b"".join(chunks)
        except TypeError:
            raise TypeError("a WSGI application yields bytes, not "
                            + ", ".join(sorted({type(c).__name__ for c in chunks if not isinstance(c, bytes)})))
        self._head_sent = True
        code, reason = self._status
        headers = self._headers
        if code not in _NO_BODY_STATUSES and code >= 200 and not _has_content_length(headers):
            headers = headers + [("Content-Length", str(len(body)))]
        self._sent_status = code
        self._post(("whole", code, reason, headers, body))

    def _app_failed(self, exc: BaseException, where: str = "") -> None:
        request = self.request
        with self.lock:
            client_gone = self.closed
        if client_gone and isinstance(exc, OSError):
            # ClientDisconnected from write() or wsgi.input, or the app's own
            # error about it: the client's doing, not a bug to trace
            gen_log.info("Client went away during %s %s (%s): %s", request.method, request.uri,
                         request.remote_ip, exc)
        else:
            app_log.error(
                "WSGI application %s raised %s serving %s %s (%s)",
                _name_of(self.container.app), where or "", request.method, request.uri, request.remote_ip,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        head_sent = self._head_sent
        self._head_sent = True
        self._post(("fail", head_sent))

    def _post(self, operation: tuple) -> None:
        """Queue ``operation`` for the reactor. One ``callFromThread`` serves
        every operation queued before the reactor gets to them: a response
        made of a head, a piece and its end usually costs one wake-up."""
        with self.lock:
            self._operations.append(operation)
            if self._operations_scheduled:
                return
            self._operations_scheduled = True
        self.container.reactor.callFromThread(self._run_operations)

    # -- reactor side of the response ------------------------------------------------

    def _run_operations(self) -> None:
        with self.lock:
            operations = self._operations
            self._operations = []
            self._operations_scheduled = False
        if (
            len(operations) >= 2
            and operations[0][0] == "data"
            and operations[0][1] is not None
            and all(op[0] == "data" for op in operations[1:-1])
            and (operations[-1][0] == "end" or (operations[-1][0] == "done" and len(operations) >= 3
                                                 and operations[-2][0] == "end"))
        ):
            # the whole response is here: one write, with a Content-Length
            end = next(i for i, op in enumerate(operations) if op[0] == "end")
            pieces = [op[2] for op in operations[:end]]
            body = b"".join(pieces)
            self._drained(None, len(body))
            (code, reason), headers = operations[0][1]
            if code not in _NO_BODY_STATUSES and code >= 200 and not _has_content_length(headers):
                headers = headers + [("Content-Length", str(len(body)))]
            self._respond_on_reactor(code, reason, headers, body)
            operations = operations[end + 1 :]
        index = 0
        count = len(operations)
        while index < count:
            operation = operations[index]
            kind = operation[0]
            if kind == "data":
                head, data = operation[1], operation[2]
                # consecutive pieces go out in one write
                following = index + 1
                while following < count and operations[following][0] == "data":
                    following += 1
                if following > index + 1:
                    data = b"".join(op[2] for op in operations[index:following])
                self._write_on_reactor(head, data)
                index = following
                continue
            if kind == "end":
                self._finish_on_reactor(operation[1])
            elif kind == "whole":
                self._respond_on_reactor(*operation[1:])
            elif kind == "fail":
                self._fail_on_reactor(operation[1])
            else:  # "done": the app's call is over
                self.container._active.discard(self)
            index += 1

    def _respond_on_reactor(self, code: int, reason: str, headers: list, body: bytes) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.connection.write_head(code, headers, reason, body=body, finish=True)
        except Exception:
            self._refused()
            return
        self._log(code)

    def _write_on_reactor(self, head: Any, data: bytes) -> None:
        size = len(data)
        if self._done:
            self._drained(None, size)
            return
        connection = self.connection
        try:
            if head is not None:
                (code, reason), headers = head
                connection.write_head(code, headers, reason)
                self._head_written = True
            d = connection.write(data)
        except Exception:
            self._drained(None, size)
            self._refused()
            return
        d.addBoth(self._drained, size)

    def _drained(self, result: Any, size: int) -> None:
        with self.lock:
            self.unsent -= size
            if isinstance(result, failure.Failure):  # StreamClosedError: the client is gone
                self.closed = True
            self.condition.notify_all()

    def _finish_on_reactor(self, head: Any) -> None:
        if self._done:
            return
        self._done = True
        self._resume_input()
        connection = self.connection
        try:
            if head is not None:
                (code, reason), headers = head
                connection.write_head(code, headers, reason, finish=True)
            else:
                connection.finish()
        except Exception:
            self._refused()
            return
        self._log(self._sent_status)

    def _fail_on_reactor(self, head_sent: bool) -> None:
        """The app raised: a 500, or a cut response if its head was sent."""
        if self._done:
            return
        self._done = True
        self._resume_input()
        if head_sent:
            self.connection.reject(500)  # a response has started: closes the connection
        else:
            self._answer_500()
        self._log(500)

    def _refused(self) -> None:
        """The connection refused what the app gave (a header with CR/LF, a
        body longer or shorter than its Content-Length): log it, stop the
        app's output, answer 500 if nothing was sent, else close."""
        app_log.error("WSGI application %s gave a response that cannot be sent for %s %s",
                      _name_of(self.container.app), self.request.method, self.request.uri, exc_info=True)
        self.abandon()
        if self._head_written:
            self.connection.reject(500)  # closes: the client sees a cut response
        else:
            self._answer_500()
        self._log(500)

    def _answer_500(self) -> None:
        body = b"500 Internal Server Error"
        try:
            self.connection.write_head(
                500,
                [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(body)))],
                body=body,
                finish=True,
            )
        except Exception:
            self.connection.reject(500)

    def _log(self, status: int) -> None:
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        if access_log.isEnabledFor(level):
            request = self.request
            access_log.log(level, "%d %s %s (%s) %.2fms", status, request.method, request.uri,
                           request.remote_ip, 1000.0 * request.request_time())

    # -- request body flow control ----------------------------------------------------------

    def wait_for_input(self) -> None:
        """In the app's thread, lock held: wait for more of the body."""
        if self.closed:
            raise ClientDisconnected("the client went away before sending the whole body")
        self.condition.wait()
        if self.closed and not self.input_eof:
            raise ClientDisconnected("the client went away before sending the whole body")

    def input_taken(self) -> None:
        """In the app's thread, lock held: let the client send more once the
        app has read enough."""
        if (
            not self._resume_scheduled
            and self._input_waiter is not None
            and len(self.input) <= self.container.input_buffer_size // 2
        ):
            self._resume_scheduled = True
            self.container.reactor.callFromThread(self._resume_input)

    def _resume_input(self) -> None:
        with self.lock:
            d, self._input_waiter = self._input_waiter, None
            self._resume_scheduled = False
        self._operations: list[tuple] = []
        self._operations_scheduled = False
        if d is not None:
            d.callback(None)


def _has_content_length(headers: list[tuple[str, str]]) -> bool:
    for name, _ in headers:
        if len(name) == 14 and name.lower() == "content-length":
            return True
    return False


def split_path(full_path: bytes, path_args: Any, path_kwargs: Any) -> tuple[bytes, bytes]:
    """(SCRIPT_NAME, PATH_INFO) of a percent-decoded path: PATH_INFO is the
    route's group named ``path_info``, else its last group; SCRIPT_NAME what
    precedes it. No group: all of it is PATH_INFO; a group that did not take
    part (``/app(/.*)?`` for ``/app``): all of it is SCRIPT_NAME. A group
    that does not end the path counts as none. Groups may be bytes or
    Latin-1 strings."""
    if path_kwargs and "path_info" in path_kwargs:
        tail = path_kwargs["path_info"]
    elif path_args:
        tail = path_args[-1]
    elif path_kwargs:
        tail = list(path_kwargs.values())[-1]
    else:
        return b"", full_path
    if tail is None:
        tail = b""
    elif isinstance(tail, str):
        tail = tail.encode("latin-1")
    if not full_path.endswith(tail):
        return b"", full_path
    script = full_path[: len(full_path) - len(tail)]
    if script.endswith(b"/") and not tail.startswith(b"/"):
        # r"/app/(.*)": the slash belongs to PATH_INFO (SCRIPT_NAME never ends in one)
        script, tail = script[:-1], b"/" + tail
    return script, tail


def _name_of(app: Any) -> str:
    return getattr(app, "__qualname__", None) or getattr(app, "import_name", None) or repr(app)

"""cyclone.sqlite: SQLite for handlers, blocking (``InlineSQLite``) or not (``AsyncSQLite``).

``InlineSQLite`` runs queries in the calling thread (hence "inline"): SQLite
is an in-process library, and short queries on a local file are usually
cheaper than a hop to a thread pool. Long queries block the reactor; use
``AsyncSQLite`` for those. Typical use::

    db = InlineSQLite("app.sqlite")
    db.runOperation("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
    db.runOperation("INSERT INTO kv VALUES (?, ?)", ("a", "1"))
    db.runQuery("SELECT v FROM kv WHERE k = ?", ("a",))   # -> [("1",)]

Arguments after the SQL are passed to ``cursor.execute`` as they are: a
sequence for ``?`` placeholders or a mapping for ``:name`` placeholders.

``AsyncSQLite`` has the same methods, but each returns a Deferred and the
work runs in threads, so the reactor keeps serving while SQLite works. One
writer thread owns the only connection that writes (SQLite allows one writer
at a time anyway, so a queue in front of it is cheaper than lock retries),
and a few reader threads answer ``runQuery`` concurrently with it: the
database is put in WAL mode, where readers see the last committed state and
never wait for the writer. In an ``async def`` handler, await the Deferreds::

    db = AsyncSQLite("app.sqlite")

    class Counter(cyclone.web.RequestHandler):
        async def post(self):
            await db.runOperation("UPDATE hits SET n = n + 1")
            [(n,)] = await db.runQuery("SELECT n FROM hits")
            self.write({"hits": n})
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from typing import Any, Callable

from twisted.internet import defer
from twisted.python import failure

__all__ = ["InlineSQLite", "AsyncSQLite"]


class InlineSQLite:
    """A sqlite3 connection with one cursor.

    With ``autoCommit`` (the default) every ``runOperation`` and
    ``runOperationMany`` is committed on success and rolled back on failure;
    without it, call ``commit()`` or ``rollback()`` yourself.
    """

    def __init__(self, dbname: str = ":memory:", autoCommit: bool = True) -> None:
        self.autoCommit = autoCommit
        self.conn = sqlite3.connect(dbname)
        self.curs = self.conn.cursor()

    def runQuery(self, query: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Execute ``query`` and return all its rows (a list of tuples)."""
        self.curs.execute(query, *args, **kwargs)
        return self.curs.fetchall()

    def runOperation(self, command: str, *args: Any, **kwargs: Any) -> None:
        """Execute ``command`` (INSERT, UPDATE, CREATE, ...)."""
        self._run(self.curs.execute, command, args, kwargs)

    def runOperationMany(self, command: str, *args: Any, **kwargs: Any) -> None:
        """Execute ``command`` once per parameter set (``cursor.executemany``)."""
        self._run(self.curs.executemany, command, args, kwargs)

    def _run(self, method: Any, command: str, args: tuple, kwargs: dict) -> None:
        try:
            method(command, *args, **kwargs)
        except BaseException:
            # Without this, the rows a failed executemany() did insert would
            # stay in the open transaction and be committed by the next
            # successful operation.
            if self.autoCommit:
                self.conn.rollback()
            raise
        if self.autoCommit:
            self.conn.commit()

    def commit(self) -> None:
        """Commit the current transaction."""
        self.conn.commit()

    def rollback(self) -> None:
        """Roll back the current transaction."""
        self.conn.rollback()

    def close(self) -> None:
        """Close the cursor and the connection (uncommitted changes are lost)."""
        self.curs.close()
        self.conn.close()

    def __enter__(self) -> InlineSQLite:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# the job that tells a worker thread to close its connection and exit
_STOP = object()


class AsyncSQLite:
    r"""SQLite through worker threads: every method returns a Deferred.

    ``path`` is the database file name (WAL mode is switched on when it
    opens; a name, not a ``file:`` URI).
    ``readers`` (default 2) is the number of threads answering ``runQuery``
    next to the single writer thread that runs ``runOperation``,
    ``runOperationMany`` and ``runInteraction`` in order; with
    ``readers=0``, or for ``":memory:"`` (a private database per
    connection), everything runs on the writer. ``timeout`` (default 5 s) is
    how long a connection waits for a lock held by another process before
    the call fails with ``sqlite3.OperationalError``. ``on_connect(conn)``
    runs in each worker thread right after its connection opens: the place
    for ``create_function`` or ``PRAGMA``\ s. ``row_factory`` (e.g.
    ``sqlite3.Row``) is set on every connection.

    Errors (SQL errors, constraint violations, exceptions of an interaction)
    arrive on the Deferred as failures. Reader connections are read-only, so
    a query that writes must go through ``runOperation`` or
    ``runInteraction``; a write's Deferred fires after its commit, so a
    ``runQuery`` issued after that sees it. The queues are unbounded: the
    work waiting is what the callers asked for.
    """

    def __init__(
        self,
        path: str,
        *,
        readers: int = 2,
        timeout: float = 5.0,
        on_connect: Callable[[sqlite3.Connection], Any] | None = None,
        row_factory: Any = None,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        if readers < 0:
            raise ValueError(f"readers must be >= 0, not {readers!r}")
        self.path = path
        self._reactor = reactor
        self._timeout = timeout
        self._on_connect = on_connect
        self._row_factory = row_factory
        # ":memory:" and "" (a temporary file) are private to one connection
        self.readers = 0 if path in (":memory:", "") else readers
        self._closing: defer.Deferred | None = None
        self._writer_jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._reader_jobs: queue.SimpleQueue = queue.SimpleQueue()
        # the writer opens first and switches the file to WAL before any reader
        # connects (a read-only connection cannot change the journal mode)
        writer_ready = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._work,
                args=(self._writer_jobs, False, writer_ready),
                name=f"AsyncSQLite writer {path}",
                daemon=True,
            )
        ]
        self._threads += [
            threading.Thread(
                target=self._work,
                args=(self._reader_jobs, True, writer_ready),
                name=f"AsyncSQLite reader {n} {path}",
                daemon=True,
            )
            for n in range(self.readers)
        ]
        self._shutdown_trigger = reactor.addSystemEventTrigger("before", "shutdown", self._close_at_shutdown)
        for thread in self._threads:
            thread.start()

    # -- the public API ----------------------------------------------------------------------

    def runQuery(self, query: str, *args: Any, **kwargs: Any) -> defer.Deferred:
        """A Deferred of all the rows of ``query`` (a list), run on a reader."""
        return self._submit(self._reader_jobs if self.readers else self._writer_jobs,
                            _query, query, args, kwargs)

    def runOperation(self, command: str, *args: Any, **kwargs: Any) -> defer.Deferred:
        """A Deferred of None once ``command`` ran and was committed (on the writer)."""
        return self._submit(self._writer_jobs, _transaction, _execute, (command, args, kwargs), {})

    def runOperationMany(self, command: str, *args: Any, **kwargs: Any) -> defer.Deferred:
        """``cursor.executemany`` in one transaction: all rows are in, or none."""
        return self._submit(self._writer_jobs, _transaction, _execute_many, (command, args, kwargs), {})

    def runInteraction(self, interaction: Callable[..., Any], *args: Any, **kwargs: Any) -> defer.Deferred:
        """Run ``interaction(cursor, *args, **kwargs)`` in the writer thread,
        inside one transaction (``BEGIN IMMEDIATE``): committed when it
        returns, rolled back when it raises. The Deferred fires with what it
        returned, or fails with what it raised. It runs in a thread: it may
        block, but must not touch the reactor or the handler.
        """
        return self._submit(self._writer_jobs, _transaction, interaction, args, kwargs)

    def close(self) -> defer.Deferred:
        """Let the queued work finish, then close the connections and end the
        threads; the Deferred fires when they are gone. Calls made after
        ``close()`` fail with ``sqlite3.ProgrammingError``. Done by itself
        when the reactor stops, which waits for it: queued writes are not lost."""
        if self._closing is not None:
            return _chain(self._closing)
        self._closing = defer.Deferred()
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        for _ in range(self.readers):
            self._reader_jobs.put(_STOP)
        self._writer_jobs.put(_STOP)
        # joining would block the reactor: a plain thread joins them instead
        threading.Thread(target=self._join, name=f"AsyncSQLite close {self.path}", daemon=True).start()
        return _chain(self._closing)

    def _close_at_shutdown(self) -> defer.Deferred:
        # a "before" trigger: the reactor waits for its Deferred (it does not
        # for "during" ones), so queued work is done before the process exits
        self._shutdown_trigger = None  # firing now: it cannot be removed any more
        return self.close()

    # -- the threads -------------------------------------------------------------------------

    def _submit(self, jobs: queue.SimpleQueue, function: Callable, a: Any, b: Any, c: Any) -> defer.Deferred:
        if self._closing is not None:
            return defer.fail(sqlite3.ProgrammingError(f"AsyncSQLite({self.path!r}) is closed"))
        d: defer.Deferred = defer.Deferred()
        jobs.put((d, function, a, b, c))
        return d

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        if read_only:
            uri = "file:" + self.path.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=self._timeout, isolation_level=None,
                                   check_same_thread=False)
        else:
            # isolation_level=None: the module opens no transaction behind our
            # back; _transaction says BEGIN and COMMIT itself
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        if self._row_factory is not None:
            conn.row_factory = self._row_factory
        if self._on_connect is not None:
            self._on_connect(conn)
        return conn

    def _work(self, jobs: queue.SimpleQueue, read_only: bool, writer_ready: threading.Event) -> None:
        conn = None
        error: failure.Failure | None = None
        try:
            if read_only:
                writer_ready.wait()
            conn = self._connect(read_only)
        except BaseException:
            error = failure.Failure()
        finally:
            if not read_only:
                writer_ready.set()
        while True:
            job = jobs.get()
            if job is _STOP:
                break
            d, function, a, b, c = job
            if error is not None:  # the connection could not be opened: every call says why
                self._reactor.callFromThread(d.errback, error)
                continue
            try:
                result = function(conn, a, b, c)
            except BaseException:
                self._reactor.callFromThread(d.errback, failure.Failure())
            else:
                self._reactor.callFromThread(d.callback, result)
        if conn is not None:
            conn.close()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join()
        closing = self._closing
        self._reactor.callFromThread(closing.callback, None)


def _chain(d: defer.Deferred) -> defer.Deferred:
    # every caller of close() gets its own Deferred of the same event
    out: defer.Deferred = defer.Deferred()
    d.addBoth(lambda result: (out.callback(None), result)[1])
    return out


def _query(conn: sqlite3.Connection, query: str, args: tuple, kwargs: dict) -> list[Any]:
    cursor = conn.cursor()
    try:
        cursor.execute(query, *args, **kwargs)
        return cursor.fetchall()
    finally:
        cursor.close()


def _execute(cursor: sqlite3.Cursor, command: str, args: tuple, kwargs: dict) -> None:
    cursor.execute(command, *args, **kwargs)


def _execute_many(cursor: sqlite3.Cursor, command: str, args: tuple, kwargs: dict) -> None:
    cursor.executemany(command, *args, **kwargs)


def _transaction(conn: sqlite3.Connection, interaction: Callable, args: tuple, kwargs: dict) -> Any:
    # IMMEDIATE takes the write lock now, so the interaction cannot fail
    # half-way with SQLITE_BUSY when it first writes
    cursor = conn.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
        try:
            result = interaction(cursor, *args, **kwargs)
        except BaseException:
            if conn.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        if conn.in_transaction:  # unless the interaction ended it itself
            cursor.execute("COMMIT")
        return result
    finally:
        cursor.close()

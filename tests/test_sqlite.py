"""cyclone.sqlite: InlineSQLite (queries, operations, transactions, closing) and
AsyncSQLite (the same in threads: Deferreds, WAL readers next to one writer,
rollbacks, and a server that keeps answering while a query runs)."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import pytest_twisted
import treq
from twisted.internet import defer

import cyclone.web
from cyclone.sqlite import AsyncSQLite, InlineSQLite

from .conftest import poll_until


@pytest.fixture
def db():
    db = InlineSQLite()
    db.runOperation("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    yield db
    db.close()


def test_defaults():
    db = InlineSQLite()
    try:
        assert db.autoCommit is True
        assert isinstance(db.conn, sqlite3.Connection)
        assert isinstance(db.curs, sqlite3.Cursor)
    finally:
        db.close()


def test_query_returns_list_of_rows(db):
    db.runOperation("INSERT INTO t VALUES (?, ?)", ("a", 1))
    db.runOperation("INSERT INTO t VALUES (:k, :v)", {"k": "b", "v": 2})
    rows = db.runQuery("SELECT k, v FROM t ORDER BY k")
    assert rows == [("a", 1), ("b", 2)]
    assert isinstance(rows, list)
    assert db.runQuery("SELECT v FROM t WHERE k = ?", ("b",)) == [(2,)]
    assert db.runQuery("SELECT v FROM t WHERE k = ?", ("zz",)) == []


def test_operation_many(db):
    db.runOperationMany("INSERT INTO t VALUES (?, ?)", [("x", 1), ("y", 2), ("z", 3)])
    assert db.runQuery("SELECT count(*), sum(v) FROM t") == [(3, 6)]


def test_autocommit_is_visible_to_another_connection(tmp_path):
    path = str(tmp_path / "a.sqlite")
    with InlineSQLite(path) as db:
        db.runOperation("CREATE TABLE t (v INTEGER)")
        db.runOperation("INSERT INTO t VALUES (1)")
        other = sqlite3.connect(path)
        try:
            assert other.execute("SELECT v FROM t").fetchall() == [(1,)]
        finally:
            other.close()


def test_manual_commit_and_rollback(tmp_path):
    path = str(tmp_path / "m.sqlite")
    db = InlineSQLite(path, autoCommit=False)
    assert db.autoCommit is False
    db.runOperation("CREATE TABLE t (v INTEGER)")
    db.commit()
    db.runOperation("INSERT INTO t VALUES (1)")
    db.rollback()
    assert db.runQuery("SELECT v FROM t") == []
    db.runOperation("INSERT INTO t VALUES (2)")
    db.commit()
    db.runOperation("INSERT INTO t VALUES (3)")
    db.close()  # the uncommitted 3 is lost
    with InlineSQLite(path) as again:
        assert again.runQuery("SELECT v FROM t") == [(2,)]


def test_failed_operation_many_leaves_nothing_behind(db):
    # the third row collides with the first: the two inserted before the
    # error must not be committed by the next successful operation
    with pytest.raises(sqlite3.IntegrityError):
        db.runOperationMany("INSERT INTO t VALUES (?, ?)", [("a", 1), ("b", 2), ("a", 3)])
    db.runOperation("INSERT INTO t VALUES (?, ?)", ("c", 4))
    assert db.runQuery("SELECT k FROM t ORDER BY k") == [("c",)]


def test_failed_operation_raises(db):
    with pytest.raises(sqlite3.OperationalError):
        db.runOperation("INSERT INTO missing VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        db.runQuery("SELECT * FROM missing")


def test_close():
    db = InlineSQLite()
    db.close()
    with pytest.raises(sqlite3.ProgrammingError):
        db.runQuery("SELECT 1")


# ----------------------------------------------------------------------------
# AsyncSQLite: the same calls in threads, answers on Deferreds
# ----------------------------------------------------------------------------

inline = pytest_twisted.inlineCallbacks
WAIT = 10.0  # the longest a blocked SQL function waits for the test to release it


class Gate:
    """A SQL function ``gate(x)`` that blocks its worker thread until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, value):
        self.entered.set()
        if not self.opened.wait(WAIT):
            raise RuntimeError("the test never opened the gate")
        return value

    def install(self, conn) -> None:
        conn.create_function("gate", 1, self)


@pytest.fixture
def adb(tmp_path):
    dbs = []

    def make(**kwargs):
        db = AsyncSQLite(str(tmp_path / f"a{len(dbs)}.sqlite"), **kwargs)
        dbs.append(db)
        return db

    yield make
    for db in dbs:
        pytest_twisted.blockon(db.close())


@inline
def test_async_query_operation_many_and_wal(adb):
    db = adb()
    assert (yield db.runOperation("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")) is None
    yield db.runOperation("INSERT INTO t VALUES (?, ?)", ("a", 1))
    yield db.runOperation("INSERT INTO t VALUES (:k, :v)", {"k": "b", "v": 2})
    yield db.runOperationMany("INSERT INTO t VALUES (?, ?)", [("c", 3), ("d", 4)])
    rows = yield db.runQuery("SELECT k, v FROM t ORDER BY k")
    assert rows == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert (yield db.runQuery("SELECT v FROM t WHERE k = ?", ("zz",))) == []
    assert (yield db.runQuery("PRAGMA journal_mode")) == [("wal",)]


@inline
def test_async_row_factory(adb):
    db = adb(row_factory=sqlite3.Row)
    yield db.runOperation("CREATE TABLE t (k TEXT, v INTEGER)")
    yield db.runOperation("INSERT INTO t VALUES ('a', 1)")
    [row] = yield db.runQuery("SELECT k, v FROM t")
    assert (row["k"], row["v"]) == ("a", 1)


@inline
def test_async_errors_arrive_on_the_deferred(adb):
    db = adb()
    yield db.runOperation("CREATE TABLE t (k TEXT PRIMARY KEY)")
    yield db.runOperation("INSERT INTO t VALUES ('a')")
    with pytest.raises(sqlite3.IntegrityError):
        yield db.runOperation("INSERT INTO t VALUES ('a')")
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        yield db.runQuery("SELEKT 1")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        yield db.runQuery("SELECT * FROM missing")
    # readers are read-only: writes go through the writer
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        yield db.runQuery("INSERT INTO t VALUES ('b')")
    # and the threads still work after all that
    assert (yield db.runQuery("SELECT k FROM t")) == [("a",)]


@inline
def test_async_interaction_commits_and_returns(adb):
    db = adb()
    yield db.runOperation("CREATE TABLE t (v INTEGER)")

    def transfer(cursor, values):
        cursor.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
        cursor.execute("SELECT sum(v) FROM t")
        return cursor.fetchone()[0]

    assert (yield db.runInteraction(transfer, [1, 2, 3])) == 6
    assert (yield db.runQuery("SELECT count(*) FROM t")) == [(3,)]


@inline
def test_async_interaction_rolls_back_on_exception(adb):
    db = adb()
    yield db.runOperation("CREATE TABLE t (v INTEGER)")
    yield db.runOperation("INSERT INTO t VALUES (1)")

    class Refused(Exception):
        pass

    def half_done(cursor):
        cursor.execute("INSERT INTO t VALUES (2)")
        cursor.execute("DELETE FROM t WHERE v = 1")
        raise Refused("changed my mind")

    with pytest.raises(Refused, match="changed my mind"):
        yield db.runInteraction(half_done)
    assert (yield db.runQuery("SELECT v FROM t")) == [(1,)]
    # an SQL error inside the interaction rolls back too
    with pytest.raises(sqlite3.OperationalError):
        yield db.runInteraction(lambda c: (c.execute("INSERT INTO t VALUES (3)"), c.execute("BAD SQL")))
    assert (yield db.runQuery("SELECT v FROM t")) == [(1,)]


@inline
def test_async_failed_operation_many_leaves_nothing(adb):
    db = adb()
    yield db.runOperation("CREATE TABLE t (k TEXT PRIMARY KEY)")
    with pytest.raises(sqlite3.IntegrityError):
        yield db.runOperationMany("INSERT INTO t VALUES (?)", [("a",), ("b",), ("a",)])
    assert (yield db.runQuery("SELECT count(*) FROM t")) == [(0,)]


@inline
def test_async_in_memory_runs_on_the_writer():
    db = AsyncSQLite(":memory:")
    try:
        assert db.readers == 0
        yield db.runOperation("CREATE TABLE t (v INTEGER)")
        yield db.runOperation("INSERT INTO t VALUES (7)")
        # a reader would have its own, empty, in-memory database
        assert (yield db.runQuery("SELECT v FROM t")) == [(7,)]
    finally:
        yield db.close()


@inline
def test_async_close_finishes_queued_work_then_refuses(adb, tmp_path):
    db = AsyncSQLite(str(tmp_path / "c.sqlite"))
    yield db.runOperation("CREATE TABLE t (v INTEGER)")
    queued = [db.runOperation("INSERT INTO t VALUES (?)", (n,)) for n in range(20)]
    closed = db.close()
    yield defer.gatherResults(queued)
    yield closed
    assert all(not thread.is_alive() for thread in db._threads)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        yield db.runQuery("SELECT 1")
    yield db.close()  # a second close is harmless
    with InlineSQLite(str(tmp_path / "c.sqlite")) as check:
        assert check.runQuery("SELECT count(*) FROM t") == [(20,)]


@inline
def test_async_connection_error_arrives_on_each_call(tmp_path):
    def broken(conn):
        raise RuntimeError("cannot set up")

    db = AsyncSQLite(str(tmp_path / "b.sqlite"), on_connect=broken)
    try:
        with pytest.raises(RuntimeError, match="cannot set up"):
            yield db.runOperation("CREATE TABLE t (v INTEGER)")
        with pytest.raises(RuntimeError, match="cannot set up"):
            yield db.runQuery("SELECT 1")
    finally:
        yield db.close()


@inline
def test_async_readers_answer_while_the_writer_is_busy(adb):
    gate = Gate()
    db = adb(on_connect=gate.install)
    yield db.runOperation("CREATE TABLE t (v INTEGER)")
    yield db.runOperation("INSERT INTO t VALUES (1)")

    def slow_write(cursor):
        cursor.execute("INSERT INTO t VALUES (2)")
        cursor.execute("SELECT gate(1)")  # holds the write transaction open
        return "written"

    writing = db.runInteraction(slow_write)
    yield poll_until(gate.entered.is_set)
    # WAL: a reader sees the last committed state, and does not wait
    assert (yield db.runQuery("SELECT v FROM t")) == [(1,)]
    assert not writing.called
    gate.opened.set()
    assert (yield writing) == "written"
    assert (yield db.runQuery("SELECT v FROM t ORDER BY v")) == [(1,), (2,)]


@inline
def test_async_writes_and_other_reads_go_on_during_a_long_query(adb):
    gate = Gate()
    db = adb(on_connect=gate.install, readers=2)
    yield db.runOperation("CREATE TABLE t (v INTEGER)")
    long_query = db.runQuery("SELECT gate(count(*)) FROM t")
    yield poll_until(gate.entered.is_set)
    yield defer.gatherResults([db.runOperation("INSERT INTO t VALUES (?)", (n,)) for n in range(5)])
    assert (yield db.runQuery("SELECT count(*) FROM t")) == [(5,)]  # the other reader
    assert not long_query.called
    gate.opened.set()
    assert (yield long_query) == [(0,)]  # its snapshot was taken before the writes


# -- handlers on AsyncSQLite, served while a query runs ---------------------------------------


class SlowQuery(cyclone.web.RequestHandler):
    def initialize(self, db):
        self.db = db

    async def get(self):
        [(value,)] = await self.db.runQuery("SELECT gate(count(*)) FROM hits")
        self.write({"counted": value})


class Hit(cyclone.web.RequestHandler):
    def initialize(self, db):
        self.db = db

    async def post(self):
        await self.db.runOperation("INSERT INTO hits (who) VALUES (?)", (self.get_argument("who"),))
        [(total,)] = await self.db.runQuery("SELECT count(*) FROM hits")
        self.write({"total": total})


class Hello(cyclone.web.RequestHandler):
    def get(self):
        self.write("hello")


@inline
def test_async_handlers_write_while_the_reactor_answers_during_a_long_query(adb, listen):
    gate = Gate()
    db = adb(on_connect=gate.install)
    yield db.runOperation("CREATE TABLE hits (id INTEGER PRIMARY KEY, who TEXT)")
    app = cyclone.web.Application(
        [("/slow", SlowQuery, {"db": db}), ("/hit", Hit, {"db": db}), ("/hello", Hello)]
    )
    base = f"http://127.0.0.1:{listen(app)}"
    # persistent=False: no keep-alive connection may outlive the test (trial-style
    # tests later in the run check that the reactor is clean)
    slow = treq.get(base + "/slow", persistent=False)
    slow_answered = []
    slow.addBoth(lambda result: (slow_answered.append(True), result)[1])
    yield poll_until(gate.entered.is_set)  # the long query is running in a reader thread

    hits = [treq.post(base + "/hit", data={"who": f"user{n}"}, persistent=False) for n in range(8)]
    responses = yield defer.gatherResults(hits)
    assert [r.code for r in responses] == [200] * 8
    totals = []
    for r in responses:
        totals.append((yield r.json())["total"])
    assert max(totals) == 8  # each saw its own insert committed
    hello = yield treq.get(base + "/hello", persistent=False)
    assert (hello.code, (yield hello.text())) == (200, "hello")
    assert slow_answered == []  # all of that was answered while the long query held on

    gate.opened.set()
    response = yield slow
    assert response.code == 200
    assert (yield response.json()) == {"counted": 0}
    assert (yield db.runQuery("SELECT count(DISTINCT who) FROM hits")) == [(8,)]


SHUTDOWN_SCRIPT = """
import sys
from twisted.internet import reactor
from cyclone.sqlite import AsyncSQLite

db = AsyncSQLite(sys.argv[1])
db.runOperation("CREATE TABLE t (v INTEGER)")
for n in range(200):
    db.runOperation("INSERT INTO t VALUES (?)", (n,))
reactor.callWhenRunning(reactor.stop)  # while most of the inserts still wait in the queue
reactor.run()
print("stopped", flush=True)
"""


def test_async_reactor_shutdown_waits_for_queued_work(tmp_path):
    import subprocess
    import sys

    from tests.test_plugin import child_env

    path = tmp_path / "s.sqlite"
    result = subprocess.run([sys.executable, "-c", SHUTDOWN_SCRIPT, str(path)], env=child_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout == "stopped\n", result.stderr
    with InlineSQLite(str(path)) as check:
        assert check.runQuery("SELECT count(*), sum(v) FROM t") == [(200, sum(range(200)))]

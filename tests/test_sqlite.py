"""cyclone.sqlite.InlineSQLite: queries, operations, transactions, closing."""

from __future__ import annotations

import sqlite3

import pytest

from cyclone.sqlite import InlineSQLite


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

"""cyclone.sqlite: a small blocking wrapper around :mod:`sqlite3`.

``InlineSQLite`` runs queries in the calling thread (hence "inline"): SQLite
is an in-process library, and short queries on a local file are usually
cheaper than a hop to a thread pool. Long queries block the reactor; use
``twisted.enterprise.adbapi`` for those. Typical use::

    db = InlineSQLite("app.sqlite")
    db.runOperation("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
    db.runOperation("INSERT INTO kv VALUES (?, ?)", ("a", "1"))
    db.runQuery("SELECT v FROM kv WHERE k = ?", ("a",))   # -> [("1",)]

Arguments after the SQL are passed to ``cursor.execute`` as they are: a
sequence for ``?`` placeholders or a mapping for ``:name`` placeholders.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["InlineSQLite"]


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

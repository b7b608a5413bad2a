#!/usr/bin/env python3
"""A small notes service written with cyclone.bottle.

    python bottledemo.py [--port 8888] [--db notes.sqlite]

Routes (see README.rst):

    GET  /                      a page listing the notes, with a form
    GET  /login?user=NAME       sign in (a signed cookie), then back to /
    GET  /logout
    GET  /notes                 every note, as JSON
    POST /notes                 add one (form field "text"; signed in)
    GET  /notes/{id:int}        one note as JSON; 404 if missing
    DELETE /notes/{id:int}      remove it (signed in)
    GET  /count/{n:int}         counts to n, one line at a time (a stream)
    GET  /wait/{seconds:float}  answers after a delay, without blocking others
    WS   /echo                  a WebSocket that sends back what it gets
"""

from __future__ import annotations

import argparse
import html
import sys

from twisted.internet import reactor, task

import cyclone.web
import cyclone.websocket
from cyclone.bottle import App
from cyclone.sqlite import InlineSQLite

app = App()


class BaseHandler(cyclone.web.RequestHandler):
    """Every route's handler: knows the signed-in user and the database."""

    def get_current_user(self):
        user = self.get_signed_cookie("user")
        return user.decode() if user else None

    def get_login_url(self):
        return "/login"

    @property
    def db(self) -> InlineSQLite:
        return self.settings["db"]


class Echo(cyclone.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message)


@app.route("/")
def index(handler):
    rows = handler.db.runQuery("SELECT id, author, text FROM notes ORDER BY id")
    items = "".join(
        f"<li>#{id} {html.escape(author)}: {html.escape(text)}</li>" for id, author, text in rows
    )
    who = handler.current_user
    return (
        "<!doctype html><title>notes</title>"
        + (f"<p>signed in as {html.escape(who)} (<a href='/logout'>sign out</a>)</p>" if who
           else "<p><a href='/login?user=guest'>sign in as guest</a></p>")
        + f"<ul>{items}</ul>"
        + "<form method=post action=/notes>" + handler.xsrf_form_html()
        + "<input name=text><button>add</button></form>"
    )


@app.route("/login")
def login(handler):
    handler.set_signed_cookie("user", handler.get_argument("user"))
    handler.redirect("/")


@app.route("/logout")
def logout(handler):
    handler.clear_cookie("user")
    handler.redirect("/")


@app.route("/notes")
def list_notes(handler):
    rows = handler.db.runQuery("SELECT id, author, text FROM notes ORDER BY id")
    return {"notes": [{"id": id, "author": author, "text": text} for id, author, text in rows]}


@app.route("/notes", method="POST")
@cyclone.web.authenticated
def add_note(handler):
    text = handler.get_argument("text")
    handler.db.runOperation("INSERT INTO notes (author, text) VALUES (?, ?)", (handler.current_user, text))
    (new_id,), = handler.db.runQuery("SELECT last_insert_rowid()")
    handler.set_status(201)
    handler.set_header("Location", f"/notes/{new_id}")
    return {"id": new_id}


@app.route("/notes/{id:int}")
def get_note(handler, id):
    rows = handler.db.runQuery("SELECT id, author, text FROM notes WHERE id = ?", (id,))
    if not rows:
        raise cyclone.web.HTTPError(404)
    (id, author, text), = rows
    return {"id": id, "author": author, "text": text}


@app.route("/notes/{id:int}", method="DELETE")
@cyclone.web.authenticated
def delete_note(handler, id):
    handler.db.runOperation("DELETE FROM notes WHERE id = ?", (id,))
    handler.set_status(204)


@app.route("/count/{n:int}")
def count(handler, n):
    handler.set_header("Content-Type", "text/plain")
    if not 0 <= n <= 10000:
        raise cyclone.web.HTTPError(400, reason="n is 0 to 10000")
    return (f"{i}\n" for i in range(1, n + 1))  # each line is flushed before the next


@app.route("/wait/{seconds:float}")
async def wait(handler, seconds):
    seconds = min(max(seconds, 0.0), 5.0)
    await task.deferLater(reactor, seconds, lambda: None)
    return {"waited": seconds}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    args = parser.parse_args(argv)
    db = InlineSQLite(args.db)
    db.runOperation("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, author TEXT, text TEXT)")
    app.run(
        host=args.address,
        port=args.port,
        base_handler=BaseHandler,
        more_handlers=[(r"/echo", Echo)],
        db=db,
        cookie_secret="demo-only: use a long random secret",
        xsrf_cookies=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])

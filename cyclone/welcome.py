"""The application ``twistd cyclone`` serves when it is given none.

A welcome page showing cyclone's version, with links to a handful of small
examples that run in the same process: plain text, JSON, a template with a
loop, a form protected against XSRF and a counter kept in a signed cookie.
Each example is an ordinary handler in this module, and the page shows its
source, so the page doubles as a cheat sheet.
"""

from __future__ import annotations

import inspect
import platform
import secrets
import time
from typing import Any

import cyclone
import cyclone.web
import twisted
from cyclone.template import DictLoader

__all__ = ["Application"]


_BASE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{% block title %}cyclone {{ version }}{% end %}</title>
<style>
body { font-family: sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; color: #222; }
pre { background: #f4f4f4; padding: .8em; overflow-x: auto; }
code { background: #f4f4f4; }
table { border-collapse: collapse; }
td { border: 1px solid #ccc; padding: .2em .5em; text-align: right; }
.note { color: #666; }
</style>
</head>
<body>
{% block body %}{% end %}
<p class="note"><a href="/">back to the welcome page</a> &middot; cyclone {{ version }}</p>
</body>
</html>
"""

_INDEX = """{% extends "base.html" %}
{% block body %}
<h1>cyclone {{ version }} is running</h1>
<p>This is cyclone's built-in welcome application: <code>twistd cyclone</code>
was started without an application of its own. Python {{ python }},
Twisted {{ twisted }}, reactor <code>{{ reactor }}</code>.</p>
<p>Serve your own application instead:</p>
<pre>cyclone run myapp.py                      # a file defining an Application subclass
twistd -n cyclone -r mypackage.web.Application -c myapp.conf
twistd -n cyclone --help                  # every option</pre>
<h2>Live examples</h2>
<p>Each link below is answered by the handler shown under it, in this process.</p>
{% for example in examples %}
<h3><a href="{{ example["url"] }}">{{ example["url"] }}</a> &mdash; {{ example["title"] }}</h3>
<pre>{{ example["source"] }}</pre>
{% end %}
{% end %}
"""

_TABLE = """{% extends "base.html" %}
{% block body %}
<h1>Multiplication table up to {{ size }}</h1>
<p>Rendered by a template with two nested <code>{%! for %}</code> loops;
try <a href="/template?size={{ size + 1 }}">?size={{ size + 1 }}</a>.</p>
<table>
{% for row in range(1, size + 1) %}
<tr>{% for column in range(1, size + 1) %}<td>{{ row * column }}</td>{% end %}</tr>
{% end %}
</table>
{% end %}
"""

_FORM = """{% extends "base.html" %}
{% block body %}
<h1>A form protected against XSRF</h1>
{% if message is not None %}
<p>You said: <strong>{{ message }}</strong></p>
{% end %}
<form method="post" action="/form">
{% raw xsrf_form_html() %}
<input type="text" name="message" placeholder="say something">
<input type="submit" value="send">
</form>
<p class="note">The hidden <code>_xsrf</code> field must match the <code>_xsrf</code>
cookie, or the POST is refused with 403.</p>
{% end %}
"""

_TEMPLATES = {"base.html": _BASE, "index.html": _INDEX, "table.html": _TABLE, "form.html": _FORM}


class BaseHandler(cyclone.web.RequestHandler):
    """Adds the cyclone version to every template's namespace."""

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["version"] = cyclone.__version__
        return namespace


class HelloHandler(cyclone.web.RequestHandler):
    """Plain text, with an optional ``?name=`` argument."""

    def get(self) -> None:
        name = self.get_argument("name", "world")
        # text/plain, so whatever the name holds is never interpreted as HTML
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(f"Hello, {name}!\n")


class JSONHandler(cyclone.web.RequestHandler):
    """A dict written with ``self.write`` is sent as JSON."""

    def get(self) -> None:
        self.write(
            {
                "cyclone": cyclone.__version__,
                "time": time.time(),
                "method": self.request.method,
                "path": self.request.path,
                "remote_ip": self.request.remote_ip,
                "arguments": {k: self.get_arguments(k) for k in self.request.query_arguments},
            }
        )


class TemplateHandler(BaseHandler):
    """A template with nested loops; ``?size=`` picks the table size."""

    def get(self) -> None:
        try:
            size = int(self.get_argument("size", "9"))
        except ValueError:
            raise cyclone.web.HTTPError(400, "size must be an integer") from None
        self.render("table.html", size=max(1, min(size, 20)))


class FormHandler(BaseHandler):
    """GET shows a form, POST echoes it; the app checks the XSRF token."""

    def get(self) -> None:
        self.render("form.html", message=None)

    def post(self) -> None:
        # reaching here means the _xsrf field matched the cookie
        self.render("form.html", message=self.get_argument("message", ""))


class CounterHandler(cyclone.web.RequestHandler):
    """Counts your visits in a signed cookie; ``?reset=1`` starts over."""

    def get(self) -> None:
        raw = None if self.get_argument("reset", None) else self.get_signed_cookie("visits")
        # a tampered or expired cookie decodes to None: start again from zero
        visits = int(raw) + 1 if raw is not None and raw.isdigit() else 1
        self.set_signed_cookie("visits", str(visits))
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(f"You have been here {visits} time{'s' if visits != 1 else ''}.\n")


class IndexHandler(BaseHandler):
    """The welcome page: version, runtime, and the examples with their source."""

    def get(self) -> None:
        from twisted.internet import reactor

        self.render(
            "index.html",
            python=platform.python_version(),
            twisted=twisted.__version__,
            reactor=type(reactor).__name__,
            examples=self.application.examples,
        )


# (url, title, handler): the index lists them in this order
EXAMPLES: list[tuple[str, str, type[cyclone.web.RequestHandler]]] = [
    ("/hello", "plain text", HelloHandler),
    ("/json", "a JSON endpoint", JSONHandler),
    ("/template", "a template with a loop", TemplateHandler),
    ("/form", "a form with XSRF protection", FormHandler),
    ("/counter", "a counter in a signed cookie", CounterHandler),
]


def _source(handler: type) -> str:
    """The handler's source code, or its docstring when the source is not shipped."""
    try:
        return inspect.getsource(handler)
    except (OSError, TypeError):
        return f"class {handler.__name__}: {handler.__doc__}"


class Application(cyclone.web.Application):
    """The welcome application.

    ``appopts`` is accepted (and ignored) so that it can be built like any
    application ``twistd cyclone`` loads.
    """

    def __init__(self, appopts: str | None = None) -> None:
        self.examples = [
            {"url": url, "title": title, "source": _source(handler)} for url, title, handler in EXAMPLES
        ]
        handlers: list[tuple[str, type[cyclone.web.RequestHandler]]] = [(r"/", IndexHandler)]
        handlers += [(url, handler) for url, _, handler in EXAMPLES]
        super().__init__(
            handlers,
            template_loader=DictLoader(_TEMPLATES),
            xsrf_cookies=True,
            # a fresh secret per process: the examples' cookies need not outlive it
            cookie_secret=secrets.token_hex(32),
        )

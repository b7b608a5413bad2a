"""Escaping and unescaping for HTML, URLs and JSON, plus small string helpers.

The API and the outputs follow Tornado 6's ``tornado.escape``: ``xhtml_escape``
escapes ``'`` as ``&#x27;`` (like :func:`html.escape`), ``url_escape`` and
``url_unescape`` take ``plus=``, ``url_unescape(..., encoding=None)`` returns
bytes and ``parse_qs_bytes`` returns byte-string values.  The Python 2-era
aliases of the original cyclone (``unicode_type``, ``bytes_type``,
``basestring_type``) are re-exported.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from typing import Any, Callable, overload

from cyclone.urlencoded import parse_urlencoded, unquote_bytes
from cyclone.util import basestring_type, bytes_type, unicode_type

__all__ = [
    "xhtml_escape",
    "xhtml_unescape",
    "url_escape",
    "url_unescape",
    "json_encode",
    "json_decode",
    "squeeze",
    "utf8",
    "to_unicode",
    "native_str",
    "to_basestring",
    "recursive_unicode",
    "linkify",
    "parse_qs_bytes",
    "unquote_bytes",
    "unicode_type",
    "bytes_type",
    "basestring_type",
]


def xhtml_escape(value: str | bytes) -> str:
    """Escape ``& < > " '`` so the text is safe inside HTML/XML content and
    quoted attribute values (``'`` becomes ``&#x27;``)."""
    return html.escape(to_unicode(value), quote=True)


def xhtml_unescape(value: str | bytes) -> str:
    """Replace named (``&amp;``), decimal (``&#39;``) and hex (``&#x27;``)
    character references with the characters they stand for."""
    return html.unescape(to_unicode(value))


try:
    from json.encoder import c_make_encoder as _c_make_encoder
except ImportError:  # pragma: no cover - a Python without the _json accelerator
    _c_make_encoder = None

if _c_make_encoder is not None:
    # json.dumps() with its defaults builds this C encoder on every call, which
    # costs more than encoding a small document; one made once does the same
    # work. It skips the circular-reference check (markers=None): a circular
    # value ends in RecursionError instead of json's ValueError.
    _encode_json_chunks = _c_make_encoder(
        None,  # markers
        json.JSONEncoder().default,  # TypeError for what JSON cannot carry
        json.encoder.encode_basestring_ascii,  # ensure_ascii=True
        None,  # indent
        ": ",
        ", ",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )

    def _dumps(value: Any) -> str:
        return "".join(_encode_json_chunks(value, 0))
else:  # pragma: no cover
    _dumps = json.dumps


def json_encode(value: Any) -> str:
    """Serialize ``value`` to JSON (what ``json.dumps`` gives), escaping
    ``</`` as ``<\\/``.

    The escape keeps the output from closing a ``<script>`` element when it is
    embedded in HTML; JSON parsers read ``\\/`` back as ``/``.
    """
    return _dumps(value).replace("</", "<\\/")


def json_decode(value: str | bytes) -> Any:
    """Parse a JSON document given as ``str`` or UTF-8/16/32 ``bytes``."""
    return json.loads(value)


_SQUEEZE_RE = re.compile(r"[\x00-\x20]+")


def squeeze(value: str) -> str:
    """Collapse every run of whitespace/control characters into one space and
    strip the ends: ``squeeze(" a \\t\\n b ") == "a b"``."""
    return _SQUEEZE_RE.sub(" ", value).strip()


def url_escape(value: str | bytes, plus: bool = True) -> str:
    """Percent-encode ``value`` (UTF-8 first if it is ``str``).

    With ``plus=True`` (the default, for query strings) spaces become ``+`` and
    ``/`` is encoded; with ``plus=False`` (for paths) spaces become ``%20`` and
    ``/`` is kept.
    """
    if plus:
        return urllib.parse.quote_plus(utf8(value))
    return urllib.parse.quote(utf8(value))


# -- percent-decoding ------------------------------------------------------
# The linear decoders live in cyclone.urlencoded (sans-IO); urllib.parse's
# make an object per "%" (seconds and gigabytes for a large hostile input).

_ASCII_RUN_RE = re.compile(r"([\x00-\x7f]+)")


def _unquote_text(text: str, encoding: str, errors: str) -> str:
    """``urllib.parse.unquote(text, encoding, errors)``, linear."""
    if "%" not in text:
        return text
    if text.isascii():
        return unquote_bytes(text.encode("ascii")).decode(encoding, errors)
    # As urllib: only the ASCII runs are decoded, each on its own; the other
    # characters are kept.  Joined in batches so that the list of pieces
    # never holds an object per character.
    out: list[str] = []
    batch: list[str] = []
    for run in _ASCII_RUN_RE.split(text):
        if run and run.isascii():
            run = unquote_bytes(run.encode("ascii")).decode(encoding, errors)
        batch.append(run)
        if len(batch) >= 4096:
            out.append("".join(batch))
            batch.clear()
    out.append("".join(batch))
    return "".join(out)


@overload
def url_unescape(value: str | bytes, encoding: None, plus: bool = True) -> bytes: ...


@overload
def url_unescape(value: str | bytes, encoding: str = "utf-8", plus: bool = True) -> str: ...


def url_unescape(
    value: str | bytes, encoding: str | None = "utf-8", plus: bool = True
) -> str | bytes:
    """Decode a percent-encoded ``value`` (``str`` or ``bytes``).

    The decoded bytes are turned into text with ``encoding`` (invalid
    sequences become U+FFFD); ``encoding=None`` returns the raw bytes (a
    ``str`` value is UTF-8 encoded first).  With ``plus=True`` a ``+`` is
    read as a space, as in query strings.  Linear in time and memory on any
    input (see :func:`unquote_bytes`).
    """
    if encoding is None:
        data = value.encode("utf-8") if isinstance(value, str) else value
        if plus:
            data = data.replace(b"+", b" ")
        return unquote_bytes(data)
    text = to_basestring(value)
    if plus:
        text = text.replace("+", " ")
    return _unquote_text(text, encoding, "replace")


def parse_qs_bytes(
    qs: str | bytes,
    keep_blank_values: bool = False,
    strict_parsing: bool = False,
    *,
    max_num_fields: int | None = None,
) -> dict[str, list[bytes]]:
    """Parse a query string into ``{name: [value, ...]}`` with ``bytes`` values.

    Percent-escapes are decoded byte for byte, so values need not be UTF-8;
    the caller decodes them.  Names are decoded as latin-1, as Tornado does.
    A ``str`` is read as latin-1 (as UTF-8 if it has other characters).
    ``max_num_fields`` caps the number of ``&``-separated fields (empty ones
    count): more raise ``ValueError`` (:class:`~cyclone.urlencoded.UrlencodedError`)
    before anything is decoded.  Linear in time and memory on any input.
    """
    if isinstance(qs, str):
        try:
            qs = qs.encode("latin1")
        except UnicodeEncodeError:
            qs = qs.encode("utf-8")
    return parse_urlencoded(
        qs,
        max_fields=max_num_fields,
        keep_blank_values=keep_blank_values,
        strict_parsing=strict_parsing,
    )


def utf8(value: str | bytes | None) -> bytes | None:
    """Return ``value`` as UTF-8 bytes; ``bytes`` and ``None`` pass through.

    Raises ``TypeError`` for anything else.
    """
    if value is None or isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"Expected bytes, unicode, or None; got {type(value)!r}")
    return value.encode("utf-8")


def to_unicode(value: str | bytes | None) -> str | None:
    """Return ``value`` as ``str`` (decoding bytes as UTF-8); ``str`` and
    ``None`` pass through.

    Raises ``TypeError`` for anything else.
    """
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        raise TypeError(f"Expected bytes, unicode, or None; got {type(value)!r}")
    return value.decode("utf-8")


# On Python 3 the "native" and "base" string types are both str.
_unicode = to_unicode
native_str = to_unicode
to_basestring = to_unicode


def recursive_unicode(obj: Any) -> Any:
    """Decode every ``bytes`` inside nested dicts, lists and tuples as UTF-8
    (keys too); other objects are returned unchanged."""
    if isinstance(obj, dict):
        return {recursive_unicode(k): recursive_unicode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [recursive_unicode(i) for i in obj]
    if isinstance(obj, tuple):
        return tuple(recursive_unicode(i) for i in obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8")
    return obj


# linkify works on already-escaped text, so '&' can only start an entity
# there.  &amp; and &quot; may occur inside a URL; anything else ('&lt;',
# '&#x27;', ...) ends it.
#
# A URL body is a run of "units" that must end on a character that is not
# punctuation, so "see http://x.com/a." does not swallow the full stop.  A
# parenthesised group with no nested parentheses may appear in the body
# ("http://en.wikipedia.org/wiki/Foo_(bar)").  Punctuation units and final
# characters are disjoint and nothing follows the body, so the possessive
# quantifiers never change the result; they keep the match linear in the
# length of the URL and stop the engine from stacking backtrack points.
_PUNCT = r"""!"#$%'*+,.:;<=>?@\[\]^`{|}~"""
_TRAILING_UNIT = r"""(?:[""" + _PUNCT + r"""]|&amp;|&quot;)"""
_FINAL_CHAR = r"""[^\s""" + _PUNCT + r"""&()]"""
_ANY_UNIT = r"""(?:[^\s&()]|&amp;|&quot;)"""
_BODY = (
    r"(?:(?:" + _TRAILING_UNIT + r"*+" + _FINAL_CHAR + r"++)"
    r"|(?:\(" + _ANY_UNIT + r"*+\)))++"
)
# A URL starts at a word boundary with "scheme:/" (1 to 3 slashes) or "www.".
# A scheme runs to the end of its run of [\w-] characters, so trying it at
# every boundary inside a long run like "a-b-c-...-z" would rescan the run
# each time (quadratic).  The scheme alternative is therefore only tried where
# a run starts -- skipping leading dashes, which carry no word boundary --
# which finds the same links, as every boundary in a run would see the same
# scheme end and the same text after it.  "www." needs no such care.
_URL_RE = re.compile(
    r"(?:(?<![\w-])(?P<dashes>-*+)"
    r"(?P<url>(?P<proto>[\w-]++):(?P<slashes>/{1,3})" + _BODY + r")"
    r"|\b(?P<www>www\." + _BODY + r"))"
)

# Display length above which shorten=True abbreviates a link's text.
_SHORTEN_AT = 30


def _shorten(url: str, proto: str | None, slashes: str | None) -> str:
    """Abbreviate ``url`` for display: keep the host and the start of the
    first path segment, then "..."; returns ``url`` itself when that would
    not be shorter."""
    original = url
    prefix_len = len(proto) + 1 + len(slashes or "") if proto else 0
    host, sep, rest = url[prefix_len:].partition("/")
    if sep:
        # Only the first 8 characters of the first path segment, up to any
        # query string or extension.
        head = rest.partition("/")[0][:8].partition("?")[0].partition(".")[0]
        url = url[:prefix_len] + host + "/" + head
    if len(url) > _SHORTEN_AT * 1.5:
        url = url[:_SHORTEN_AT]
    if url != original:
        # Don't leave half an entity (e.g. "&am") at the cut.
        amp = url.rfind("&")
        if amp > _SHORTEN_AT - 5:
            url = url[:amp]
        url += "..."
        if len(url) >= len(original):
            return original
    return url


def linkify(
    text: str | bytes,
    shorten: bool = False,
    extra_params: str | Callable[[str], str] = "",
    require_protocol: bool = False,
    permitted_protocols: list[str] | set[str] | tuple[str, ...] = ("http", "https"),
) -> str:
    """HTML-escape ``text`` and turn the URLs in it into links.

    ``linkify("Hello http://tornadoweb.org!")`` returns
    ``'Hello <a href="http://tornadoweb.org">http://tornadoweb.org</a>!'``.

    * ``shorten``: abbreviate long link texts (the full URL goes in ``title``).
    * ``extra_params``: text added inside the ``<a>`` tag, e.g.
      ``'rel="nofollow"'``, or a callable given the href that returns it.
    * ``require_protocol``: when false, ``www.example.com`` is linked too (as
      ``http://www.example.com``).
    * ``permitted_protocols``: schemes that are linked; anything else (e.g.
      ``javascript:``) is left as text.  Never permit ``javascript``.
    """
    if extra_params and not callable(extra_params):
        extra_params = " " + extra_params.strip()

    def make_link(m: re.Match[str]) -> str:
        proto = m.group("proto")
        if proto is None:
            prefix, url, slashes = "", m.group("www"), None
        else:
            prefix, url, slashes = m.group("dashes"), m.group("url"), m.group("slashes")
        if require_protocol and not proto:
            return url
        if proto and proto not in permitted_protocols:
            return prefix + url
        href = url if proto else "http://" + url
        if callable(extra_params):
            params = " " + extra_params(href).strip()
        else:
            params = extra_params
        if shorten and len(url) > _SHORTEN_AT:
            short = _shorten(url, proto, slashes)
            if short != url:
                params += f' title="{href}"'
                url = short
        return f'{prefix}<a href="{href}"{params}>{url}</a>'

    # The text is escaped first, so href and link text (both substrings of the
    # escaped text) need no further escaping.
    return _URL_RE.sub(make_link, xhtml_escape(text))

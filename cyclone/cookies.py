"""``Set-Cookie`` header values, written byte for byte as Tornado 6.6 writes them.

Tornado builds the header with the standard library's ``http.cookies.Morsel``;
cyclone formats it itself (no ``SimpleCookie`` per response) to the same
bytes:

* the value is sent bare when every character is a letter, a digit or one of
  ``!#$%&'*+-.^_`|~:``; otherwise it is put in double quotes, with ``"`` and
  ``\\`` backslash-escaped and ``;``, ``,``, DEL and Latin-1 characters
  written as 3-digit octal escapes (``a;b`` becomes ``"a\\073b"``,
  ``café`` becomes ``"caf\\351"``), which ``http.cookies`` reads back;
* attributes follow in the order ``Comment``, ``Domain``, ``expires``,
  ``HttpOnly``, ``Max-Age``, ``Partitioned``, ``Path``, ``SameSite``,
  ``Secure``, ``Version`` (the standard library's alphabetical order and
  spelling, lower-case ``expires`` included).

Anything that cannot be sent raises ``CookieError`` when the cookie is set,
never later when the response head is written.
"""

from __future__ import annotations

import datetime
import re
import time
import warnings
from http import cookies as _http_cookies
from typing import Any

from cyclone import httputil
from cyclone.escape import to_unicode

__all__ = ["CookieError", "check_cookie_name", "format_set_cookie", "quote_cookie_value"]


class CookieError(_http_cookies.CookieError, ValueError):
    """A cookie name, value or attribute that cannot be sent.

    An ``http.cookies.CookieError`` (what Tornado raises) and a ``ValueError``
    (what Tornado raises for a control character in a value, and what cyclone
    raised before), so either ``except`` clause catches it.
    """


# RFC 6265 token characters that http.cookies sends without quotes (":" included)
_LEGAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~:]+")
# never inside a value, quoted or not (as Tornado): controls and space
_VALUE_BAD_RE = re.compile(r"[\x00-\x20]")
# never in a name or an attribute value: they would end or split the pair
_ATTR_BAD_RE = re.compile(r"[\x00-\x20;\x7f]")
_DATE_BAD_RE = re.compile(r"[\x00-\x1f;\x7f\x80-\U0010ffff]")
# what must be escaped inside the double quotes
_QUOTE_RE = re.compile(r'[\\";,\x7f-\xff]')

# lower-case key -> spelling on the wire, in the order the attributes are written
_ATTRIBUTES = {
    "comment": "Comment",
    "domain": "Domain",
    "expires": "expires",
    "httponly": "HttpOnly",
    "max-age": "Max-Age",
    "partitioned": "Partitioned",
    "path": "Path",
    "samesite": "SameSite",
    "secure": "Secure",
    "version": "Version",
}
_FLAGS = frozenset(("httponly", "partitioned", "secure"))
_SAMESITE = frozenset(("strict", "lax", "none"))


def _escape(match: re.Match) -> str:
    char = match.group()
    if char == '"' or char == "\\":
        return "\\" + char
    return "\\%03o" % ord(char)


def quote_cookie_value(value: str) -> str:
    """``value`` as it goes after ``name=``: bare if it is a token, else quoted.

    >>> quote_cookie_value("a=b")
    '"a=b"'
    >>> quote_cookie_value("a;b")
    '"a\\\\073b"'

    Raises ``CookieError`` for a control character or space (not sendable
    even quoted) and for characters outside Latin-1 (a header cannot carry
    them, and ``http.cookies`` has no escape for them).
    """
    if _LEGAL_RE.fullmatch(value):
        return value
    if _VALUE_BAD_RE.search(value):
        raise CookieError(f"Invalid cookie value {value!r}: control character or space")
    _check_latin1("value", value)
    return '"' + _QUOTE_RE.sub(_escape, value) + '"'


def _check_latin1(what: str, value: str) -> None:
    if not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise CookieError(f"Invalid cookie {what} {value!r}: not encodable as latin-1") from None


# The messages start as Tornado's do ("Invalid cookie attribute domain=..."):
# Tornado's own tests look for those words.


def _check_attribute(key: str, value: str) -> str:
    if _ATTR_BAD_RE.search(value):
        raise CookieError(f"Invalid cookie attribute {key}={value!r}: control character, space or ';'")
    _check_latin1(key, value)
    return value


def check_cookie_name(name: str) -> None:
    """Raise ``CookieError`` unless ``name`` can be a cookie's name: a non-empty
    token that is not an attribute name (``Path``, ``expires``, ...)."""
    if _ATTR_BAD_RE.search(name):
        raise CookieError(f"Invalid cookie attribute name={name!r}: control character, space or ';'")
    if not _LEGAL_RE.fullmatch(name):
        raise CookieError(f"Illegal cookie name {name!r}: not a token")
    if name.lower() in _ATTRIBUTES:
        raise CookieError(f"Illegal cookie name {name!r}: the name of an attribute")


def format_set_cookie(
    name: str | bytes,
    value: str | bytes,
    domain: str | None = None,
    expires: float | tuple | time.struct_time | datetime.datetime | str | None = None,
    path: str | None = "/",
    expires_days: float | None = None,
    *,
    max_age: int | str | None = None,
    httponly: bool = False,
    secure: bool = False,
    samesite: str | None = None,
    stacklevel: int = 2,
    **kwargs: Any,
) -> str:
    """The ``Set-Cookie`` header value for ``RequestHandler.set_cookie``'s arguments.

    ``expires`` is a POSIX timestamp, a UTC time tuple or a ``datetime``
    (naive = UTC); ``expires_days`` counts from now and is used only without
    ``expires``. A false ``expires``, ``domain``, ``path`` or ``samesite``
    leaves the attribute out; ``max_age`` is written whenever it is not None
    (``Max-Age=0`` included). ``samesite`` must be Strict, Lax or None (any
    case, written as given).

    Further keyword arguments name other attributes (``comment``, ``version``,
    ``partitioned``, ``max-age`` via ``**{...}``) and override the named ones;
    as in Tornado they are matched case-insensitively, with a
    ``DeprecationWarning`` for a name not in lower case (``HttpOnly``). An
    unknown attribute raises ``CookieError``. ``stacklevel`` points that
    warning at the caller (``set_cookie`` passes its own caller's level).
    """
    name = to_unicode(name)
    value = to_unicode(value)
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"cookie name and value must be str or bytes, not {name!r}, {value!r}")
    check_cookie_name(name)
    attrs: dict[str, Any] = {}
    if domain:
        attrs["domain"] = domain
    if expires_days is not None and not expires:
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=expires_days)
    if expires:
        attrs["expires"] = expires
    if path:
        attrs["path"] = path
    if max_age is not None:
        attrs["max-age"] = max_age
    if httponly:
        attrs["httponly"] = True
    if secure:
        attrs["secure"] = True
    if samesite:
        attrs["samesite"] = samesite
    if kwargs:
        for key, extra in kwargs.items():
            lower = key.lower()
            if lower not in _ATTRIBUTES:
                raise CookieError(f"Invalid attribute {key!r}: not a cookie attribute")
            if _ATTR_BAD_RE.search(str(extra)):
                raise CookieError(f"Invalid cookie attribute {key}={extra!r}: control character, space or ';'")
            if lower in _FLAGS or extra is None or extra == "":
                attrs[lower] = extra
            elif lower in ("expires", "max-age"):
                attrs[lower] = extra
            else:
                attrs[lower] = str(extra)
        mixed_case = sorted(key for key in kwargs if key != key.lower())
        if mixed_case:
            # Tornado 7 is to take attribute keywords in lower case only
            warnings.warn(
                f"set_cookie() attribute keywords {mixed_case} should be lower case",
                DeprecationWarning,
                stacklevel=stacklevel,
            )
    parts = [f"{name}={quote_cookie_value(value)}"]
    for key in sorted(attrs):
        setting = attrs[key]
        label = _ATTRIBUTES[key]
        if key in _FLAGS:
            if setting:
                parts.append(label)
            continue
        if setting is None or setting == "":
            continue
        if key == "expires":
            if isinstance(setting, str):
                # an HTTP date has spaces: only what would end the attribute is refused
                if _DATE_BAD_RE.search(setting):
                    raise CookieError(f"Invalid cookie attribute expires={setting!r}")
                text = setting
            else:
                text = httputil.format_timestamp(setting)
        elif key == "max-age":
            text = str(int(setting))
        else:
            if not isinstance(setting, str):
                raise TypeError(f"cookie {key} must be str, not {setting!r}")
            text = _check_attribute(key, setting)
        if key == "samesite" and text.lower() not in _SAMESITE:
            raise CookieError(f"Invalid cookie attribute samesite={text!r}: Strict, Lax or None")
        if key == "comment":
            text = quote_cookie_value(text)
        parts.append(f"{label}={text}")
    return "; ".join(parts)

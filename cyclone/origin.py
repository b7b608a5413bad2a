"""Where a URL leads and where a request comes from, as a browser sees them.

Pure functions, no Twisted and no handler: ``web.RequestHandler.redirect``
uses :func:`redirect_target` to tell an open redirect from a normal one, and
``RequestHandler.check_cross_origin`` uses :func:`cross_origin_refusal`
(the algorithm of Go's ``net/http.CrossOriginProtection`` and Tornado 6.6's
``cross_origin_protection``: Fetch Metadata first, then ``Origin`` against
``Host``).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Callable, Iterable, Mapping, NamedTuple

# WHATWG URL: the schemes whose URLs always have a host, and for which the
# parser treats "\" as "/" and skips any run of slashes before the host
SPECIAL_SCHEMES = frozenset(("http", "https", "ws", "wss", "ftp", "file"))
# the schemes a redirect may use to stay on the same site
WEB_SCHEMES = frozenset(("http", "https", "ws", "wss"))

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# what a browser removes from a URL before parsing it (WHATWG URL: leading and
# trailing C0 controls and spaces; tab, LF and CR anywhere)
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE_RE = re.compile(r"[\t\n\r]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class RedirectTarget(NamedTuple):
    """Where a ``Location`` value sends a browser from a page of ``request_scheme``.

    ``host`` is None for a target on the same host (a relative reference);
    else it is the host the browser connects to, lowercased, without user
    info and port, percent-decoded (``raw_host`` keeps it as written).
    ``scheme`` is the target's scheme, lowercased (``request_scheme`` when
    the target has none).
    """

    scheme: str
    host: str | None
    raw_host: str | None


def has_control_characters(url: str) -> bool:
    """True if ``url`` holds a C0 control or DEL (browsers drop some of them,
    which turns ``/<TAB>/evil.example`` into ``//evil.example``)."""
    return _CONTROL_RE.search(url) is not None


def redirect_target(location: str, request_scheme: str) -> RedirectTarget:
    """Parse ``location`` as a browser on a ``request_scheme`` page would.

    >>> redirect_target("//evil.example/x", "http").host
    'evil.example'
    >>> redirect_target("/\\\\evil.example", "https").host
    'evil.example'
    >>> redirect_target("https:evil.example", "http").host
    'evil.example'
    >>> redirect_target("http:page", "http").host is None
    True
    """
    url = _TAB_OR_NEWLINE_RE.sub("", location.strip(_C0_OR_SPACE))
    request_scheme = request_scheme.lower()
    match = _SCHEME_RE.match(url)
    if match is not None:
        scheme = match.group(1).lower()
        rest = url[match.end():]
        if scheme not in SPECIAL_SCHEMES:
            return RedirectTarget(scheme, None, None)
        rest = rest.replace("\\", "/")
        if scheme == request_scheme and not rest.startswith("//"):
            # "http:page" from an http page is relative to it
            return RedirectTarget(scheme, None, None)
    else:
        scheme = request_scheme
        rest = url.replace("\\", "/") if scheme in SPECIAL_SCHEMES else url
        if not rest.startswith("//"):
            return RedirectTarget(scheme, None, None)
    # for a special scheme any number of slashes may precede the authority
    authority = re.split(r"[/?#]", rest.lstrip("/"), maxsplit=1)[0]
    raw_host = authority.rpartition("@")[2]
    if raw_host.startswith("["):
        raw_host = raw_host[: raw_host.find("]") + 1] or raw_host
    else:
        raw_host = raw_host.partition(":")[0]
    raw_host = raw_host.lower()
    host = urllib.parse.unquote(raw_host).lower().rstrip(".")
    return RedirectTarget(scheme, host, raw_host)


def request_hostname(host_header: str) -> str:
    """The host of a ``Host`` value, lowercased, without port or trailing dot."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.partition(":")[0].rstrip(".")


def is_external(target: RedirectTarget, request_host: str) -> bool:
    """True if following ``target`` leaves the site of ``request_host`` (a
    ``Host`` value): another host, or a scheme that is not a web scheme
    (``javascript:``, ``data:``, ``file:``...). A change of scheme or port on
    the same host (http to https) stays on the site."""
    if target.scheme not in WEB_SCHEMES:
        return True
    return target.host is not None and target.host != request_hostname(request_host)


def taken_from(target: RedirectTarget, values: Iterable[str]) -> bool:
    """True if the part of ``target`` that leaves the site (its host, or its
    scheme for a non-web scheme) appears in one of ``values``, compared
    lowercased: the request supplied where the redirect goes."""
    if target.host is None:
        needles = [target.scheme + ":"]
    else:
        needles = [n for n in {target.host, target.raw_host} if n]
    if not needles:
        return False
    for value in values:
        value = value.lower()
        for needle in needles:
            if needle in value:
                return True
    return False


SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def cross_origin_refusal(
    method: str,
    headers: Mapping[str, str],
    request_host: str,
    is_trusted: Callable[[str], bool],
) -> str | None:
    """Why a state-changing request from another origin must be refused, or
    None to let it through.

    Safe methods always pass. ``Sec-Fetch-Site: same-origin`` or ``none``
    (the user typed the URL) passes; ``cross-site`` and ``same-site`` pass only
    if ``is_trusted(origin)``. Without Fetch Metadata (older browsers), an
    ``Origin`` whose host and port equal ``request_host`` passes, any other
    ``Origin`` must be trusted; no ``Origin`` at all is a request that did not
    come from a browser, and passes.
    """
    if method in SAFE_METHODS:
        return None
    origin = headers.get("Origin")
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        site = site.strip().lower()
        if site in ("same-origin", "none"):
            return None
        if origin is not None and is_trusted(origin):
            return None
        return f"Sec-Fetch-Site {site} from origin {origin!r} not allowed"
    if origin is None:
        return None
    if origin_matches_host(origin, request_host) or is_trusted(origin):
        return None
    return f"Origin {origin!r} not allowed"


def origin_matches_host(origin: str, request_host: str) -> bool:
    """True if the ``Origin`` value names ``request_host`` (host and port)."""
    parts = urllib.parse.urlsplit(origin.strip())
    if parts.scheme not in WEB_SCHEMES or not parts.netloc:
        return False
    return _with_port(parts.netloc, parts.scheme) == _with_port(request_host.strip(), parts.scheme)


def _with_port(netloc: str, scheme: str) -> str:
    netloc = netloc.lower().rstrip(".")
    host, sep, port = netloc.rpartition(":")
    if sep and port.isdigit() and not netloc.endswith("]"):
        return netloc
    default = "443" if scheme in ("https", "wss") else "80"
    return f"{netloc}:{default}"

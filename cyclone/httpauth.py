"""cyclone.httpauth: HTTP Basic (RFC 7617) and Digest (RFC 7616) authentication
through ``twisted.cred``.

An ``HTTPAuth`` guard takes a ``Portal`` (or just a credentials checker) and
protects handler methods; a request with valid credentials gets the avatar
as ``self.current_user``, any other gets 401 with the ``WWW-Authenticate``
challenges of the schemes the guard accepts::

    from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
    from cyclone.httpauth import HTTPAuth

    users = InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret")
    guard = HTTPAuth(users, realm="example", schemes=("Digest", "Basic"))

    class Secret(cyclone.web.RequestHandler):
        @guard.required
        def get(self):
            self.write(f"hello {self.current_user}")   # "alice"

or, for every method of a handler, ``class Secret(HTTPAuthMixin,
RequestHandler): http_auth = guard``.

What the checkers receive: Basic gives ``BasicCredentials`` (Twisted's
``IUsernamePassword``, username and password as bytes); Digest gives
``DigestCredentials`` (``IUsernameHashedPassword``: ``checkPassword(password)``,
and ``IUsernameDigestHash``: ``checkHash(ha1)`` for stores that keep
``digest_ha1(...)`` instead of passwords). Both compare in constant time.
Twisted's in-memory and file checkers work with both schemes unchanged.

Answers: no or unknown credentials, a wrong password, another realm, a
replayed Digest request: 401 with the challenges (Digest first, one per
algorithm, SHA-256 before MD5, then Basic). An expired Digest nonce with an
otherwise right answer: 401 with ``stale=true``, so clients retry with the new
nonce without asking the user again. An ``Authorization`` header that cannot
be parsed (bad syntax, bad base64, a missing Digest field, a ``uri`` that is
not the request's): 400. Failed attempts are logged as warnings on
``cyclone.general`` with the user name and client address, never the
password or the Digest response.

Digest nonces (``DigestNonces``) are signed and timed, and carry no state until
first used; then the request counts (``nc``) seen under each are remembered,
in a window of 64, so a request can be replayed neither in order nor out of
order. The state lives in the process: behind a balancer that spreads one
client's requests over several processes, nonces of one process are stale
in another (give each process the same ``secret`` only if the nonce state is
shared too; otherwise use Basic over TLS, or sticky connections).
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import hashlib
import hmac
import os
import re
import struct
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from twisted.cred import credentials as cred_credentials
from twisted.cred import error as cred_error
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from zope.interface import Interface, implementer

from cyclone.concurrent import ensure_deferred
from cyclone.log import gen_log
from cyclone.web import HTTPAuthenticationRequired, HTTPError

__all__ = [
    "HTTPAuth",
    "HTTPAuthMixin",
    "IHTTPUser",
    "UsernameRealm",
    "BasicCredentials",
    "DigestCredentials",
    "DigestNonces",
    "AuthenticationChallenge",
    "MalformedAuthorization",
    "digest_ha1",
    "parse_authorization",
]

# -- parsing (no I/O) ------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# token BWS "=" BWS ( token / quoted-string ); a quoted-pair escapes one character.
# Every character is matched by exactly one branch, so matching is linear.
_QUOTED_STRING = r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*)"'
_PARAM_RE = re.compile(r"[ \t]*(" + _TOKEN + r")[ \t]*=[ \t]*(?:(" + _TOKEN + r")|" + _QUOTED_STRING + r")[ \t]*")
_LIST_SEP_RE = re.compile(r"[ \t]*,")
_SCHEME_RE = re.compile(_TOKEN)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)


class MalformedAuthorization(ValueError):
    """An ``Authorization`` header that does not follow RFC 9110 §11 or the
    scheme's rules: answered with 400."""


def parse_authorization(value: str) -> tuple[str, str | dict[str, str]]:
    """Split an ``Authorization`` value into its scheme (lowercased) and
    either its token68 (a str) or its parameters (a dict, names lowercased,
    quoted strings unescaped). Raises ``MalformedAuthorization``."""
    scheme_match = _SCHEME_RE.match(value)
    if scheme_match is None:
        raise MalformedAuthorization("no authentication scheme")
    scheme = scheme_match.group().lower()
    rest = value[scheme_match.end():]
    if not rest.strip(" \t"):
        return scheme, {}
    if rest[0] != " ":
        raise MalformedAuthorization("the scheme must be followed by a space")
    rest = rest.strip(" \t")
    if _TOKEN68_RE.fullmatch(rest) and not _PARAM_RE.fullmatch(rest):
        return scheme, rest
    params: dict[str, str] = {}
    pos = 0
    while True:
        sep = _LIST_SEP_RE.match(rest, pos)  # RFC 9110 §5.6.1: empty list elements are allowed
        if sep is not None:
            pos = sep.end()
            continue
        if pos >= len(rest):
            break
        match = _PARAM_RE.match(rest, pos)
        if match is None:
            raise MalformedAuthorization(f"unparseable parameter at offset {pos}")
        name = match.group(1).lower()
        if name in params:
            raise MalformedAuthorization(f"parameter {name!r} given twice")
        token, quoted = match.group(2), match.group(3)
        params[name] = token if token is not None else _QUOTED_PAIR_RE.sub(r"\1", quoted)
        pos = match.end()
        if pos < len(rest) and rest[pos] != ",":
            raise MalformedAuthorization(f"expected ',' at offset {pos}")
    return scheme, params


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- credentials -----------------------------------------------------------------------------


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


@implementer(cred_credentials.IUsernamePassword, cred_credentials.IUsernameHashedPassword)
class BasicCredentials:
    """What a Basic ``Authorization`` carried: ``username`` and ``password`` (bytes)."""

    def __init__(self, username: bytes, password: bytes) -> None:
        self.username = username
        self.password = password

    def checkPassword(self, password: str | bytes) -> bool:
        """Whether ``password`` is the one sent, compared in constant time."""
        return hmac.compare_digest(self.password, _as_bytes(password))

    def __repr__(self) -> str:  # never show the password
        return f"<BasicCredentials username={self.username!r}>"


_DIGEST_HASHES: dict[str, Callable[[bytes], Any]] = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}


def digest_ha1(username: str | bytes, realm: str, password: str | bytes, algorithm: str = "SHA-256") -> str:
    """``H(username ":" realm ":" password)`` in hex, RFC 7616 §3.4.2: what a
    Digest checker may store instead of the password (one per algorithm)."""
    hash_ = _DIGEST_HASHES[algorithm]
    return hash_(_as_bytes(username) + b":" + realm.encode("utf-8") + b":" + _as_bytes(password)).hexdigest()


@implementer(cred_credentials.IUsernameHashedPassword, cred_credentials.IUsernameDigestHash)
class DigestCredentials:
    """A Digest ``Authorization`` (RFC 7616, ``qop=auth``), checked against a
    password (``checkPassword``) or a stored ``digest_ha1`` (``checkHash``).

    ``username`` is bytes (UTF-8); ``algorithm`` is ``"SHA-256"`` or ``"MD5"``;
    ``realm`` is the guard's.
    """

    def __init__(self, username: bytes, realm: str, algorithm: str, method: str, fields: dict[str, str]) -> None:
        self.username = username
        self.realm = realm
        self.algorithm = algorithm
        self.method = method
        self.fields = fields

    def checkHash(self, digestHash: str | bytes) -> bool:
        """Whether the response was made from this ``H(username:realm:password)``."""
        hash_ = _DIGEST_HASHES[self.algorithm]
        f = self.fields
        ha1 = digestHash.decode("ascii") if isinstance(digestHash, bytes) else digestHash
        ha2 = hash_(f"{self.method}:{f['uri']}".encode()).hexdigest()
        expected = hash_(
            ":".join((ha1.lower(), f["nonce"], f["nc"], f["cnonce"], f["qop"], ha2)).encode("utf-8")
        ).hexdigest()
        return hmac.compare_digest(expected, f["response"].lower())

    def checkPassword(self, password: str | bytes) -> bool:
        """Whether the response was made with ``password``."""
        return self.checkHash(digest_ha1(self.username, self.realm, password, self.algorithm))

    def __repr__(self) -> str:
        return f"<DigestCredentials username={self.username!r} algorithm={self.algorithm}>"


# -- nonces ----------------------------------------------------------------------------------


class DigestNonces:
    """Issues Digest nonces and refuses stale and replayed ones.

    A nonce is its issue time, 12 random bytes and an HMAC of both (keyed with
    ``secret``, random per instance by default), so issuing one stores
    nothing. A nonce older than ``lifetime`` seconds (default 300) is stale.
    Once a request under a nonce succeeds, its ``nc`` is remembered: a later
    request must use an ``nc`` not seen in a window of the 64 highest. At most
    ``max_tracked`` nonces (default 10000) are remembered; when full, the
    oldest is forgotten and every nonce issued before it becomes stale (the
    client then gets a fresh one), so forgetting never reopens a replay.
    """

    WINDOW = 64

    def __init__(
        self,
        lifetime: float = 300.0,
        max_tracked: int = 10_000,
        secret: bytes | None = None,
        clock: Any = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.lifetime = lifetime
        self.max_tracked = max_tracked
        self._secret = secret if secret is not None else os.urandom(32)
        self._clock = clock
        # nonce -> [issued (µs), highest nc, bitmap of the WINDOW ncs below and at it]
        self._tracked: collections.OrderedDict[str, list[int]] = collections.OrderedDict()
        self._forgotten_before = -1  # nonces issued at or before this time are stale

    def _now(self) -> int:
        return int(self._clock.seconds() * 1_000_000)

    def issue(self) -> str:
        """A new nonce (48 URL-safe base64 characters)."""
        body = struct.pack(">Q", self._now()) + os.urandom(12)
        return base64.urlsafe_b64encode(body + self._mac(body)).decode("ascii")

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:16]

    def _issued(self, nonce: str) -> int | None:
        """The issue time of a nonce we made and that has not expired, else None."""
        if len(nonce) != 48:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (ValueError, binascii.Error):
            return None
        body, mac = raw[:20], raw[20:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        (issued,) = struct.unpack(">Q", body[:8])
        now = self._now()
        if issued > now or now - issued > self.lifetime * 1_000_000:
            return None
        return issued

    def check(self, nonce: str, nc: int) -> str:
        """``"ok"``, ``"stale"`` (expired, forgotten, or not ours) or
        ``"replay"`` (this ``nc`` was already used), without recording."""
        issued = self._issued(nonce)
        if issued is None:
            return "stale"
        entry = self._tracked.get(nonce)
        if entry is None:
            return "stale" if issued <= self._forgotten_before else "ok"
        _, highest, seen = entry
        if nc > highest:
            return "ok"
        if highest - nc >= self.WINDOW or seen >> (highest - nc) & 1:
            return "replay"
        return "ok"

    def use(self, nonce: str, nc: int) -> str:
        """``check`` and, when ``"ok"``, remember that ``nc`` was used."""
        state = self.check(nonce, nc)
        if state != "ok":
            return state
        entry = self._tracked.get(nonce)
        if entry is None:
            self._make_room()
            self._tracked[nonce] = [self._issued(nonce) or 0, nc, 1]
        elif nc > entry[1]:
            entry[2] = ((entry[2] << (nc - entry[1])) | 1) & ((1 << self.WINDOW) - 1)
            entry[1] = nc
        else:
            entry[2] |= 1 << (entry[1] - nc)
        return "ok"

    def _make_room(self) -> None:
        if len(self._tracked) < self.max_tracked:
            return
        oldest_alive = self._now() - int(self.lifetime * 1_000_000)
        for nonce in [n for n, (issued, _, _) in self._tracked.items() if issued < oldest_alive]:
            del self._tracked[nonce]  # expired: stale by their time anyway
        while len(self._tracked) >= self.max_tracked:
            _, (issued, _, _) = self._tracked.popitem(last=False)
            self._forgotten_before = max(self._forgotten_before, issued)


# -- the challenge -----------------------------------------------------------------------------


class AuthenticationChallenge(HTTPAuthenticationRequired):
    """401 with several ``WWW-Authenticate`` headers, most preferred first."""

    def __init__(self, challenges: list[str], log_message: str | None = None, *args: Any) -> None:
        scheme, _, _ = challenges[0].partition(" ")
        super().__init__(log_message, *args, auth_type=scheme)
        self._challenges = challenges

    def challenge(self) -> str:
        return self._challenges[0]

    def challenges(self) -> list[str]:
        return list(self._challenges)


# -- twisted.cred glue -------------------------------------------------------------------------


class IHTTPUser(Interface):
    """The avatar interface ``HTTPAuth`` asks realms for by default: whatever
    object the application wants as ``current_user``."""


@implementer(IRealm)
class UsernameRealm:
    """A realm whose avatar is the user name as a str (the avatar id, decoded)."""

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple:
        if IHTTPUser not in interfaces:
            raise NotImplementedError(f"UsernameRealm only provides IHTTPUser, not {interfaces}")
        name = avatarId.decode("utf-8", "replace") if isinstance(avatarId, bytes) else avatarId
        return IHTTPUser, name, lambda: None


_BASIC_INTERFACES = (cred_credentials.IUsernamePassword, cred_credentials.IUsernameHashedPassword)
_DIGEST_INTERFACES = (cred_credentials.IUsernameHashedPassword, cred_credentials.IUsernameDigestHash)
_SCHEMES = {"basic": "Basic", "digest": "Digest"}
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")
_DIGEST_REQUIRED = ("realm", "nonce", "uri", "response", "qop", "nc", "cnonce")


class HTTPAuth:
    """A guard: Basic and/or Digest authentication against a ``twisted.cred`` portal.

    ``portal`` is a ``Portal`` whose realm gives avatars for ``interface``
    (default ``IHTTPUser``), or a credentials checker alone (then the avatar
    is the user name, a str). ``realm`` is the protection space (printable
    ASCII) named in the challenges. ``schemes`` lists the accepted schemes in
    order of preference (default ``("Basic",)``; Basic sends the password
    in the clear, so serve it over TLS). ``algorithms`` lists the Digest
    algorithms offered, one challenge each (default SHA-256, then MD5 for
    older clients). ``nonces`` is the ``DigestNonces`` (default: a new one,
    nonces live ``nonce_lifetime`` seconds, default 300).
    """

    def __init__(
        self,
        portal: Portal | ICredentialsChecker,
        realm: str = "Restricted Access",
        schemes: Iterable[str] = ("Basic",),
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        interface: Any = IHTTPUser,
        nonce_lifetime: float = 300.0,
        nonces: DigestNonces | None = None,
    ) -> None:
        if not isinstance(portal, Portal):
            if not ICredentialsChecker.providedBy(portal):
                raise TypeError(f"expected a Portal or a credentials checker, not {portal!r}")
            portal = Portal(UsernameRealm(), [portal])
        if not (realm.isascii() and realm.isprintable()):
            raise ValueError(f"realm must be printable ASCII, not {realm!r}")
        self.portal = portal
        self.realm = realm
        self.interface = interface
        self.schemes = [s.lower() for s in schemes]
        if not self.schemes or any(s not in _SCHEMES for s in self.schemes):
            raise ValueError(f"schemes must be some of Basic and Digest, not {list(schemes)!r}")
        names = {name.upper(): name for name in _DIGEST_HASHES}
        try:
            self.algorithms = [names[a.upper()] for a in algorithms]
        except KeyError as exc:
            raise ValueError(f"unknown Digest algorithm {exc.args[0]!r} (SHA-256 or MD5)") from None
        if not self.algorithms:
            raise ValueError("algorithms must not be empty")
        accepted = set(portal.listCredentialsInterfaces())
        for scheme, wanted in (("basic", _BASIC_INTERFACES), ("digest", _DIGEST_INTERFACES)):
            if scheme in self.schemes and not accepted.intersection(wanted):
                raise ValueError(f"no checker of the portal accepts {_SCHEMES[scheme]} credentials")
        self.nonces = nonces if nonces is not None else DigestNonces(lifetime=nonce_lifetime)

    # -- challenges

    def challenges(self, stale: bool = False) -> list[str]:
        """The ``WWW-Authenticate`` values of a 401, most preferred first."""
        out = []
        realm = _quote(self.realm)
        for scheme in self.schemes:
            if scheme == "basic":
                out.append(f'Basic realm={realm}, charset="UTF-8"')
                continue
            nonce = self.nonces.issue()
            for algorithm in self.algorithms:
                value = f'Digest realm={realm}, qop="auth", algorithm={algorithm}, nonce="{nonce}", charset=UTF-8'
                out.append(value + (", stale=true" if stale else ""))
        return out

    def _refuse(self, log_message: str | None = None, stale: bool = False) -> AuthenticationChallenge:
        return AuthenticationChallenge(self.challenges(stale), log_message)

    # -- authentication

    def login(self, handler: Any) -> defer.Deferred:
        """Authenticate the request of ``handler``: a Deferred firing with the
        avatar (also set as ``handler.current_user``; its logout runs when the
        request ends), or failing with ``AuthenticationChallenge`` (401) or
        ``HTTPError(400)``."""
        done = getattr(handler, "_http_auth_avatars", None)
        if done is not None and self in done:
            # a second login in the same request (decorator and mixin, or an
            # explicit call): a Digest nc may be used only once
            return defer.succeed(done[self])
        try:
            credentials, nonce_state = self._credentials(handler.request)
        except HTTPError as exc:
            return defer.fail(exc)
        d = self.portal.login(credentials, None, self.interface)
        d.addCallbacks(self._logged_in, self._failed, callbackArgs=(handler, credentials, nonce_state),
                       errbackArgs=(handler, credentials))
        return d

    def _credentials(self, request: Any) -> tuple[Any, str | None]:
        values = request.headers.get_list("Authorization")
        if not values:
            raise self._refuse()
        if len(values) > 1:
            raise HTTPError(400, "more than one Authorization header")
        try:
            scheme, data = parse_authorization(values[0])
            if scheme not in self.schemes:
                raise self._refuse(f"{scheme} authentication is not accepted here")
            if scheme == "basic":
                return self._basic(data), None
            return self._digest(data, request)
        except MalformedAuthorization as exc:
            raise HTTPError(400, "malformed Authorization header: %s", exc) from None

    def _basic(self, data: str | dict) -> BasicCredentials:
        if not isinstance(data, str):
            raise MalformedAuthorization("Basic takes one base64 token")
        try:
            decoded = base64.b64decode(data.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            raise MalformedAuthorization("invalid base64") from None
        username, colon, password = decoded.partition(b":")
        if not colon:
            raise MalformedAuthorization("no ':' between user name and password")
        return BasicCredentials(username, password)

    def _digest(self, fields: str | dict, request: Any) -> tuple[DigestCredentials, str]:
        if not isinstance(fields, dict):
            raise MalformedAuthorization("Digest takes parameters")
        missing = [name for name in _DIGEST_REQUIRED if name not in fields]
        if missing:
            raise MalformedAuthorization(f"missing {', '.join(missing)}")
        username = _digest_username(fields)
        algorithm = fields.get("algorithm", "MD5").upper()  # RFC 7616 §3.4: MD5 when absent
        algorithm = {name.upper(): name for name in self.algorithms}.get(algorithm)
        if algorithm is None:
            raise MalformedAuthorization(f"algorithm {fields.get('algorithm', 'MD5')!r} was not offered")
        if fields["qop"] != "auth":
            raise MalformedAuthorization("qop must be auth")
        if not _NC_RE.fullmatch(fields["nc"]) or int(fields["nc"], 16) == 0:
            raise MalformedAuthorization("nc must be 8 hex digits, from 00000001")
        if len(fields["response"]) != _DIGEST_HASHES[algorithm]().digest_size * 2:
            raise MalformedAuthorization("response has the wrong length")
        if fields.get("userhash", "false").lower() == "true":
            raise MalformedAuthorization("userhash was not offered")
        if fields["uri"] != request.uri:
            raise MalformedAuthorization("uri is not the request's")
        if fields["realm"] != self.realm:
            raise self._refuse("Digest credentials for another realm")
        credentials = DigestCredentials(username, self.realm, algorithm, request.method, fields)
        state = self.nonces.check(fields["nonce"], int(fields["nc"], 16))
        if state == "replay":
            gen_log.warning("HTTP Digest replay for user %r from %s", _printable(username), request.remote_ip)
            raise self._refuse("replayed Digest request")
        return credentials, state

    def _logged_in(self, result: tuple, handler: Any, credentials: Any, nonce_state: str | None) -> Any:
        _, avatar, logout = result
        if nonce_state is not None:
            fields = credentials.fields
            state = nonce_state if nonce_state == "stale" else self.nonces.use(fields["nonce"], int(fields["nc"], 16))
            if state != "ok":
                logout()
                if state == "replay":
                    gen_log.warning("HTTP Digest replay for user %r from %s",
                                    _printable(credentials.username), handler.request.remote_ip)
                    raise self._refuse("replayed Digest request")
                # the right answer to an old nonce: a new one, without asking the user again
                raise self._refuse("stale Digest nonce", stale=True)
        handler.current_user = avatar
        if getattr(handler, "_http_auth_avatars", None) is None:
            handler._http_auth_avatars = {}
        handler._http_auth_avatars[self] = avatar
        handler.request.notifyFinish().addBoth(lambda _: logout())
        return avatar

    def _failed(self, reason: Any, handler: Any, credentials: Any) -> Any:
        if not reason.check(cred_error.UnauthorizedLogin):
            return reason  # a checker that broke (database down...) is a server error
        scheme = "Basic" if isinstance(credentials, BasicCredentials) else "Digest"
        gen_log.warning("HTTP %s authentication failed for user %r from %s",
                        scheme, _printable(credentials.username), handler.request.remote_ip)
        raise self._refuse()

    # -- decorating handlers

    def required(self, method: Callable) -> Callable:
        """Decorate a handler method: it runs only for an authenticated
        request, with ``self.current_user`` the avatar."""

        @functools.wraps(method)
        def wrapper(handler: Any, *args: Any, **kwargs: Any) -> defer.Deferred:
            d = self.login(handler)
            d.addCallback(lambda _: _settled(method(handler, *args, **kwargs)))
            return d

        return wrapper


def _printable(username: bytes) -> str:
    # for the log: UTF-8 names as text, anything else escaped (then %r quotes it)
    return username.decode("utf-8", "backslashreplace")


def _settled(result: Any) -> Any:
    return None if result is None else ensure_deferred(result)


def _authenticating(prepare: Callable) -> Callable:
    """``prepare`` behind ``http_auth.login``, once per request."""

    @functools.wraps(prepare)
    def wrapper(handler: Any) -> Any:
        if getattr(handler, "_http_auth_passed", False):
            return prepare(handler)

        def passed(_: Any) -> Any:
            handler._http_auth_passed = True
            return _settled(prepare(handler))

        return handler.http_auth.login(handler).addCallback(passed)

    wrapper._authenticates = True  # type: ignore[attr-defined]
    return wrapper


def _digest_username(fields: dict[str, str]) -> bytes:
    plain, extended = fields.get("username"), fields.get("username*")
    if (plain is None) == (extended is None):
        raise MalformedAuthorization("exactly one of username and username* is needed")
    if plain is not None:
        # header values arrive as latin-1 text: back to the bytes the client sent
        try:
            return plain.encode("latin-1")
        except UnicodeEncodeError:
            raise MalformedAuthorization("username is not latin-1") from None
    # RFC 8187 ext-value: charset ' [ language ] ' pct-encoded
    charset, quote1, rest = extended.partition("'")
    _, quote2, encoded = rest.partition("'")
    if not (quote1 and quote2) or charset.lower() != "utf-8":
        raise MalformedAuthorization("username* must be UTF-8''<percent-encoded>")
    raw = urllib.parse.unquote_to_bytes(encoded)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedAuthorization("username* is not UTF-8") from None
    return raw


class HTTPAuthMixin:
    """Authenticate every request of a handler before its ``prepare()``: set
    ``http_auth`` to an ``HTTPAuth`` on the class. A ``prepare()`` the
    handler defines runs after authentication, with ``current_user`` set,
    whether or not it calls ``super().prepare()``."""

    http_auth: HTTPAuth

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("prepare")
        if own is not None and not getattr(own, "_authenticates", False):
            cls.prepare = _authenticating(own)

    def prepare(self) -> Any:
        return super().prepare()  # type: ignore[misc]

    prepare = _authenticating(prepare)

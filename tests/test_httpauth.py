"""cyclone.httpauth: Basic and Digest through twisted.cred.

The happy paths are driven by clients we did not write (curl --basic,
curl --digest, urllib.request's Basic and Digest handlers). Stale nonces,
replays and malformed headers need requests no client sends on purpose:
those are raw requests whose Digest answers this file computes from RFC
7616's formulas (checked first against the RFC's own example).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import random
import re
import shutil
import urllib.error
import urllib.request

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.cred.checkers import (
    FilePasswordDB,
    ICredentialsChecker,
    InMemoryUsernamePasswordDatabaseDontUse,
)
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer, task, threads, utils
from zope.interface import implementer

import cyclone.web as web
from cyclone.httpauth import (
    AuthenticationChallenge,
    DigestCredentials,
    DigestNonces,
    HTTPAuth,
    HTTPAuthMixin,
    IHTTPUser,
    MalformedAuthorization,
    digest_ha1,
    parse_authorization,
)

from .conftest import parse_responses, poll_until, raw_exchange

inline = pytest_twisted.inlineCallbacks
CURL = shutil.which("curl")
PASSWORD = "s3cret-Pa55"
USERS = {b"alice": PASSWORD.encode(), "jürgen".encode(): "pässwörd".encode()}


def checker():
    db = InMemoryUsernamePasswordDatabaseDontUse()
    for name, password in USERS.items():
        db.addUser(name, password)
    return db


class Account:
    """The avatar the custom realm below makes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.logged_out = False


@implementer(IRealm)
class AccountRealm:
    def __init__(self) -> None:
        self.avatars: list[Account] = []

    def requestAvatar(self, avatar_id, mind, *interfaces):
        assert IHTTPUser in interfaces
        account = Account(avatar_id.decode())
        self.avatars.append(account)

        def logout():
            account.logged_out = True

        return IHTTPUser, account, logout


clock = task.Clock()  # the nonces' clock: tests move it instead of waiting
nonces = DigestNonces(lifetime=60, clock=clock)
basic = HTTPAuth(checker(), realm="basic realm")
digest = HTTPAuth(checker(), realm="digest realm", schemes=("Digest",), nonces=nonces)
md5_first = HTTPAuth(checker(), realm="digest realm", schemes=("Digest",), algorithms=("MD5", "SHA-256"))
both = HTTPAuth(checker(), realm="both", schemes=("Digest", "Basic"), algorithms=("SHA-256",))
account_realm = AccountRealm()
with_portal = HTTPAuth(Portal(account_realm, [checker()]), realm="portal", schemes=("Basic", "Digest"))


class Whoami(web.RequestHandler):
    def initialize(self, guard):
        # one handler class for every guard: decorate per instance
        self.get = functools.partial(guard.required(Whoami.get_user), self)
        self.post = functools.partial(guard.required(Whoami.post_user), self)

    def get_user(self):
        self.write({"user": self.current_user})

    async def post_user(self):
        await defer.succeed(None)
        self.write({"posted": self.get_body_argument("x"), "user": self.current_user})


class PortalUser(web.RequestHandler):
    @with_portal.required
    def get(self):
        self.write({"user": self.current_user.name, "logged_out": self.current_user.logged_out})


class Mixed(HTTPAuthMixin, web.RequestHandler):
    http_auth = both

    def prepare(self):
        # runs after authentication, with the user known
        self.seen_in_prepare = self.current_user

    def get(self):
        self.write({"user": self.current_user, "prepare": self.seen_in_prepare})

    def put(self):
        self.write({"put": self.current_user})


class Twice(HTTPAuthMixin, web.RequestHandler):
    """Mixin and decorator with the same guard: one login, one use of the nc."""

    http_auth = digest

    @digest.required
    def get(self):
        self.write({"user": self.current_user})


class Legacy(web.RequestHandler):
    """The original cyclone's way, still working: raise the challenge yourself."""

    def get(self):
        raise web.HTTPAuthenticationRequired(auth_type="Basic", realm="legacy")


def app():
    return web.Application(
        [
            ("/basic", Whoami, {"guard": basic}),
            ("/digest", Whoami, {"guard": digest}),
            ("/md5-first", Whoami, {"guard": md5_first}),
            ("/both", Whoami, {"guard": both}),
            ("/portal", PortalUser),
            ("/mixed", Mixed),
            ("/legacy", Legacy),
            ("/twice", Twice),
        ]
    )


@pytest.fixture
def base(listen):
    return f"http://127.0.0.1:{listen(app())}"


def need_curl():
    if CURL is None:
        if os.environ.get("CI"):
            pytest.fail("curl is not installed; CI is set, so the curl tests must run")
        pytest.skip("curl is not installed (apt-get install curl)")


def curl(*args):
    """Run curl without blocking the reactor: (status, body, verbose stderr)."""
    d = utils.getProcessOutputAndValue(CURL, ["-s", "-S", "-v", "-w", "\n%{http_code}", *args], env=dict(os.environ))

    def split(result):
        out, err, code = result
        assert code == 0, err
        body, _, status = out.decode().rpartition("\n")
        return int(status), body, err.decode("latin-1")

    return d.addCallback(split)


def fetch_raw(port_url: str, path: str, authorization: list[str] | str | None = None, method: str = "GET"):
    """One raw request (Authorization headers as given), parsed: (status, headers, body)."""
    port = int(port_url.rsplit(":", 1)[1])
    headers = [authorization] if isinstance(authorization, str) else (authorization or [])
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"Authorization: {value}" for value in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    d = threads.deferToThread(raw_exchange, port, data)
    return d.addCallback(lambda raw: parse_responses(raw, [method])[0])


# -- a Digest answer computed from RFC 7616 §3.4.1, for the raw requests ---------------------


def h(algorithm, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}[algorithm](data).hexdigest()


def digest_answer(challenge_params, method, uri, username=b"alice", password=PASSWORD, nc=1,
                  cnonce="0a4f113b", algorithm=None, realm=None):
    algorithm = algorithm or challenge_params["algorithm"]
    realm = realm or challenge_params["realm"]
    nonce = challenge_params["nonce"]
    ha1 = h(algorithm, username + f":{realm}:".encode() + password.encode())
    ha2 = h(algorithm, f"{method}:{uri}")
    response = h(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{username.decode("latin-1")}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'algorithm={algorithm}, qop=auth, nc={nc:08x}, cnonce="{cnonce}", response="{response}"'
    )


def challenges_of(headers) -> list[tuple[str, dict]]:
    out = []
    for value in headers.get_all("WWW-Authenticate") or []:
        scheme, params = parse_authorization(value)
        out.append((scheme, params))
    return out


@inline
def first_digest_challenge(base, path="/digest"):
    status, headers, _ = yield fetch_raw(base, path)
    assert status == 401
    return challenges_of(headers)[0][1]


# -- unit: parsing and the RFC's example ----------------------------------------------------------


def test_rfc7616_example_vectors():
    # RFC 7616 §3.9.1: Mufasa, "Circle of Life", GET /dir/index.html
    fields = {
        "uri": "/dir/index.html",
        "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "nc": "00000001",
        "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        "qop": "auth",
    }
    for algorithm, response in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ]:
        credentials = DigestCredentials(b"Mufasa", "http-auth@example.org", algorithm, "GET",
                                        dict(fields, response=response))
        assert credentials.checkPassword("Circle of Life")
        assert credentials.checkPassword(b"Circle of Life")
        assert not credentials.checkPassword("Circle of life")
        assert credentials.checkHash(digest_ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm))
        assert not credentials.checkHash(digest_ha1("Mufasa", "other", "Circle of Life", algorithm))


def test_parse_authorization():
    assert parse_authorization("Basic YWxpY2U6eA==") == ("basic", "YWxpY2U6eA==")
    assert parse_authorization("bAsIc   YWxpY2U6eA==  ") == ("basic", "YWxpY2U6eA==")
    assert parse_authorization('Digest a=1, b="x, \\"y\\" \\\\z",,  c = tok ,') == (
        "digest", {"a": "1", "b": 'x, "y" \\z', "c": "tok"})
    assert parse_authorization("Digest A=1") == ("digest", {"a": "1"})
    assert parse_authorization("Negotiate") == ("negotiate", {})
    for bad in ['Digest a="unterminated', "Digest a=1 b=2", "Digest a=1, a=2", "Digest =1", "Basic a b",
                "", " Basic x", "Basic\tx", "Digest a=\"\x01\"", "Digest a=x y"]:
        with pytest.raises(MalformedAuthorization):
            parse_authorization(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=255), max_size=200))
def test_parse_authorization_only_raises_malformed(value):
    try:
        scheme, data = parse_authorization(value)
    except MalformedAuthorization:
        return
    assert scheme == scheme.lower() and scheme
    assert isinstance(data, (str, dict))


def test_digest_nonces_windows_and_expiry():
    c = task.Clock()
    n = DigestNonces(lifetime=10, clock=c)
    nonce = n.issue()
    assert len(nonce) == 48 and nonce != n.issue()
    assert n.use(nonce, 1) == "ok"
    assert n.use(nonce, 1) == "replay"
    assert n.use(nonce, 5) == "ok"
    assert n.use(nonce, 3) == "ok"  # out of order, but never seen
    assert n.use(nonce, 3) == "replay"
    assert n.use(nonce, 5 + 64) == "ok"
    assert n.check(nonce, 5) == "replay"  # fell out of the window: refused, not forgotten
    assert n.check(nonce, 6) == "ok"
    c.advance(10.5)
    assert n.check(nonce, 1000) == "stale"
    assert n.check("A" * 48, 1) == "stale"  # not ours
    assert n.check(nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB"), 1) == "stale"  # tampered
    assert n.check("short", 1) == "stale"
    other = DigestNonces(lifetime=10, clock=c)
    assert other.check(n.issue(), 1) == "stale"  # another secret


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=60))
def test_digest_nonces_accept_each_nc_once_within_the_window(ncs):
    # the model: an nc is accepted if never accepted before and within 64 of the highest accepted
    n = DigestNonces(clock=task.Clock())
    nonce = n.issue()
    accepted: set[int] = set()
    for nc in ncs:
        expected = nc not in accepted and (not accepted or nc > max(accepted) - DigestNonces.WINDOW)
        assert (n.use(nonce, nc) == "ok") == expected, (nc, sorted(accepted))
        if expected:
            accepted.add(nc)


def test_digest_nonces_forgetting_never_reopens_a_replay():
    c = task.Clock()
    n = DigestNonces(lifetime=100, max_tracked=2, clock=c)
    first = n.issue()
    c.advance(1)
    second, third = n.issue(), None
    c.advance(1)
    third = n.issue()
    assert n.use(first, 1) == "ok" and n.use(second, 1) == "ok"
    assert n.use(third, 1) == "ok"  # table full: the first is forgotten...
    assert len(n._tracked) == 2
    assert n.check(first, 1) == "stale"  # ...and can never be accepted again
    assert n.check(first, 2) == "stale"
    assert n.check(second, 1) == "replay" and n.check(third, 1) == "replay"
    c.advance(1)
    assert n.use(n.issue(), 1) == "ok"  # new nonces still work


def test_guard_configuration_errors():
    with pytest.raises(ValueError, match="Digest"):
        # a checker that needs the password itself cannot check Digest answers
        HTTPAuth(FilePasswordDB(os.devnull, hash=lambda u, p, s: p), schemes=("Digest",))
    HTTPAuth(FilePasswordDB(os.devnull, hash=lambda u, p, s: p), schemes=("Basic",))
    with pytest.raises(ValueError, match="realm"):
        HTTPAuth(checker(), realm="caf\u00e9")
    with pytest.raises(ValueError, match="realm"):
        HTTPAuth(checker(), realm="a\r\nb")
    with pytest.raises(ValueError, match="schemes"):
        HTTPAuth(checker(), schemes=("NTLM",))
    with pytest.raises(ValueError, match="algorithm"):
        HTTPAuth(checker(), schemes=("Digest",), algorithms=("SHA-512-256",))
    with pytest.raises(TypeError):
        HTTPAuth(object())


# -- the challenges ------------------------------------------------------------------------------


@inline
def test_no_credentials_get_the_challenges(base):
    status, headers, _ = yield fetch_raw(base, "/basic")
    assert status == 401
    assert headers.get_all("WWW-Authenticate") == ['Basic realm="basic realm", charset="UTF-8"']

    status, headers, _ = yield fetch_raw(base, "/digest")
    assert status == 401
    found = challenges_of(headers)
    assert [(scheme, p["algorithm"]) for scheme, p in found] == [("digest", "SHA-256"), ("digest", "MD5")]
    for _, params in found:
        assert params["realm"] == "digest realm" and params["qop"] == "auth" and "stale" not in params
        assert params["nonce"] == found[0][1]["nonce"]

    status, headers, _ = yield fetch_raw(base, "/both")
    assert [(s, p.get("algorithm")) for s, p in challenges_of(headers)] == [("digest", "SHA-256"), ("basic", None)]


@inline
def test_unknown_scheme_is_401(base):
    status, headers, _ = yield fetch_raw(base, "/basic", "Bearer abc.def")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")
    # Basic is not accepted where only Digest is
    token = base64.b64encode(b"alice:" + PASSWORD.encode()).decode()
    status, headers, _ = yield fetch_raw(base, "/digest", f"Basic {token}")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Digest ")


@inline
def test_original_http_authentication_required_still_works(base):
    status, headers, _ = yield fetch_raw(base, "/legacy")
    assert status == 401
    assert headers.get_all("WWW-Authenticate") == ['Basic realm="legacy"']
    assert issubclass(AuthenticationChallenge, web.HTTPAuthenticationRequired)


# -- clients we did not write ---------------------------------------------------------------------


@inline
def test_curl_basic(base):
    need_curl()
    status, body, _ = yield curl("--basic", "-u", f"alice:{PASSWORD}", base + "/basic")
    assert (status, body) == (200, '{"user": "alice"}')
    status, body, _ = yield curl("--basic", "-u", "alice:wrong", base + "/basic")
    assert status == 401
    status, body, _ = yield curl("--basic", "-u", "jürgen:pässwörd", base + "/basic")  # UTF-8 on the wire
    assert (status, body) == (200, '{"user": "j\\u00fcrgen"}')
    status, body, _ = yield curl("--basic", "-u", f"alice:{PASSWORD}", "-d", "x=1", base + "/basic")
    assert (status, body) == (200, '{"posted": "1", "user": "alice"}')


@inline
def test_curl_digest_uses_sha256(base):
    need_curl()
    status, body, err = yield curl("--digest", "-u", f"alice:{PASSWORD}", base + "/digest?q=1")
    assert (status, body) == (200, '{"user": "alice"}')
    sent = re.findall(r"^> Authorization: (.*)$", err, re.MULTILINE)
    assert len(sent) == 1 and "algorithm=SHA-256" in sent[0] and 'uri="/digest?q=1"' in sent[0]
    status, body, err = yield curl("--digest", "-u", f"alice:{PASSWORD}", "-d", "x=2", base + "/digest")
    assert (status, body) == (200, '{"posted": "2", "user": "alice"}')
    status, _, _ = yield curl("--digest", "-u", "alice:wrong", base + "/digest")
    assert status == 401
    status, _, _ = yield curl("--digest", "-u", f"mallory:{PASSWORD}", base + "/digest")
    assert status == 401


@inline
def test_curl_anyauth_picks_digest_and_mixin(base):
    need_curl()
    status, body, err = yield curl("--anyauth", "-u", f"alice:{PASSWORD}", base + "/mixed")
    assert (status, body) == (200, '{"user": "alice", "prepare": "alice"}')
    assert re.search(r"^> Authorization: Digest ", err, re.MULTILINE)
    status, body, _ = yield curl("--basic", "-u", f"alice:{PASSWORD}", "-X", "PUT", base + "/mixed")
    assert (status, body) == (200, '{"put": "alice"}')
    status, _, _ = yield curl("-X", "PUT", base + "/mixed")
    assert status == 401


def urllib_get(url, handler_class, user="alice", password=PASSWORD):
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, user, password)
    opener = urllib.request.build_opener(handler_class(manager))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@inline
def test_urllib_basic(base):
    result = yield threads.deferToThread(urllib_get, base + "/basic", urllib.request.HTTPBasicAuthHandler)
    assert result == (200, '{"user": "alice"}')
    result = yield threads.deferToThread(urllib_get, base + "/basic", urllib.request.HTTPBasicAuthHandler,
                                         password="nope")
    assert result[0] == 401


@inline
def test_urllib_digest(base):
    # urllib reads only the first challenge and knows only MD5 (and SHA-1):
    # it works where MD5 is offered first...
    result = yield threads.deferToThread(urllib_get, base + "/md5-first", urllib.request.HTTPDigestAuthHandler)
    assert result == (200, '{"user": "alice"}')
    # ...and gives up (before sending anything) where SHA-256 comes first, as RFC 7616 advises
    with pytest.raises(ValueError, match="SHA-256"):
        yield threads.deferToThread(urllib_get, base + "/digest", urllib.request.HTTPDigestAuthHandler)
    result = yield threads.deferToThread(urllib_get, base + "/md5-first", urllib.request.HTTPDigestAuthHandler,
                                         password="nope")
    assert result[0] == 401


# -- Digest rules, with hand-made answers ---------------------------------------------------------


@inline
def test_digest_hand_made_answer_and_username_star(base):
    params = yield first_digest_challenge(base)
    status, _, body = yield fetch_raw(base, "/digest", digest_answer(params, "GET", "/digest"))
    assert (status, body) == (200, b'{"user": "alice"}')
    # a non-ASCII user name as RFC 8187's username*
    answer = digest_answer(params, "GET", "/digest", username="jürgen".encode(), password="pässwörd", nc=2)
    answer = re.sub(r'username="[^"]*"', "username*=UTF-8''j%C3%BCrgen", answer)
    status, _, body = yield fetch_raw(base, "/digest", answer)
    assert (status, body) == (200, b'{"user": "j\\u00fcrgen"}')


@inline
def test_digest_replayed_nc_is_401(base):
    params = yield first_digest_challenge(base)
    answer = digest_answer(params, "GET", "/digest", nc=1)
    status, _, _ = yield fetch_raw(base, "/digest", answer)
    assert status == 200
    status, headers, _ = yield fetch_raw(base, "/digest", answer)  # the same request again
    assert status == 401
    assert all("stale" not in p for _, p in challenges_of(headers))
    # a later count is fine, out of order too, but each only once
    for nc, expected in [(3, 200), (2, 200), (2, 401), (3, 401), (4, 200)]:
        status, _, _ = yield fetch_raw(base, "/digest", digest_answer(params, "GET", "/digest", nc=nc))
        assert (nc, status) == (nc, expected)


@inline
def test_one_login_per_request_and_guard(base):
    params = yield first_digest_challenge(base, "/twice")
    answer = digest_answer(params, "GET", "/twice")
    status, _, body = yield fetch_raw(base, "/twice", answer)
    assert (status, body) == (200, b'{"user": "alice"}')
    status, _, _ = yield fetch_raw(base, "/twice", answer)
    assert status == 401  # still a replay the second time


@inline
def test_digest_stale_nonce_is_401_with_stale_true(base):
    params = yield first_digest_challenge(base)
    status, _, _ = yield fetch_raw(base, "/digest", digest_answer(params, "GET", "/digest"))
    assert status == 200
    clock.advance(61)  # past the 60 s lifetime
    status, headers, _ = yield fetch_raw(base, "/digest", digest_answer(params, "GET", "/digest", nc=2))
    assert status == 401
    fresh = challenges_of(headers)
    assert [p.get("stale") for _, p in fresh] == ["true", "true"]
    assert fresh[0][1]["nonce"] != params["nonce"]
    # a wrong password under the old nonce is a plain refusal: stale is only for right answers
    status, headers, _ = yield fetch_raw(base, "/digest",
                                         digest_answer(params, "GET", "/digest", nc=3, password="wrong"))
    assert status == 401
    assert [p.get("stale") for _, p in challenges_of(headers)] == [None, None]
    # and the new nonce works
    status, _, _ = yield fetch_raw(base, "/digest", digest_answer(fresh[1][1], "GET", "/digest"))
    assert status == 200


@inline
def test_digest_nonce_not_ours_is_stale(base):
    params = yield first_digest_challenge(base)
    forged = dict(params, nonce=base64.urlsafe_b64encode(os.urandom(36)).decode())
    status, headers, _ = yield fetch_raw(base, "/digest", digest_answer(forged, "GET", "/digest"))
    assert status == 401
    assert challenges_of(headers)[0][1].get("stale") == "true"


@inline
def test_digest_other_realm_is_401(base):
    params = yield first_digest_challenge(base)
    status, headers, _ = yield fetch_raw(base, "/digest", digest_answer(params, "GET", "/digest", realm="elsewhere"))
    assert status == 401
    assert challenges_of(headers)[0][1]["realm"] == "digest realm"


@inline
def test_malformed_authorization_is_400_never_500(base):
    params = yield first_digest_challenge(base)
    good = digest_answer(params, "GET", "/digest", nc=9)
    bad_digest = {
        "unparseable": 'Digest username="alice", realm="x',
        "missing fields": 'Digest username="alice"',
        "no username": re.sub(r'username="alice", ', "", good),
        "both usernames": good + ", username*=UTF-8''alice",
        "username* charset": re.sub(r'username="alice"', "username*=ISO-8859-1''alice", good),
        "bad nc": good.replace("nc=00000009", "nc=9"),
        "nc zero": good.replace("nc=00000009", "nc=00000000"),
        "qop": good.replace("qop=auth", "qop=auth-int"),
        "algorithm": good.replace("algorithm=SHA-256", "algorithm=SHA-512-256"),
        "response length": re.sub(r'response="[0-9a-f]+"', 'response="abc"', good),
        "uri": good.replace('uri="/digest"', 'uri="/elsewhere"'),
        "userhash": good + ", userhash=true",
        "token68": "Digest YWxpY2U=",
        "duplicate": good + ', nonce="x"',
    }
    for name, value in bad_digest.items():
        status, _, _ = yield fetch_raw(base, "/digest", value)
        assert (name, status) == (name, 400)
    for name, value in {
        "bad base64": "Basic !!!notbase64",
        "no colon": "Basic " + base64.b64encode(b"alice").decode(),
        "params": 'Basic user="alice"',
        "control": "Basic \x01",
    }.items():
        status, _, _ = yield fetch_raw(base, "/basic", value)
        assert (name, status) == (name, 400)
    status, _, _ = yield fetch_raw(base, "/basic", ["Basic " + base64.b64encode(b"alice:x").decode()] * 2)
    assert status == 400
    # the well-formed answer itself still passes after all of that
    status, _, _ = yield fetch_raw(base, "/digest", good)
    assert status == 200


# -- portal, avatars, logging -----------------------------------------------------------------------


@inline
def test_portal_avatar_and_logout(base):
    token = base64.b64encode(b"alice:" + PASSWORD.encode()).decode()
    status, _, body = yield fetch_raw(base, "/portal", f"Basic {token}")
    assert (status, body) == (200, b'{"user": "alice", "logged_out": false}')
    assert account_realm.avatars[-1].name == "alice"
    assert account_realm.avatars[-1].logged_out  # once the request finished


@inline
def test_failures_are_logged_without_the_password(base, caplog):
    caplog.set_level(logging.WARNING, logger="cyclone.general")
    token = base64.b64encode(b"alice:wr0ng-Passw0rd").decode()
    status, _, _ = yield fetch_raw(base, "/basic", f"Basic {token}")
    assert status == 401
    params = yield first_digest_challenge(base)
    answer = digest_answer(params, "GET", "/digest", password="wr0ng-Passw0rd")
    status, _, _ = yield fetch_raw(base, "/digest", answer)
    assert status == 401
    messages = [r.getMessage() for r in caplog.records if r.name == "cyclone.general"]
    assert any("Basic authentication failed for user 'alice' from 127.0.0.1" in m for m in messages)
    assert any("Digest authentication failed for user 'alice' from 127.0.0.1" in m for m in messages)
    response = re.search(r'response="([0-9a-f]+)"', answer).group(1)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert "wr0ng-Passw0rd" not in text and token not in text and response not in text


@implementer(ICredentialsChecker)
class HeldChecker:
    """A checker whose answers the test releases: requests wait in it together."""

    credentialInterfaces = InMemoryUsernamePasswordDatabaseDontUse.credentialInterfaces

    def __init__(self) -> None:
        self.inner = checker()
        self.held: list[defer.Deferred] = []

    def requestAvatarId(self, credentials):
        d = defer.Deferred()
        self.held.append(d)
        d.addCallback(lambda _: self.inner.requestAvatarId(credentials))
        return d


@inline
def test_concurrent_copies_of_one_request_succeed_once(listen):
    held = HeldChecker()
    guard = HTTPAuth(held, realm="held", schemes=("Digest",))
    base = f"http://127.0.0.1:{listen(web.Application([('/held', Whoami, {'guard': guard})]))}"
    params = yield first_digest_challenge(base, "/held")
    answer = digest_answer(params, "GET", "/held")
    first, second = fetch_raw(base, "/held", answer), fetch_raw(base, "/held", answer)

    yield poll_until(lambda: len(held.held) == 2)  # both passed the early replay check
    for d in held.held:
        d.callback(None)
    statuses = sorted([(yield first)[0], (yield second)[0]])
    assert statuses == [200, 401]


@inline
def test_mangled_headers_are_never_500(base):
    params = yield first_digest_challenge(base)
    good_digest = digest_answer(params, "GET", "/digest", nc=77)
    good_basic = "Basic " + base64.b64encode(b"alice:" + PASSWORD.encode()).decode()
    rng = random.Random(7616)
    alphabet = '",=\\ \t\xe9\xff\x7fa0/' + "".join(map(chr, range(0x20, 0x7f)))
    seen = set()
    for n in range(120):
        path, value = ("/digest", good_digest) if n % 2 else ("/basic", good_basic)
        chars = list(value)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            op = rng.choice("rid")
            if op == "r":
                chars[i] = rng.choice(alphabet)
            elif op == "i":
                chars.insert(i, rng.choice(alphabet))
            elif len(chars) > 1:
                del chars[i]
        status, _, _ = yield fetch_raw(base, path, "".join(chars).strip(" \t"))
        seen.add(status)
        assert status in (200, 400, 401), "".join(chars)
    assert {400, 401} <= seen

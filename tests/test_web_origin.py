"""Open redirects and cross-origin protection over real sockets
(``RequestHandler.redirect``, ``RedirectHandler``, ``addslash``/``removeslash``,
the ``cross_origin_protection`` setting), with ``http.client``."""

from __future__ import annotations

import http.client
import urllib.parse

import pytest
import pytest_twisted
from twisted.internet import threads

import cyclone.web as web

inline = pytest_twisted.inlineCallbacks


def _fetch(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.reason, response.getheader("Location"), response.read()
    finally:
        conn.close()


def fetch(port, path, method="GET", headers=None, body=None):
    return threads.deferToThread(_fetch, port, method, path, headers, body)


class GoTo(web.RequestHandler):
    """Redirects to its ``to`` argument, as a login page does with ``next``."""

    def get(self):
        self.redirect(self.get_argument("to"))

    def post(self):
        self.redirect(self.get_argument("to"))


class GoToAllowed(web.RequestHandler):
    def get(self):
        self.redirect(self.get_argument("to"), allow_external=True)


class GoToProvider(web.RequestHandler):
    """An external target the application chose itself (an OAuth provider)."""

    def get(self):
        self.redirect("https://accounts.provider.example/auth?client_id=1")


class GoToPath(web.RequestHandler):
    def get(self, where):
        self.redirect("//" + where)


def redirect_app(**settings):
    return web.Application([
        (r"/go", GoTo),
        (r"/allowed", GoToAllowed),
        (r"/provider", GoToProvider),
        (r"/path/(.*)", GoToPath),
    ], **settings)


OPEN_REDIRECTS = [
    "//evil.example/",
    "https://evil.example/",
    "HTTP://EVIL.EXAMPLE/",
    "https:evil.example",
    "http://127.0.0.1@evil.example/",
    "//evil%2Eexample/",
    "///evil.example/",  # a browser skips any run of slashes before the host
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
@inline
def test_redirect_to_a_site_the_request_names_is_refused(listen, target):
    port = listen(redirect_app())
    status, reason, location, body = yield fetch(port, "/go?to=" + urllib.parse.quote(target))
    assert (status, reason, location) == (400, "Refused redirect to another site", None)
    assert b"evil" not in body and b"script" not in body


@pytest.mark.parametrize("target", ["/\\evil.example/", "\\\\evil.example/", "/\t/evil.example"])
@inline
def test_backslashes_and_controls_never_lead_off_site(listen, target):
    port = listen(redirect_app())
    status, _, location, _ = yield fetch(port, "/go?to=" + urllib.parse.quote(target))
    # a backslash is percent-encoded (a path, not a host); a control character is refused
    assert status in (302, 400)
    if status == 302:
        assert not location.startswith("//") and "\\" not in location


@pytest.mark.parametrize("target", ["/x\r\nSet-Cookie: a=b", "/x\x0by", "/x\x7fy", "/\t/evil.example"])
@inline
def test_redirect_with_control_characters_is_400(listen, target):
    port = listen(redirect_app())
    status, reason, location, _ = yield fetch(port, "/go?to=" + urllib.parse.quote(target))
    assert (status, reason, location) == (400, "Redirect target has control characters", None)


@pytest.mark.parametrize("target,location", [
    ("/home", "/home"),
    ("next/page", "next/page"),  # sent as given: the client resolves it
    ("../up", "../up"),
    ("//127.0.0.1/x", "//127.0.0.1/x"),
    ("https://127.0.0.1/secure", "https://127.0.0.1/secure"),
    ("/\\evil.example/", "/%5Cevil.example/"),
])
@inline
def test_redirect_on_the_same_site_is_kept(listen, target, location):
    port = listen(redirect_app())
    status, _, got, _ = yield fetch(port, "/go?to=" + urllib.parse.quote(target))
    assert (status, got) == (302, location)


@inline
def test_post_body_argument_is_checked_too(listen):
    port = listen(redirect_app())
    status, _, location, _ = yield fetch(
        port, "/go", "POST", {"Content-Type": "application/x-www-form-urlencoded"},
        b"to=%2F%2Fevil.example%2F",
    )
    assert (status, location) == (400, None)


@inline
def test_path_argument_is_checked_too(listen):
    port = listen(redirect_app())
    status, _, location, _ = yield fetch(port, "/path/evil.example/x")
    assert (status, location) == (400, None)


@inline
def test_external_target_chosen_by_the_application_is_kept(listen):
    port = listen(redirect_app())
    status, _, location, _ = yield fetch(port, "/provider?next=/home")
    assert (status, location) == (302, "https://accounts.provider.example/auth?client_id=1")


@inline
def test_allow_external_per_call_and_by_setting(listen):
    port = listen(redirect_app())
    status, _, location, _ = yield fetch(port, "/allowed?to=" + urllib.parse.quote("//evil.example/"))
    assert (status, location) == (302, "//evil.example/")
    port = listen(redirect_app(allow_external_redirects=True))
    status, _, location, _ = yield fetch(port, "/go?to=" + urllib.parse.quote("https://evil.example/"))
    assert (status, location) == (302, "https://evil.example/")


# ----------------------------------------------------------------------------
# RedirectHandler, addslash, removeslash
# ----------------------------------------------------------------------------


class AddSlash(web.RequestHandler):
    @web.addslash
    def get(self, *args):
        self.write("added")


class RemoveSlash(web.RequestHandler):
    @web.removeslash
    def get(self, *args):
        self.write("removed")


def slash_app():
    return web.Application([
        (r"/r/(.*)", web.RedirectHandler, {"url": "/{0}/b"}),
        (r"/named/(?P<name>.*)", web.RedirectHandler, {"url": "/x/{name}?k=1"}),
        (r"/host/(.*)", web.RedirectHandler, {"url": "http://{0}.example/"}),
        (r"/ext/(.*)", web.RedirectHandler, {"url": "https://other.example/{0}"}),
        (r"/moved(.*)", web.RedirectHandler, {"url": "https://example.com{0}"}),
        (r"/add(.*)", AddSlash),
        (r".*/", RemoveSlash),
        (r".*", AddSlash),
    ])


@pytest.mark.parametrize("path,status,location", [
    ("/r/x", 301, "/x/b"),
    ("/r/x?q=1", 301, "/x/b?q=1"),
    ("/r//evil.example", 400, None),
    ("/r/%2Fevil.example", 400, None),
    ("/r/\\evil.example", 400, None),
    ("/r/%5Cevil.example", 400, None),
    ("/r/%09/evil.example", 400, None),
    ("/named/%2Fevil.example", 301, "/x//evil.example?k=1"),
    ("/host/a", 400, None),  # substitutions never fill in the host
    ("/ext/page", 301, "https://other.example/page"),  # a fixed external host is the template's
    ("/ext/..%2F..%2F", 301, "https://other.example/../../"),
    # the placeholder right after the host: a path may follow, a host may not
    ("/moved/x", 301, "https://example.com/x"),
    ("/moved", 301, "https://example.com"),
    ("/moved.evil.example/x", 400, None),
    ("/moved@evil.example/", 400, None),
    ("/moved:1@evil.example/", 400, None),
])
@inline
def test_redirect_handler_substitutions_cannot_change_scheme_or_host(listen, path, status, location):
    port = listen(slash_app())
    got_status, _, got_location, _ = yield fetch(port, path)
    assert (got_status, got_location) == (status, location)


@pytest.mark.parametrize("path,status,location", [
    ("/x", 301, "/x/"),
    ("/x/", 301, "/x"),
    ("/x/?q=1", 301, "/x?q=1"),
    ("/x?q=1", 301, "/x/?q=1"),
    ("//evil.example", 403, None),
    ("//evil.example/", 403, None),
    ("///evil.example/", 403, None),
    ("/\\evil.example", 403, None),
    ("/\\evil.example/", 403, None),
    ("/a/\\evil.example", 301, "/a/%5Cevil.example/"),
])
@inline
def test_addslash_removeslash_never_redirect_off_site(listen, path, status, location):
    port = listen(slash_app())
    got_status, _, got_location, _ = yield fetch(port, path)
    assert (got_status, got_location) == (status, location)


# ----------------------------------------------------------------------------
# Cross-origin protection
# ----------------------------------------------------------------------------


class Change(web.RequestHandler):
    prepared = []

    def prepare(self):
        Change.prepared.append(self.request.method)

    def get(self):
        self.write("read")

    def post(self):
        self.write("changed")

    put = delete = post


class OpenToAll(Change):
    def check_trusted_origin(self, origin):
        return True


def origin_app(**settings):
    return web.Application([(r"/change", Change), (r"/open", OpenToAll)], **settings)


PROTECTED = {"cross_origin_protection": True, "trusted_origins": ["https://partner.example"]}


@pytest.mark.parametrize("method,headers,status", [
    ("POST", {}, 200),
    ("POST", {"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example"}, 200),
    ("POST", {"Sec-Fetch-Site": "none"}, 200),
    ("POST", {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, 403),
    ("PUT", {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"}, 403),
    ("POST", {"Sec-Fetch-Site": "cross-site", "Origin": "https://partner.example"}, 200),
    ("DELETE", {"Origin": "http://evil.example"}, 403),
    ("POST", {"Origin": "https://partner.example"}, 200),
    ("POST", {"Origin": "null"}, 403),
    ("GET", {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, 200),
])
@inline
def test_cross_origin_protection(listen, method, headers, status):
    port = listen(origin_app(**PROTECTED))
    Change.prepared = []
    got, reason, _, body = yield fetch(port, "/change", method, headers, b"")
    assert got == status
    if status == 403:
        assert reason == "Cross-origin request refused"
        assert Change.prepared == []  # refused before prepare()
    else:
        assert Change.prepared == [method]


@inline
def test_same_origin_from_the_host_header(listen):
    port = listen(origin_app(**PROTECTED))
    status, _, _, body = yield fetch(port, "/change", "POST", {"Origin": f"http://127.0.0.1:{port}"}, b"")
    assert (status, body) == (200, b"changed")


@inline
def test_cross_origin_protection_is_off_by_default(listen):
    port = listen(origin_app())
    status, _, _, body = yield fetch(
        port, "/change", "POST", {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, b""
    )
    assert (status, body) == (200, b"changed")


@inline
def test_check_trusted_origin_override_opens_an_endpoint(listen):
    port = listen(origin_app(**PROTECTED))
    status, _, _, body = yield fetch(
        port, "/open", "POST", {"Sec-Fetch-Site": "cross-site", "Origin": "http://anyone.example"}, b""
    )
    assert (status, body) == (200, b"changed")


@inline
def test_unknown_route_stays_404_under_protection(listen):
    port = listen(origin_app(**PROTECTED))
    status, _, _, _ = yield fetch(
        port, "/nowhere", "POST", {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, b""
    )
    assert status == 404

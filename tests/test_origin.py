"""cyclone.origin: where a Location leads a browser, and cross-origin refusals."""

from __future__ import annotations

import pytest

from cyclone import origin


@pytest.mark.parametrize("location,scheme,host", [
    # relative references stay on the page's host
    ("/a/b", "http", None),
    ("a/b", "http", None),
    ("?q=1", "https", None),
    ("#frag", "http", None),
    ("/%2F%2Fevil.example", "http", None),
    ("/%5Cevil.example", "http", None),
    # same special scheme without slashes: relative (WHATWG "special relative or authority")
    ("http:evil.example", "http", None),
    # scheme-relative, with any run of slashes or backslashes
    ("//evil.example/x", "http", "evil.example"),
    ("///evil.example", "http", "evil.example"),
    ("/\\evil.example", "http", "evil.example"),
    ("\\\\evil.example", "https", "evil.example"),
    ("\\/evil.example", "http", "evil.example"),
    # what browsers strip before parsing
    ("  //evil.example", "http", "evil.example"),
    ("/\t/evil.example", "http", "evil.example"),
    ("/\n/evil.example", "http", "evil.example"),
    ("\x01//evil.example", "http", "evil.example"),
    # another special scheme: the authority follows whatever slashes
    ("https:evil.example", "http", "evil.example"),
    ("https:/evil.example", "http", "evil.example"),
    ("HTTPS://EVIL.example:8443/x", "http", "evil.example"),
    ("http://user:pw@evil.example/", "http", "evil.example"),
    ("http://good.example@evil.example/", "http", "evil.example"),
    ("http://evil.example./", "http", "evil.example"),
    ("http://evil%2Eexample/", "http", "evil.example"),
    ("http://[::1]:8080/", "http", "[::1]"),
    ("http://evil.example?x", "http", "evil.example"),
    ("http://evil.example#x", "http", "evil.example"),
])
def test_redirect_target_host(location, scheme, host):
    assert origin.redirect_target(location, scheme).host == host


@pytest.mark.parametrize("location,scheme", [
    ("javascript:alert(1)", "javascript"),
    ("JavaScript:alert(1)", "javascript"),
    ("data:text/html,x", "data"),
    ("mailto:a@b.example", "mailto"),
    ("myapp://callback", "myapp"),
    (" javascript:alert(1)", "javascript"),
])
def test_non_special_schemes(location, scheme):
    target = origin.redirect_target(location, "http")
    assert (target.scheme, target.host) == (scheme, None)
    assert origin.is_external(target, "site.example")


@pytest.mark.parametrize("location,external", [
    ("/x", False),
    ("//site.example/x", False),
    ("https://site.example/x", False),  # an upgrade to https stays on the site
    ("http://SITE.example:8080/", False),
    ("//evil.example", True),
    ("https://sub.site.example/", True),
    ("file:///etc/passwd", True),
    ("ftp://site.example/", True),
])
def test_is_external(location, external):
    assert origin.is_external(origin.redirect_target(location, "http"), "site.example:8888") is external


def test_taken_from_matches_host_or_scheme_in_any_form():
    evil = origin.redirect_target("//EVIL.example/x", "http")
    assert origin.taken_from(evil, ["/login?next=//evil.example/x"])
    assert origin.taken_from(evil, ["nothing", "go to Evil.Example"])
    assert not origin.taken_from(evil, ["/login?next=/home", "evil"])
    encoded = origin.redirect_target("//evil%2Eexample/", "http")
    assert origin.taken_from(encoded, ["//evil%2Eexample/"])  # as written
    assert origin.taken_from(encoded, ["//evil.example/"])  # as the browser reads it
    script = origin.redirect_target("javascript:alert(1)", "http")
    assert origin.taken_from(script, ["JAVASCRIPT:alert(1)"])
    assert not origin.taken_from(script, ["alert(1)"])


def test_control_characters():
    assert origin.has_control_characters("/a\r\nb")
    assert origin.has_control_characters("/a\tb")
    assert origin.has_control_characters("/a\x7fb")
    assert not origin.has_control_characters("/a b/caf\u00e9")


def _trusted(*origins):
    return lambda value: value in origins


@pytest.mark.parametrize("method,headers,trusted,refused", [
    ("GET", {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, (), False),
    ("HEAD", {"Sec-Fetch-Site": "cross-site"}, (), False),
    ("OPTIONS", {"Origin": "http://evil.example"}, (), False),
    ("POST", {}, (), False),  # no browser headers: not a browser
    ("POST", {"Sec-Fetch-Site": "same-origin"}, (), False),
    ("POST", {"Sec-Fetch-Site": "none"}, (), False),
    ("POST", {"Sec-Fetch-Site": "Same-Origin"}, (), False),
    ("POST", {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, (), True),
    ("POST", {"Sec-Fetch-Site": "same-site", "Origin": "http://a.site.example"}, (), True),
    ("POST", {"Sec-Fetch-Site": "cross-site"}, (), True),
    ("POST", {"Sec-Fetch-Site": "cross-site", "Origin": "https://good.example"},
     ("https://good.example",), False),
    ("DELETE", {"Origin": "http://site.example:8888"}, (), False),
    ("PUT", {"Origin": "http://SITE.example:8888"}, (), False),
    ("POST", {"Origin": "http://site.example"}, (), True),  # another port
    ("POST", {"Origin": "http://evil.example"}, (), True),
    ("POST", {"Origin": "null"}, (), True),
    ("POST", {"Origin": "http://evil.example"}, ("http://evil.example",), False),
    ("PATCH", {"Origin": "http://evil.example"}, (), True),
])
def test_cross_origin_refusal(method, headers, trusted, refused):
    reason = origin.cross_origin_refusal(method, headers, "site.example:8888", _trusted(*trusted))
    assert (reason is not None) is refused


def test_origin_matches_host_default_ports():
    assert origin.origin_matches_host("http://site.example", "site.example")
    assert origin.origin_matches_host("http://site.example", "site.example:80")
    assert origin.origin_matches_host("https://site.example:443", "site.example")
    assert not origin.origin_matches_host("http://site.example", "site.example:8080")
    assert not origin.origin_matches_host("site.example", "site.example")
    assert origin.origin_matches_host("http://[::1]:8080", "[::1]:8080")

"""Tests for app.py in Tornado's style (AsyncHTTPTestCase, self.fetch,
gen_test). tests/test_porting.py runs them under Tornado and, with only the
imports changed, under cyclone."""

import json
import re
import urllib.parse

from tornado import gen
from tornado.testing import AsyncHTTPTestCase, gen_test

import app


class BlogTest(AsyncHTTPTestCase):
    def get_app(self):
        return app.make_app()

    def login(self, name="alice"):
        response = self.fetch("/login?next=/secret", method="POST",
                              body=urllib.parse.urlencode({"name": name}), follow_redirects=False)
        self.assertEqual(response.code, 302)
        self.assertEqual(response.headers["Location"], "/secret")
        return re.match(r"(user=[^;]+)", response.headers["Set-Cookie"]).group(1)

    def test_home_renders_the_template_chain(self):
        response = self.fetch("/")
        self.assertEqual(response.code, 200)
        body = response.body.decode()
        self.assertIn("<title>Home</title>", body)
        self.assertIn('<a href="/post/1">Hello</a>', body)
        self.assertRegex(body, r'href="/static/site\.css\?v=[0-9a-f]+"')

    def test_post_html_escapes_and_json(self):
        response = self.fetch("/post/2")
        self.assertEqual(response.code, 200)
        self.assertIn("Second &lt;post&gt;", response.body.decode())
        response = self.fetch("/post/2?format=json")
        self.assertEqual(response.headers["Content-Type"], "application/json; charset=UTF-8")
        self.assertEqual(json.loads(response.body), app.POSTS[2])

    def test_missing_post_and_unknown_path_use_the_custom_404(self):
        for path in ("/post/99", "/no/such/page"):
            response = self.fetch(path)
            self.assertEqual(response.code, 404)
            self.assertIn(f'<p class="missing">Nothing at {path}</p>', response.body.decode())

    def test_optional_group(self):
        self.assertEqual(json.loads(self.fetch("/archive/2024").body), {"year": 2024, "month": None})
        self.assertEqual(json.loads(self.fetch("/archive/2024/05").body), {"year": 2024, "month": 5})

    def test_login_and_signed_cookie(self):
        response = self.fetch("/secret", follow_redirects=False)
        self.assertEqual(response.code, 302)
        self.assertEqual(response.headers["Location"], "/login?next=%2Fsecret")
        cookie = self.login()
        response = self.fetch("/secret", headers={"Cookie": cookie})
        self.assertEqual((response.code, response.body), (200, b"secret for alice"))
        forged = cookie[:-2] + ("00" if not cookie.endswith("00") else "11")
        response = self.fetch("/secret", headers={"Cookie": forged}, follow_redirects=False)
        self.assertEqual(response.code, 302)

    def test_bad_login_is_400_with_reason(self):
        response = self.fetch("/login", method="POST", body="name=a%20b")
        self.assertEqual((response.code, response.reason), (400, "Bad name"))

    def test_static_file_and_etag(self):
        response = self.fetch("/static/site.css")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"body { font-family: sans-serif; }\n")
        etag = response.headers["Etag"]
        response = self.fetch("/static/site.css", headers={"If-None-Match": etag})
        self.assertEqual(response.code, 304)
        self.assertEqual(response.body, b"")

    def test_head_has_the_length_of_get(self):
        get = self.fetch("/post/1")
        head = self.fetch("/static/site.css", method="HEAD")
        self.assertEqual(head.code, 200)
        self.assertEqual(head.headers["Content-Length"], "34")
        self.assertEqual(head.body, b"")
        self.assertEqual(get.headers["Content-Length"], str(len(get.body)))

    def test_async_handler(self):
        response = self.fetch("/echo", method="POST", body=json.dumps([1, 2, 3]))
        self.assertEqual(json.loads(response.body), {"echo": [1, 2, 3], "n": 3})

    def test_gen_coroutine_handler(self):
        response = self.fetch("/sum?n=1&n=2&n=3")
        self.assertEqual(json.loads(response.body), {"sum": 12})

    @gen_test
    async def test_gen_test_with_the_http_client(self):
        response = await self.http_client.fetch(self.get_url("/post/1?format=json"))
        self.assertEqual(json.loads(response.body)["title"], "Hello")
        results = await gen.multi([self.http_client.fetch(self.get_url(f"/post/{i}?format=json"))
                                   for i in (1, 2)])
        self.assertEqual([json.loads(r.body)["id"] for r in results], [1, 2])

"""A small but complete Tornado 6.6 application, written as Tornado's docs
teach. tests/test_porting.py runs it (and test_app.py, its Tornado-style
tests) once under Tornado and once under cyclone with only the imports
changed: no line below the imports may mention the framework by name.
"""

import asyncio
import json
import os
import sys

from tornado import gen, web

HERE = os.path.dirname(os.path.abspath(__file__))
POSTS = {1: {"id": 1, "title": "Hello", "body": "First post"},
         2: {"id": 2, "title": "Again", "body": "Second <post>"}}


class BaseHandler(web.RequestHandler):
    def get_current_user(self):
        user = self.get_signed_cookie("user")
        return user.decode() if user else None

    def write_error(self, status_code, **kwargs):
        if status_code == 404:
            self.render("404.html", path=self.request.path)
        else:
            super().write_error(status_code, **kwargs)


class HomeHandler(BaseHandler):
    def get(self):
        self.render("index.html", posts=sorted(POSTS.values(), key=lambda p: p["id"]))


class PostHandler(BaseHandler):
    def get(self, post_id):
        post = POSTS.get(int(post_id))
        if post is None:
            raise web.HTTPError(404)
        if self.get_argument("format", "html") == "json":
            self.write(post)
        else:
            self.render("post.html", post=post)


class ArchiveHandler(BaseHandler):
    def get(self, year, month=None):
        self.write({"year": int(year), "month": int(month) if month else None})


class LoginHandler(BaseHandler):
    def get(self):
        self.render("login.html", next=self.get_argument("next", "/"))

    def post(self):
        name = self.get_body_argument("name")
        if not name.isalnum():
            raise web.HTTPError(400, reason="Bad name")
        self.set_signed_cookie("user", name)
        self.redirect(self.get_argument("next", "/"))


class SecretHandler(BaseHandler):
    @web.authenticated
    def get(self):
        self.write("secret for " + self.current_user)


class EchoHandler(BaseHandler):
    def check_xsrf_cookie(self):
        pass

    async def post(self):
        data = json.loads(self.request.body)
        await gen.sleep(0.001)
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"echo": data, "n": len(data)}))


class SlowSumHandler(BaseHandler):
    @gen.coroutine
    def get(self):
        numbers = [int(n) for n in self.get_arguments("n")]
        partial = yield [self.double(n) for n in numbers]
        yield gen.moment
        self.write({"sum": sum(partial)})

    @gen.coroutine
    def double(self, n):
        yield gen.sleep(0)
        raise gen.Return(n * 2)


def make_app(**settings):
    defaults = dict(
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        cookie_secret="porting-test-secret",
        login_url="/login",
        xsrf_cookies=False,
    )
    defaults.update(settings)
    return web.Application([
        web.url(r"/", HomeHandler, name="home"),
        web.url(r"/post/(\d+)", PostHandler, name="post"),
        (r"/archive/(\d{4})/?(\d{2})?", ArchiveHandler),
        (r"/login", LoginHandler),
        (r"/secret", SecretHandler),
        (r"/echo", EchoHandler),
        (r"/sum", SlowSumHandler),
    ], default_handler_class=NotFoundHandler, **defaults)


class NotFoundHandler(BaseHandler):
    def prepare(self):
        raise web.HTTPError(404)


async def main(port):
    app = make_app()
    app.listen(port, address="127.0.0.1")
    print("listening", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

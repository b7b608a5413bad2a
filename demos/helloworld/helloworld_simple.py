"""Hello world for ``twistd cyclone``: this file only defines an Application.

    twistd -n cyclone helloworld_simple.py          # or: cyclone run helloworld_simple.py
    twistd -n cyclone -p 8051 -l 127.0.0.1 -c xheaders helloworld_simple.py   # behind nginx.conf

The plugin finds the one ``cyclone.web.Application`` subclass defined here and
builds it with ``-c/--appopts`` as its argument.
"""

import cyclone.web


class MainHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class WhoAmIHandler(cyclone.web.RequestHandler):
    """The client's address and scheme as the application sees them."""

    def get(self) -> None:
        self.write({"remote_ip": self.request.remote_ip, "protocol": self.request.protocol})


class Application(cyclone.web.Application):
    def __init__(self, appopts: str | None = None) -> None:
        handlers = [(r"/", MainHandler), (r"/whoami", WhoAmIHandler)]
        # "-c xheaders": trust X-Real-IP/X-Forwarded-For and X-Scheme, as set by
        # the nginx.conf next to this file. Only behind such a proxy: a client
        # talking to us directly could claim any address with those headers.
        super().__init__(handlers, xheaders=(appopts == "xheaders"))

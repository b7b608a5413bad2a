#!/usr/bin/env python3
"""Hello world as a plain script: build an Application, listenTCP, run the reactor.

python helloworld.py [port]        # default 8888, on 127.0.0.1
"""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web


class MainHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


def main(argv: list[str]) -> None:
    port = int(argv[1]) if len(argv) > 1 else 8888
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    application = cyclone.web.Application([(r"/", MainHandler)])
    reactor.listenTCP(port, application, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)

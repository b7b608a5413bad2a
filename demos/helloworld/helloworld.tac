# Hello world as a twisted application file (.tac), run by twistd:
#
#     twistd -n --python=helloworld.tac          # foreground, logs to stdout
#     twistd --pidfile=hello.pid --logfile=hello.log --python=helloworld.tac
#
# twistd looks for the module-level name "application". The port is 8888, or
# $HELLOWORLD_PORT.

import os

from twisted.application import internet, service

import cyclone.web


class MainHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


port = int(os.environ.get("HELLOWORLD_PORT", "8888"))
webapp = cyclone.web.Application([(r"/", MainHandler)])
application = service.Application("helloworld")
internet.TCPServer(port, webapp, interface="127.0.0.1").setServiceParent(application)

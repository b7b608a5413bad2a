import socket, time, ssl
import cyclone.web
from cyclone.testing import AsyncHTTPSTestCase
from twisted.internet import threads

class Proto(cyclone.web.RequestHandler):
    def get(self):
        self.write(self.request.protocol)

class HTTPSProbe(AsyncHTTPSTestCase):
    def get_app(self):
        return cyclone.web.Application([(r"/proto", Proto)])
    def test_it(self):
        def tls():
            t = time.time(); log = []
            context = ssl.create_default_context(cafile=self.get_ssl_options()["certfile"])
            try:
                with socket.create_connection(("127.0.0.1", self.get_http_port()), timeout=3) as raw:
                    with context.wrap_socket(raw, server_hostname="localhost") as sock:
                        sock.sendall(b"GET /proto HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        while True:
                            chunk = sock.recv(65536)
                            log.append((chunk[:20], round(time.time() - t, 3)))
                            if not chunk: break
            except Exception as e:
                log.append((repr(e)[:50], round(time.time() - t, 3)))
            return log
        print(self.wait_for(threads.deferToThread(tls), timeout=10))

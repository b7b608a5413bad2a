"""cyclone.log: stdlib loggers bridged into Twisted's log, never patching observers."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from twisted.logger import globalLogPublisher

from cyclone import log


def test_bridge_sends_records_to_twisted_observers(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        assert log.bridge_to_twisted(logging.INFO) is True
        assert log.bridge_to_twisted() is True  # idempotent
        log.gen_log.info("hello {not a format} %s", "arg")
        try:
            raise RuntimeError("kaboom")
        except RuntimeError:
            log.app_log.error("failed", exc_info=True)
    finally:
        globalLogPublisher.removeObserver(seen.append)
        log.unbridge()
    texts = [(e.get("log_system"), e.get("log_text"), e["log_level"].name) for e in seen if "log_text" in e]
    assert ("cyclone.general", "hello {not a format} arg", "info") in texts
    failure_text = [t for s, t, lvl in texts if s == "cyclone.application"][0]
    assert failure_text.startswith("failed\nTraceback") and "RuntimeError: kaboom" in failure_text
    assert logging.getLogger("cyclone").handlers == []


def test_bridge_stays_out_when_stdlib_logging_is_configured():
    assert logging.getLogger().handlers  # pytest's own capture handlers
    assert log.bridge_to_twisted() is False
    assert logging.getLogger("cyclone").handlers == []


def test_twisted_log_shows_request_lines_when_started_under_twisted_logging(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(
        """
        import http.client, sys
        from twisted.internet import reactor, threads
        from twisted.python import log as tlog
        import cyclone.web

        class Hello(cyclone.web.RequestHandler):
            def get(self):
                self.write("hi")

        tlog.startLogging(sys.stdout)
        port = reactor.listenTCP(0, cyclone.web.Application([(r"/", Hello)]), interface="127.0.0.1")

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port.getHost().port, timeout=10)
            conn.request("GET", "/?x=1")
            return conn.getresponse().read()

        threads.deferToThread(client).addBoth(lambda _: reactor.callLater(0.05, reactor.stop))
        reactor.run()
        """
    ))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert "200 GET /?x=1 (127.0.0.1)" in out.stdout, out.stdout + out.stderr


def test_bridge_hands_over_to_logging_configured_later(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    seen_twisted = []
    globalLogPublisher.addObserver(seen_twisted.append)
    try:
        assert log.bridge_to_twisted() is True

        class Collect(logging.Handler):
            def __init__(self):
                super().__init__()
                self.records = []

            def emit(self, record):
                self.records.append(record)

        collect = Collect()
        monkeypatch.setattr(root, "handlers", [collect])
        log.gen_log.warning("after configuration")
    finally:
        globalLogPublisher.removeObserver(seen_twisted.append)
        log.unbridge()
    assert [r.getMessage() for r in collect.records] == ["after configuration"]
    assert not [e for e in seen_twisted if e.get("log_text") == "after configuration"]


def test_no_request_lines_when_twisted_logging_has_not_started(tmp_path):
    """A server that logs nowhere creates no access-log records: the cost of
    logging is zero until someone listens."""
    script = tmp_path / "quiet.py"
    script.write_text(textwrap.dedent(
        """
        import http.client, logging
        from twisted.internet import reactor, threads
        import cyclone.web
        from cyclone.log import twisted_logging_started

        created = []
        old_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(lambda *a, **k: created.append(a[0]) or old_factory(*a, **k))

        class Hello(cyclone.web.RequestHandler):
            def get(self):
                self.write("hi")

        port = reactor.listenTCP(0, cyclone.web.Application([(r"/", Hello)]), interface="127.0.0.1")

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port.getHost().port, timeout=10)
            conn.request("GET", "/")
            return conn.getresponse().read()

        def done(body):
            print(body, twisted_logging_started(), [n for n in created if n.startswith("cyclone")])
            reactor.stop()

        threads.deferToThread(client).addBoth(done)
        reactor.run()
        """
    ))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "b'hi' False []", out.stdout + out.stderr

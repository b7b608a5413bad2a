"""cyclone's loggers, and the bridge that sends them into Twisted's log.

cyclone logs through three stdlib loggers, as Tornado does:

``cyclone.access``
    one line per finished request (``Application.log_request``).
``cyclone.application``
    errors in application code: uncaught exceptions in handlers.
``cyclone.general``
    everything else: rejected requests, timeouts, protocol errors.

Under ``twistd`` there is no stdlib logging configuration, so these records
would be lost. ``bridge_to_twisted()`` forwards them to ``twisted.logger``
(where twistd's observers write them) by adding one handler to the
``cyclone`` logger. It never touches Twisted's observers, and it does nothing
when the root logger already has handlers: then the application has
configured stdlib logging itself and the records go there.
"""

from __future__ import annotations

import logging

from twisted.logger import Logger, LogLevel

__all__ = ["access_log", "app_log", "gen_log", "TwistedLogHandler", "bridge_to_twisted"]

access_log = logging.getLogger("cyclone.access")
app_log = logging.getLogger("cyclone.application")
gen_log = logging.getLogger("cyclone.general")

_LEVELS = {
    logging.DEBUG: LogLevel.debug,
    logging.INFO: LogLevel.info,
    logging.WARNING: LogLevel.warn,
    logging.ERROR: LogLevel.error,
    logging.CRITICAL: LogLevel.critical,
}


class TwistedLogHandler(logging.Handler):
    """A stdlib logging handler that emits records through ``twisted.logger``."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._twisted_log = Logger(namespace="cyclone")

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if root.handlers:
            # stdlib logging was configured after the bridge went in: the
            # application's handlers take the records from now on
            if record.levelno >= root.getEffectiveLevel():
                root.handle(record)
            return
        try:
            text = record.getMessage()
            if record.exc_info:
                text = f"{text}\n{self.formatException(record.exc_info)}"
            level = _LEVELS.get(record.levelno, LogLevel.info)
            # '{' and '}' in the text must not be read as a Twisted format string
            self._twisted_log.emit(
                level, "{log_text}", log_text=text, log_system=record.name
            )
        except Exception:  # never let logging break the reactor
            self.handleError(record)

    def formatException(self, exc_info) -> str:
        return logging.Formatter().formatException(exc_info)


_bridge: TwistedLogHandler | None = None
_level_set = False


def twisted_logging_started() -> bool:
    """True once Twisted's log has real observers (``twistd``, or
    ``twisted.python.log.startLogging``): before that, events are only buffered."""
    from twisted.logger import globalLogBeginner

    return getattr(globalLogBeginner, "_temporaryObserver", None) is None


def bridge_to_twisted(level: int | None = None) -> bool:
    """Send the ``cyclone.*`` loggers to Twisted's log, once.

    ``level`` (when the ``cyclone`` logger has none of its own) defaults to
    INFO, so every request is logged, when Twisted's logging has started, and
    stays at Python's default (WARNING: errors only, and no cost per request)
    otherwise. Returns True when the bridge is (now) installed, False when
    stdlib logging is already configured by the application (the root logger
    has handlers).
    """
    global _bridge, _level_set
    parent = logging.getLogger("cyclone")
    if _bridge is not None:
        return True
    if logging.getLogger().handlers or parent.handlers:
        return False
    _bridge = TwistedLogHandler()
    parent.addHandler(_bridge)
    if level is None and twisted_logging_started():
        level = logging.INFO
    if level is not None and parent.level == logging.NOTSET:
        parent.setLevel(level)
        _level_set = True
    # Records handled here must not also reach Python's last-resort stderr handler.
    parent.propagate = False
    return True


def unbridge() -> None:
    """Remove the bridge installed by ``bridge_to_twisted`` (for tests and shutdown)."""
    global _bridge, _level_set
    if _bridge is None:
        return
    parent = logging.getLogger("cyclone")
    parent.removeHandler(_bridge)
    parent.propagate = True
    if _level_set:
        parent.setLevel(logging.NOTSET)
        _level_set = False
    _bridge = None

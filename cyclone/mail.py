"""Sending mail: build a message with the standard library's ``email``
package, send it with Twisted's ESMTP client.

.. code-block:: python

    from cyclone import mail

    message = mail.Message("Site <noreply@example.com>", ["José <jose@example.org>"],
                           "Your report", "The report is attached.")
    message.attach("report.pdf")                         # read as bytes
    await mail.sendmail({"host": "smtp.example.com", "tls": True,
                         "username": "noreply", "password": "..."}, message)

``Message`` keeps the original cyclone's API (``attach``, ``add_header``,
``render``) and adds an HTML body with a text alternative (``set_html``) and
inline images referred to by Content-ID (``add_inline``). Non-ASCII subjects,
display names and file names are encoded as RFC 2047/2231 say; bodies are sent
as quoted-printable or base64, so any server takes them (no 8BITMIME needed).

``sendmail`` returns a Deferred; every failure arrives on it as a
:class:`MailError` subclass that says what went wrong.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
from collections.abc import Iterable, Mapping
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from typing import Any, NamedTuple

from twisted.internet import defer
from twisted.mail import smtp
from twisted.python.failure import Failure

__all__ = [
    "Message",
    "sendmail",
    "SentMail",
    "MailError",
    "MailConnectionError",
    "MailTimeoutError",
    "MailTLSError",
    "MailAuthError",
    "MailRecipientsRefused",
    "MailRejected",
]

# 7bit: non-ASCII bodies go out quoted-printable or base64, because Twisted's
# client does not announce BODY=8BITMIME. linesep "\n": Twisted's client turns
# each LF into CRLF (and dot-stuffs) as it sends.
_SEND_POLICY = email_policy.default.clone(cte_type="7bit")
_WIRE_POLICY = _SEND_POLICY.clone(linesep="\r\n")

# RFC 5322 §2.2: a field name is printable US-ASCII except ":"
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")

DEFAULT_TIMEOUT = 60.0  # seconds; see sendmail()


def _addresses(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    out = []
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"an address must be str, not {type(item).__name__}")
        if "\r" in item or "\n" in item:
            raise ValueError(f"line break in address {item!r}")
        out.append(item)
    return out


def _addr_spec(address: str) -> str:
    """The bare ``local@domain`` of ``address`` (which may have a display name)."""
    name, spec = parseaddr(address)
    if not spec or "@" not in spec:
        raise ValueError(f"not an e-mail address: {address!r}")
    if not spec.isascii():
        # would need SMTPUTF8 (RFC 6531), which Twisted's client does not speak
        raise ValueError(f"non-ASCII address {spec!r}: only display names may be non-ASCII")
    return spec


class Message:
    """A mail message.

    ``to_addrs`` is one address or a list; addresses may carry display names
    (``"Zoë <zoe@example.org>"``). ``message`` is the body, of type ``mime``
    (``text/plain`` or ``text/html``) in ``charset``. ``cc`` recipients are
    listed in a ``Cc`` header, ``bcc`` recipients only get the message.
    """

    def __init__(
        self,
        from_addr: str,
        to_addrs: str | Iterable[str],
        subject: str,
        message: str,
        mime: str = "text/plain",
        charset: str = "utf-8",
        cc: str | Iterable[str] | None = None,
        bcc: str | Iterable[str] | None = None,
    ) -> None:
        maintype, _, subtype = mime.partition("/")
        if maintype != "text" or subtype not in ("plain", "html"):
            raise ValueError(f"the body's mime must be text/plain or text/html, not {mime!r}")
        if "\r" in subject or "\n" in subject:
            raise ValueError("line break in the subject")
        self.from_addr = _addresses(from_addr)[0]
        self.to_addrs = _addresses(to_addrs)
        self.cc_addrs = _addresses(cc)
        self.bcc_addrs = _addresses(bcc)
        if not self.to_addrs and not self.cc_addrs and not self.bcc_addrs:
            raise ValueError("a message needs at least one recipient")
        for address in [self.from_addr, *self.to_addrs, *self.cc_addrs, *self.bcc_addrs]:
            _addr_spec(address)
        self.subject = subject
        self.message = message
        self.mime = mime
        self.charset = charset
        self.html: str | None = None
        self._headers: list[tuple[str, str, dict[str, Any]]] = []
        self._inline: list[tuple[str, bytes, str, str | None]] = []
        self._attachments: list[tuple[str, bytes, str, str | None]] = []

    # -- building ---------------------------------------------------------------------------------

    def set_html(self, html: str) -> None:
        """Send ``html`` as the preferred body, with ``message`` as its
        text/plain alternative (multipart/alternative)."""
        if self.mime != "text/plain":
            raise ValueError("set_html needs a text/plain message to be its alternative")
        self.html = html

    def add_header(self, key: str, value: str, **params: Any) -> None:
        """Add a header; ``params`` become ``; name="value"`` parameters
        (``_`` in their names written as ``-``). Non-ASCII values are encoded."""
        if not isinstance(key, str) or not _FIELD_NAME.match(key):
            raise ValueError(f"invalid header name {key!r}: printable ASCII without ':' or spaces")
        for text in (value, *map(str, params.values())):
            if "\r" in text or "\n" in text:
                raise ValueError(f"line break in the value of header {key!r}")
        self._headers.append((key, value, params))

    def attach(
        self,
        filename: str,
        mime: str | None = None,
        charset: str | None = None,
        content: bytes | str | None = None,
    ) -> None:
        """Attach a file. Without ``content`` the file ``filename`` is read
        (as bytes); with it, ``filename`` is only the name the recipient sees.
        ``mime`` is guessed from the name when not given. A ``str`` content is
        encoded in ``charset`` (UTF-8 by default)."""
        name, data, mime = self._load(filename, mime, charset, content)
        self._attachments.append((name, data, mime, charset))

    def add_inline(
        self,
        filename: str,
        mime: str | None = None,
        content: bytes | None = None,
        cid: str | None = None,
    ) -> str:
        """Add an image (or other part) the HTML body shows inline; returns its
        Content-ID, to be used as ``<img src="cid:{returned id}">``."""
        name, data, mime = self._load(filename, mime, None, content)
        if cid is None:
            cid = make_msgid(domain=_addr_spec(self.from_addr).rpartition("@")[2])[1:-1]
        elif not re.fullmatch(r"[!-;=?-~]+", cid):  # printable, no "<" or ">"
            raise ValueError(f"invalid Content-ID {cid!r}")
        self._inline.append((name, data, mime, cid))
        return cid

    @staticmethod
    def _load(filename: str, mime: str | None, charset: str | None, content: bytes | str | None):
        if content is None:
            with open(filename, "rb") as file:
                content = file.read()
        elif isinstance(content, str):
            content = content.encode(charset or "utf-8")
        elif not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"content must be bytes or str, not {type(content).__name__}")
        name = os.path.basename(filename)
        if mime is None:
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if mime.count("/") != 1:
            raise ValueError(f"invalid mime type {mime!r}")
        return name, bytes(content), mime

    # -- output ----------------------------------------------------------------------------------

    @property
    def recipients(self) -> list[str]:
        """The envelope recipients: the bare addresses of To, Cc and Bcc."""
        return [_addr_spec(a) for a in (*self.to_addrs, *self.cc_addrs, *self.bcc_addrs)]

    @property
    def msg(self) -> EmailMessage:
        """The message as a standard library ``EmailMessage`` (built afresh)."""
        return self._build()

    def _build(self) -> EmailMessage:
        msg = EmailMessage(policy=_SEND_POLICY)
        msg["From"] = self.from_addr
        if self.to_addrs:
            msg["To"] = ", ".join(self.to_addrs)
        if self.cc_addrs:
            msg["Cc"] = ", ".join(self.cc_addrs)
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=True)
        # the domain given: make_msgid's default asks DNS for this host's name
        msg["Message-ID"] = make_msgid(domain=_addr_spec(self.from_addr).rpartition("@")[2])
        for key, value, params in self._headers:
            if params:
                msg.add_header(key, value, **params)
            else:
                msg[key] = value

        subtype = self.mime.partition("/")[2]
        msg.set_content(self.message, subtype=subtype, charset=self.charset)
        if self.html is not None:
            msg.add_alternative(self.html, subtype="html", charset=self.charset)
        if self._inline:
            html = msg.get_body(("html",))
            if html is None:
                raise ValueError("inline parts need an HTML body (set_html or mime='text/html')")
            for name, data, mime, cid in self._inline:
                maintype, sub = mime.split("/")
                html.add_related(data, maintype, sub, cid=f"<{cid}>", filename=name, disposition="inline")
        for name, data, mime, charset in self._attachments:
            maintype, sub = mime.split("/")
            params = {"charset": charset} if charset and maintype == "text" else None
            msg.add_attachment(data, maintype, sub, filename=name, params=params)
        return msg

    def render(self) -> io.BytesIO:
        """The message as a file for Twisted's SMTP client (LF line ends, which
        the client sends as CRLF). The original returned a ``StringIO``; SMTP on
        Python 3 needs bytes."""
        return io.BytesIO(self._build().as_bytes(policy=_SEND_POLICY))

    def as_bytes(self) -> bytes:
        """The message as RFC 5322 bytes (CRLF line ends)."""
        return self._build().as_bytes(policy=_WIRE_POLICY)

    def __str__(self) -> str:
        return self._build().as_string(policy=_SEND_POLICY)


# -- sending ------------------------------------------------------------------------------------


class SentMail(NamedTuple):
    """What ``sendmail`` fires with: how many recipients the server accepted,
    and its answer to each ``RCPT`` as ``(address, code, text)``. Some
    recipients may have been refused while others got the message."""

    accepted: int
    responses: list[tuple[str, int, str]]

    @property
    def refused(self) -> dict[str, tuple[int, str]]:
        """The recipients the server refused: ``{address: (code, text)}``."""
        return {addr: (code, text) for addr, code, text in self.responses if not 200 <= code < 300}


class MailError(Exception):
    """Sending failed. ``code`` is the server's reply code, or -1."""

    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.code = code


class MailConnectionError(MailError):
    """No connection, or the server closed it before it accepted the message
    (which then may or may not have been delivered)."""


class MailTimeoutError(MailError):
    """The server took longer than ``timeout`` to connect or to answer."""


class MailTLSError(MailError):
    """TLS was asked for and could not be had: STARTTLS not offered, or the
    handshake or the certificate check failed."""


class MailAuthError(MailError):
    """The server refused the login, or offers no login at all."""


class MailRecipientsRefused(MailError):
    """The server refused every recipient; ``refused`` is
    ``{address: (code, text)}``."""

    def __init__(self, message: str, refused: dict[str, tuple[int, str]], code: int = -1) -> None:
        super().__init__(message, code)
        self.refused = refused


class MailRejected(MailError):
    """The server refused the sender or the message itself."""


_MAILCONF_KEYS = {"host", "port", "username", "password", "tls", "ssl", "timeout", "validate_cert", "ca_certs"}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _reply(exc: smtp.SMTPClientError) -> str:
    text = _text(exc.resp) if exc.resp is not None else ""
    return f"{exc.code} {text}".strip() if exc.code and exc.code > 0 else text


def _translate(failure: Failure, where: str, connected: list[bool]) -> Failure:
    """Twisted's SMTP exceptions, said plainly (the original is the ``__cause__``)."""
    exc = failure.value
    new: MailError
    if isinstance(exc, MailError) or isinstance(exc, defer.CancelledError):
        return failure
    if isinstance(exc, (smtp.AUTHDeclinedError, smtp.AuthenticationError)):
        new = MailAuthError(f"{where} refused the login: {_reply(exc)}", exc.code)
    elif isinstance(exc, smtp.AUTHRequiredError):
        new = MailAuthError(
            f"{where} offers no login (AUTH) this client can use (many servers offer it only "
            f"after STARTTLS: set 'tls'): {_reply(exc)}",
            exc.code,
        )
    elif isinstance(exc, (smtp.TLSRequiredError, smtp.TLSError)):
        new = MailTLSError(f"{where}: TLS was required and could not be started: {_reply(exc)}", exc.code)
    elif isinstance(exc, smtp.SMTPTimeoutError):
        new = MailTimeoutError(f"{where} did not answer in time", exc.code)
    elif isinstance(exc, smtp.SMTPDeliveryError):
        addresses = exc.addresses or []
        refused = {
            _text(addr): (code, _text(resp)) for addr, code, resp in addresses if not 200 <= code < 300
        }
        if addresses and len(refused) == len(addresses):
            listed = "; ".join(f"{addr}: {code} {text}" for addr, (code, text) in refused.items())
            new = MailRecipientsRefused(f"{where} refused every recipient: {listed}", refused, exc.code)
        else:
            new = MailRejected(f"{where} refused the message: {_reply(exc)}", exc.code)
    elif isinstance(exc, smtp.SMTPConnectError):
        cause = exc.__cause__
        if _is_tls_failure(cause):
            new = MailTLSError(f"{where}: TLS handshake failed: {cause}")
        elif connected[0]:
            new = MailConnectionError(
                f"{where} closed the connection before it accepted the message ({cause})"
            )
        elif isinstance(cause, Exception) and "timeout" in type(cause).__name__.lower():
            new = MailTimeoutError(f"could not connect to {where} in time")
        else:
            new = MailConnectionError(f"could not connect to {where}: {cause}")
    elif isinstance(exc, smtp.SMTPClientError):
        new = MailRejected(f"{where}: {_reply(exc)}", exc.code)
    else:
        return failure
    new.__cause__ = exc
    return Failure(new)


def _is_tls_failure(exc: BaseException | None) -> bool:
    try:
        from OpenSSL import SSL
    except ImportError:  # pragma: no cover - pyOpenSSL is a dependency
        return False
    return isinstance(exc, SSL.Error)


class _SenderFactory(smtp.ESMTPSenderFactory):
    """Twisted's factory, noting whether a connection was ever made (to tell
    "could not connect" from "the server went away")."""

    noisy = False  # no "Starting factory" log line per mail sent

    def __init__(self, *args: Any, connected: list[bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connected = connected

    def buildProtocol(self, addr: Any) -> Any:
        self._connected[0] = True
        return super().buildProtocol(addr)


def sendmail(mailconf: Mapping[str, Any], message: Message, reactor: Any = None) -> defer.Deferred:
    """Send ``message``; a Deferred that fires with :class:`SentMail` once the
    server has accepted it, or fails with a :class:`MailError`.

    ``mailconf`` keys:

    ``host`` (required)
        the SMTP server.
    ``port``
        465 with ``ssl``, 587 with ``tls``, else 25.
    ``username``, ``password``
        log in (AUTH PLAIN, LOGIN or CRAM-MD5); the server must offer one.
    ``tls``
        start TLS with STARTTLS, and fail (``MailTLSError``) if the server
        does not offer it. Without ``tls`` or ``ssl`` nothing is encrypted.
    ``ssl``
        SMTPS: TLS from the first byte (port 465).
    ``timeout``
        seconds to connect, and to wait for each answer of the server
        (60 by default).
    ``validate_cert``, ``ca_certs``
        the server's certificate is checked against the system's roots, or
        ``ca_certs`` (a PEM file); ``validate_cert=False`` skips the check.

    Cancelling the Deferred closes the connection.
    """
    unknown = set(mailconf) - _MAILCONF_KEYS
    if unknown:
        raise ValueError(f"unknown mailconf keys {sorted(unknown)}; known: {sorted(_MAILCONF_KEYS)}")
    if not isinstance(message, Message):
        raise TypeError(f"message must be a cyclone.mail.Message, not {type(message).__name__}")
    host = mailconf.get("host")
    if not host or not isinstance(host, str):
        raise ValueError("mailconf['host'] is required (a str)")
    use_tls = bool(mailconf.get("tls"))
    use_ssl = bool(mailconf.get("ssl"))
    if use_tls and use_ssl:
        raise ValueError("choose one of mailconf 'tls' (STARTTLS) and 'ssl' (SMTPS)")
    port = int(mailconf.get("port") or (465 if use_ssl else 587 if use_tls else 25))
    timeout = float(mailconf.get("timeout") or DEFAULT_TIMEOUT)
    username = mailconf.get("username")
    password = mailconf.get("password")
    if (username is None) != (password is None):
        raise ValueError("mailconf needs both 'username' and 'password', or neither")

    if reactor is None:
        from twisted.internet import reactor

    creator = None
    if use_tls or use_ssl:
        from cyclone.netutil import tls_client_creator

        creator = tls_client_creator(
            host, validate_cert=mailconf.get("validate_cert", True), ca_certs=mailconf.get("ca_certs")
        )

    data = message.render()
    sent: defer.Deferred = defer.Deferred()
    connected = [False]
    factory = _SenderFactory(
        username.encode("utf-8") if username is not None else None,
        password.encode("utf-8") if password is not None else None,
        _addr_spec(message.from_addr),
        message.recipients,
        data,
        sent,
        retries=0,  # never resend: a retry after DATA could deliver twice
        timeout=timeout,
        contextFactory=creator if use_tls else None,
        requireAuthentication=username is not None,
        requireTransportSecurity=use_tls,
        connected=connected,
    )
    if use_ssl:
        connector = reactor.connectSSL(host, port, factory, creator, timeout=timeout)
    else:
        connector = reactor.connectTCP(host, port, factory, timeout=timeout)

    def cancel(result: defer.Deferred) -> None:
        factory.sendFinished = True  # so the lost connection is not reported again
        connector.disconnect()

    result: defer.Deferred = defer.Deferred(cancel)
    where = f"the SMTP server {host}:{port}"

    def done(value: Any) -> None:
        if result.called:
            return
        if isinstance(value, Failure):
            result.errback(_translate(value, where, connected))
        else:
            accepted, responses = value
            result.callback(
                SentMail(accepted, [(_text(addr), code, _text(resp)) for addr, code, resp in responses])
            )

    sent.addBoth(done)
    return result

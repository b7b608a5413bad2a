"""``twistd cyclone``: serve a cyclone web application with twistd.

Examples::

    twistd -n cyclone                                  # the built-in welcome app on 127.0.0.1:8888
    twistd -n cyclone myapp.py                         # the one Application defined in myapp.py
    twistd -n cyclone --app myapp.py:Admin -p 8000     # pick one when the file defines several
    twistd -n cyclone -r mypackage.web.Application -c myapp.conf
    twistd -n cyclone -u /run/myapp.sock myapp.py      # a UNIX socket instead of TCP
    twistd -n cyclone --ssl-cert server.crt --ssl-key server.key myapp.py

An application reference (``-r``/``--app``, ``--ssl-app`` or the positional
argument) is one of:

* a dotted name of an ``Application`` subclass, an ``Application`` instance
  or a factory returning one (``mypackage.web.Application``; ``module:name``
  works too). The current directory is importable, as with ``python -m``.
* a module name, or a Python file (``myapp.py``): the module must define
  exactly one ``cyclone.web.Application`` subclass (imported ones don't
  count) or instance; ``myapp.py:Name`` picks one when there are several.

Classes and factories are called with ``--appopts`` as their only argument
when it is given, else with none.

TLS is on only when ``--ssl-cert`` or ``--ssl-app`` is given; the HTTPS port
then serves ``--ssl-app``, or the plain HTTP application when there is none.
With no application at all the built-in ``cyclone.welcome`` application is
served, on 127.0.0.1 unless ``--listen`` says otherwise.

The same service can be built from a ``.tac`` file::

    from twisted.application import service
    from twisted.plugins.cyclone_plugin import Options, serviceMaker

    options = Options()
    options.parseOptions(["-p", "8080", "myapp.py"])
    application = service.Application("myapp")
    serviceMaker.makeService(options).setServiceParent(application)
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.application import service
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

# cyclone itself is imported only once options are parsed: Twisted imports
# every plugin module just to list plugins, for any twistd command.

_WELCOME_LISTEN = "127.0.0.1"
_APP_LISTEN = "0.0.0.0"
_SSL_PORT = 8443
_SSL_CERT = "server.crt"
_SSL_KEY = "server.key"


class Options(usage.Options):
    """Command line of ``twistd cyclone``."""

    synopsis = "[options] [app.py[:Name]]"
    longdesc = (
        "Serve a cyclone web application: the positional argument or -r/--app names it "
        "(a dotted name, a module, or a .py file, with :Name to pick one of several). "
        "Without one, a welcome page with live examples is served on 127.0.0.1."
    )
    optParameters = [
        ["port", "p", 8888, "TCP port to listen on.", int],
        [
            "listen",
            "l",
            None,
            f"Interface to listen on [default: {_APP_LISTEN}, or {_WELCOME_LISTEN} for the welcome app].",
        ],
        ["unix", "u", None, "Listen on this UNIX socket path instead of a TCP port."],
        ["app", "r", None, "The application: package.module.Name, module:Name, a module, or file.py[:Name]."],
        ["appopts", "c", None, "A string passed as the only argument of the application's constructor."],
        ["ssl-port", None, None, f"TLS port [default: {_SSL_PORT}].", int],
        ["ssl-listen", None, None, "TLS interface [default: the --listen interface]."],
        [
            "ssl-cert",
            None,
            None,
            f"PEM certificate (chain) file; turns TLS on [default with --ssl-app: {_SSL_CERT}].",
        ],
        ["ssl-key", None, None, f"PEM private key file [default: {_SSL_KEY}]."],
        ["ssl-app", None, None, "Application served over TLS (turns TLS on) [default: the plain HTTP one]."],
        ["ssl-appopts", None, None, "Constructor argument of --ssl-app."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.application: Any = None  # the cyclone Application served over HTTP, or None
        self.ssl_application: Any = None  # the one served over TLS, or None
        self.tls_context: Any = None  # twisted.internet.ssl.CertificateOptions when TLS is on
        self.labels: dict[str, str] = {}

    def parseArgs(self, filename: str | None = None) -> None:
        self["filename"] = filename

    def postOptions(self) -> None:
        """Check the options, then load and build the applications, so that any
        mistake is reported as a usage error before anything listens."""
        for name in ("port", "ssl-port"):
            if self[name] is not None and not 0 <= self[name] <= 65535:
                raise usage.UsageError(f"--{name} must be between 0 and 65535, not {self[name]}")
        if self["app"] and self["filename"]:
            raise usage.UsageError(
                f"give the application once: either -r/--app {self['app']} or the file {self['filename']}"
            )
        reference = self["app"] or self["filename"]
        tls = bool(self["ssl-cert"] or self["ssl-app"])
        if not tls:
            for name in ("ssl-key", "ssl-port", "ssl-listen", "ssl-appopts"):
                if self[name] is not None:
                    raise usage.UsageError(
                        f"--{name} needs TLS: give --ssl-cert (and --ssl-key) or --ssl-app"
                    )
        if self["appopts"] is not None and not reference:
            raise usage.UsageError("-c/--appopts needs an application (-r/--app or a file)")
        if self["ssl-appopts"] is not None and not self["ssl-app"]:
            raise usage.UsageError("--ssl-appopts needs --ssl-app")

        welcome = not reference and not self["ssl-app"]
        if self["listen"] is None:
            self["listen"] = _WELCOME_LISTEN if welcome else _APP_LISTEN
        if welcome:
            from cyclone.welcome import Application as Welcome

            self.application = Welcome()
            self.labels["http"] = "the welcome application (cyclone.welcome)"
        elif reference:
            self.application = build_application(load_reference(reference), self["appopts"], reference)
            self.labels["http"] = reference

        if tls:
            if self["ssl-port"] is None:
                self["ssl-port"] = _SSL_PORT
            if self["ssl-listen"] is None:
                self["ssl-listen"] = self["listen"]
            self.tls_context = load_tls_context(self["ssl-cert"] or _SSL_CERT, self["ssl-key"] or _SSL_KEY)
            if self["ssl-app"]:
                self.ssl_application = build_application(
                    load_reference(self["ssl-app"]), self["ssl-appopts"], self["ssl-app"]
                )
                self.labels["https"] = self["ssl-app"]
            else:
                self.ssl_application = self.application
                self.labels["https"] = self.labels["http"]
            if not reference and self["ssl-app"]:
                # only an HTTPS application was asked for: serve nothing in clear text
                self.application = None


# -- finding applications ----------------------------------------------------------


def _is_application_class(obj: Any) -> bool:
    from cyclone.web import Application

    return isinstance(obj, type) and issubclass(obj, Application) and obj is not Application


def find_applications(module: ModuleType) -> dict[str, Any]:
    """The module-level ``Application`` subclasses defined in ``module`` itself
    and the ``Application`` instances it holds, by name."""
    from cyclone.web import Application

    found = {}
    for name, obj in vars(module).items():
        if isinstance(obj, Application):
            found[name] = obj
        elif _is_application_class(obj) and obj.__module__ == module.__name__:
            found[name] = obj
    return found


def pick_application(module: ModuleType, where: str, hint: str) -> Any:
    """The only application of ``module``, or a usage error naming the candidates.

    ``hint`` shows how to name one, with ``NAME`` as the placeholder.
    """
    found = find_applications(module)
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise usage.UsageError(
            f"{where} defines no cyclone.web.Application subclass or instance; "
            f"name the application to serve with {hint.replace('NAME', 'Name')}"
        )
    names = ", ".join(sorted(found))
    example = hint.replace("NAME", sorted(found)[0])
    raise usage.UsageError(f"{where} defines several applications ({names}); pick one, e.g. {example}")


def _failure(what: str, exc: BaseException) -> usage.UsageError:
    """A usage error carrying the traceback of an exception raised by user code."""
    details = "".join(traceback.format_exception(exc)).rstrip()
    return usage.UsageError(f"{what} failed:\n{details}")


def _split_name(reference: str) -> tuple[str, str | None]:
    """``"target:attr.path"`` -> ``("target", "attr.path")``; ``(reference, None)``
    when there is no valid attribute part (for example ``C:\\app.py``)."""
    head, sep, tail = reference.rpartition(":")
    if sep and head and tail and all(part.isidentifier() for part in tail.split(".")):
        return head, tail
    return reference, None


def _lookup(obj: Any, path: str, where: str) -> Any:
    for attribute in path.split("."):
        try:
            obj = getattr(obj, attribute)
        except AttributeError:
            raise usage.UsageError(f"{where} has no attribute {attribute!r}") from None
    return obj


def load_file(path: str) -> ModuleType:
    """Import the Python file ``path`` as a module.

    Its directory goes first on ``sys.path`` so that it can import the modules
    next to it, as it could when run as a script.
    """
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise usage.UsageError(f"{path}: no such file")
    directory = os.path.dirname(full)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    stem = Path(full).name.split(".")[0]
    name = stem
    if not stem.isidentifier() or stem in sys.modules:
        # never replace a module that is already loaded (cyclone.py, twisted.py...)
        name = "_cyclone_app_" + re.sub(r"\W", "_", stem)
    # an explicit loader, so that files not named *.py load too
    loader = importlib.machinery.SourceFileLoader(name, full)
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickle and friends look classes up there
    try:
        loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise _failure(f"loading {path}", exc) from None
    return module


def import_dotted(name: str) -> tuple[ModuleType, str]:
    """Import the longest importable module prefix of ``name``; returns the
    module and the rest of the name (attributes, possibly empty)."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise usage.UsageError(f"{name!r} is neither a file nor a dotted Python name")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        # as with "python -m": twistd's own script does not put it there
        sys.path.insert(0, cwd)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        module_name = ".".join(parts[:end])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # keep looking only if it is this very module that is missing, not
            # something it imports
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue
            raise _failure(f"importing {module_name}", exc) from None
        except Exception as exc:
            raise _failure(f"importing {module_name}", exc) from None
        return module, ".".join(parts[end:])
    raise usage.UsageError(
        f"cannot import {name}: no module named {parts[0]!r} "
        f"(the current directory and PYTHONPATH are searched)"
    )


def load_reference(reference: str) -> Any:
    """The object an application reference names (see the module docstring)."""
    target, attribute = _split_name(reference)
    is_file = target.endswith(".py") or os.sep in target or os.path.isfile(target)
    if is_file:
        module = load_file(target)
        if attribute:
            return _lookup(module, attribute, target)
        return pick_application(module, target, f"--app {target}:NAME")
    if attribute:
        module, rest = import_dotted(target)
        if rest:
            raise usage.UsageError(f"cannot import {target}: no module named {target!r}")
        return _lookup(module, attribute, target)
    module, rest = import_dotted(target)
    if not rest:
        return pick_application(module, f"module {target}", f"-r {target}.NAME")
    return _lookup(module, rest, module.__name__)


def build_application(obj: Any, appopts: str | None, reference: str) -> Any:
    """An ``Application`` from a class, factory or instance."""
    from cyclone.web import Application

    if isinstance(obj, Application):
        if appopts is not None:
            raise usage.UsageError(
                f"{reference} is an Application instance already, it cannot take -c/--appopts"
            )
        return obj
    if not callable(obj):
        raise usage.UsageError(
            f"{reference} is a {type(obj).__name__}, not a cyclone.web.Application "
            "(class, instance or factory)"
        )
    try:
        app = obj() if appopts is None else obj(appopts)
    except Exception as exc:
        raise _failure(f"creating {reference}", exc) from None
    if not isinstance(app, Application):
        raise usage.UsageError(f"{reference} returned a {type(app).__name__}, not a cyclone.web.Application")
    return app


# -- TLS ---------------------------------------------------------------------------------


def load_tls_context(cert_path: str, key_path: str) -> Any:
    """``CertificateOptions`` for a PEM certificate (the first one in the file;
    the others are sent as its chain) and its PEM private key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import crypto
    from twisted.internet import ssl

    data = {}
    for what, path, option in (
        ("certificate", cert_path, "--ssl-cert"),
        ("private key", key_path, "--ssl-key"),
    ):
        try:
            with open(path, "rb") as f:
                data[what] = f.read()
        except OSError as exc:
            raise usage.UsageError(
                f"TLS {what} {path}: {exc.strerror or exc} (set it with {option})"
            ) from None
    try:
        certificates = x509.load_pem_x509_certificates(data["certificate"])
    except ValueError as exc:
        raise usage.UsageError(f"{cert_path} holds no PEM certificate: {exc}") from None
    try:
        key = serialization.load_pem_private_key(data["private key"], password=None)
    except TypeError:
        raise usage.UsageError(f"{key_path}: encrypted private keys are not supported") from None
    except Exception as exc:  # ValueError, or an unsupported key type
        raise usage.UsageError(f"{key_path} holds no PEM private key: {exc}") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if key.public_key().public_bytes(encoding, public) != certificates[0].public_key().public_bytes(
        encoding, public
    ):
        raise usage.UsageError(f"the private key {key_path} does not belong to the certificate {cert_path}")
    return ssl.CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(key),
        certificate=crypto.X509.from_cryptography(certificates[0]),
        extraCertChain=[crypto.X509.from_cryptography(c) for c in certificates[1:]],
    )


# -- the service -------------------------------------------------------------------------


class _Announcement(service.Service):
    """Logs where the applications are served, once the ports are open."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def startService(self) -> None:
        from twisted.logger import Logger

        super().startService()
        log = Logger(namespace="cyclone")
        for line in self.lines:
            log.info("{line}", line=line)


def _url(scheme: str, interface: str, port: int) -> str:
    host = f"[{interface}]" if ":" in interface else interface
    return f"{scheme}://{host}:{port}/"


@implementer(service.IServiceMaker, IPlugin)
class CycloneServiceMaker:
    """The ``cyclone`` twistd plugin."""

    tapname = "cyclone"
    description = "A high performance web server (cyclone)"
    options = Options

    def makeService(self, options: Options) -> service.MultiService:
        """One listening service per port, in a ``MultiService``."""
        from twisted.application import internet

        import cyclone

        top = service.MultiService()
        lines = []
        if options.application is not None:
            if options["unix"]:
                internet.UNIXServer(options["unix"], options.application).setServiceParent(top)
                where = f"unix:{options['unix']}"
            else:
                internet.TCPServer(
                    options["port"], options.application, interface=options["listen"]
                ).setServiceParent(top)
                where = _url("http", options["listen"], options["port"])
            lines.append(f"cyclone {cyclone.__version__} serving {options.labels['http']} on {where}")
        if options.ssl_application is not None:
            internet.SSLServer(
                options["ssl-port"],
                options.ssl_application,
                options.tls_context,
                interface=options["ssl-listen"],
            ).setServiceParent(top)
            where = _url("https", options["ssl-listen"], options["ssl-port"])
            lines.append(f"cyclone {cyclone.__version__} serving {options.labels['https']} on {where}")
        # last, so that it runs once the servers above are listening
        _Announcement(lines).setServiceParent(top)
        return top


serviceMaker = CycloneServiceMaker()

"""A localized cyclone application: gettext catalogs, plurals and contexts.

The user's language comes from ``?lang=pt_BR`` (remembered in a ``lang``
cookie), then the cookie, then the browser's ``Accept-Language``. Compile
the catalogs once, then run (see README.rst)::

    for lang in pt_BR es_ES; do
        python -m cyclone.i18n compile demos/locale/locale/$lang/LC_MESSAGES/demo.po
    done
    python demos/locale/locale_demo.py    # http://127.0.0.1:8888/?lang=pt_BR
"""

from __future__ import annotations

import argparse
import os
import sys

from twisted.internet import reactor
from twisted.python import log

import cyclone.locale
import cyclone.web

HERE = os.path.dirname(os.path.abspath(__file__))
LOCALE_DIR = os.path.join(HERE, "locale")
TEMPLATE_DIR = os.path.join(HERE, "templates")
DOMAIN = "demo"
LANGUAGES = ("en_US", "pt_BR", "es_ES")


class BaseHandler(cyclone.web.RequestHandler):
    def get_user_locale(self) -> cyclone.locale.Locale | None:
        code = self.get_argument("lang", None) or self.get_cookie("lang")
        if code:
            return cyclone.locale.get(code)
        # None lets the framework fall back to the Accept-Language header.
        return None


class IndexHandler(BaseHandler):
    def get(self) -> None:
        if self.get_argument("lang", None):
            # Remember the locale it resolved to ("pt-br" -> "pt_BR"), never
            # the raw argument.
            self.set_cookie("lang", self.locale.code)
        try:
            files = max(0, int(self.get_argument("files", "3")))
        except ValueError:
            files = 0
        languages = [(code, cyclone.locale.LOCALE_NAMES[code]["name"]) for code in LANGUAGES]
        self.render("index.html", files=files, languages=languages)

    def post(self) -> None:
        _ = self.locale.translate
        name = self.get_argument("name", "").strip()
        if not name:
            self.set_status(400)
            self.write(_("Please tell us your name."))
            return
        # Translate the pattern, then fill it in: the catalog only ever
        # contains the pattern.
        self.write(self.locale.translate("Hello, %(name)s!") % {"name": name})


def make_app(locale_dir: str = LOCALE_DIR) -> cyclone.web.Application:
    """Load the catalogs under ``locale_dir`` and build the application."""
    cyclone.locale.load_gettext_translations(locale_dir, DOMAIN)
    return cyclone.web.Application(
        [(r"/", IndexHandler)],
        template_path=TEMPLATE_DIR,
    )


def missing_catalogs(locale_dir: str = LOCALE_DIR) -> list[str]:
    """The .po files under ``locale_dir`` that have no compiled .mo yet."""
    missing = []
    for lang in sorted(os.listdir(locale_dir)):
        po = os.path.join(locale_dir, lang, "LC_MESSAGES", DOMAIN + ".po")
        if os.path.isfile(po) and not os.path.isfile(po[:-3] + ".mo"):
            missing.append(po)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args(argv)

    missing = missing_catalogs()
    if missing:
        print("These catalogs are not compiled yet:", file=sys.stderr)
        for po in missing:
            print(f"    python -m cyclone.i18n compile {po}", file=sys.stderr)
        return 1

    log.startLogging(sys.stdout)
    reactor.listenTCP(args.port, make_app(), interface=args.interface)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Translation and locale-aware formatting, with Tornado 6's ``tornado.locale`` API.

Two translation backends are supported:

* gettext catalogs, ``<directory>/<lang>/LC_MESSAGES/<domain>.mo``, loaded with
  :func:`load_gettext_translations` (produce them with ``python -m cyclone.i18n``,
  no GNU gettext tools needed);
* CSV files named after the locale (``es_LA.csv``), loaded with
  :func:`load_translations`.

Typical use::

    cyclone.locale.load_gettext_translations("locale", "myapp")
    user_locale = cyclone.locale.get("pt_BR", "en_US")
    user_locale.translate("Sign out")
    user_locale.translate("%(n)d file", "%(n)d files", n) % {"n": n}
    user_locale.pgettext("month", "May")

Every catalog is parsed completely when it is loaded: a corrupt file raises
:class:`TranslationError` (naming the file) from the load function, so a broken
deployment fails at start-up instead of on some later request. Loading is
all-or-nothing: when it raises, the previously loaded translations stay active.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import gettext
import io
import logging
import os
import re
import struct
from typing import Any, ClassVar, Iterable, Mapping

__all__ = [
    "CONTEXT_SEPARATOR",
    "CSVLocale",
    "GettextLocale",
    "LOCALE_NAMES",
    "Locale",
    "TranslationError",
    "get",
    "get_supported_locales",
    "load_gettext_translations",
    "load_translations",
    "set_default_locale",
]

log = logging.getLogger(__name__)

# gettext has no native notion of context in the catalog keys: msgctxt entries
# are stored as "context\x04msgid" (the GNU convention, also used by msgfmt).
CONTEXT_SEPARATOR = "\x04"

_default_locale = "en_US"
_translations: dict[str, Any] = {}
_supported_locales: frozenset[str] = frozenset([_default_locale])
_use_gettext = False

_CSV_LOCALE_RE = re.compile(r"[a-z]+(_[A-Z]+)?$")
_PLURAL_KINDS = ("plural", "singular", "unknown")


class TranslationError(ValueError):
    """A translation file could not be loaded; ``path`` names the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def get(*locale_codes: str | None) -> "Locale":
    """Return the closest supported :class:`Locale` for the given codes.

    Codes are tried in order, each first in full (``pt_BR``) and then by its
    language prefix (``pt``); ``-`` may replace ``_`` and case is ignored
    (``pt-br``). Empty or ``None`` codes are skipped, and the default locale
    is returned when none match. Typically the codes come from a cookie, a
    user setting or the browser's ``Accept-Language`` header.
    """
    return Locale.get_closest(*locale_codes)


def set_default_locale(code: str) -> None:
    """Make ``code`` the locale used when no requested locale is supported.

    The default locale is always supported, even without a translation file:
    its locale simply returns every message untranslated.
    """
    global _default_locale, _supported_locales
    _default_locale = code
    _supported_locales = frozenset(list(_translations) + [_default_locale])
    Locale._cache.clear()


def get_supported_locales() -> frozenset[str]:
    """Return the codes of all loaded locales, plus the default locale."""
    return _supported_locales


def _install(translations: dict[str, Any], use_gettext: bool) -> None:
    global _translations, _supported_locales, _use_gettext
    _translations = translations
    _use_gettext = use_gettext
    _supported_locales = frozenset(list(_translations) + [_default_locale])
    # Locale objects hold the catalog they were built from; without this a
    # reload would keep serving the old strings (the original never cleared it).
    Locale._cache.clear()


def load_translations(directory: str, encoding: str | None = None) -> None:
    """Load CSV translations from ``directory``, replacing any loaded before.

    Each file is named after its locale (``es_LA.csv``, ``fr.csv``) and holds
    rows ``"message","translation"`` with an optional third column
    ``"plural"``, ``"singular"`` or ``"unknown"`` that says which form of a
    plural message the row translates (empty means ``unknown``)::

        "I love you","Te amo"
        "%(name)s liked this","A %(name)s les gustó esto","plural"
        "%(name)s liked this","A %(name)s le gustó esto","singular"

    With ``encoding=None`` a UTF-16 byte order mark selects UTF-16, otherwise
    the file is read as UTF-8 (a UTF-8 BOM is skipped). Messages may contain
    Python ``%(name)s`` placeholders, filled in by the caller.

    Files whose name is not a locale code are skipped with a logged error.
    Raises :class:`TranslationError` if a file cannot be decoded or a row has
    the wrong number of columns or an unknown plural indicator.
    """
    loaded: dict[str, dict[str, dict[str, str]]] = {}
    for filename in sorted(os.listdir(directory)):
        if not filename.endswith(".csv"):
            continue
        code = filename[: -len(".csv")]
        path = os.path.join(directory, filename)
        if not _CSV_LOCALE_RE.match(code):
            log.error("Unrecognized locale %r (path: %s)", code, path)
            continue
        loaded[code] = _read_csv(path, encoding)
    _install(loaded, use_gettext=False)
    log.debug("Supported locales: %s", sorted(_supported_locales))


def _read_csv(path: str, encoding: str | None) -> dict[str, dict[str, str]]:
    with open(path, "rb") as f:
        data = f.read()
    if encoding is None:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"  # consumes the BOM and picks the byte order
        else:
            encoding = "utf-8-sig"  # also accepts files without a BOM
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as e:
        raise TranslationError(path, f"cannot decode as {encoding}: {e}") from e

    table: dict[str, dict[str, str]] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if not 2 <= len(row) <= 3:
                raise TranslationError(
                    path,
                    f"line {reader.line_num}: expected 2 or 3 columns, got {len(row)}",
                )
            cells = [c.strip() for c in row]
            kind = (cells[2] if len(cells) == 3 else "") or "unknown"
            if kind not in _PLURAL_KINDS:
                raise TranslationError(
                    path,
                    f"line {reader.line_num}: unrecognized plural indicator {kind!r}"
                    " (expected plural, singular or unknown)",
                )
            table.setdefault(kind, {})[cells[0]] = cells[1]
    except csv.Error as e:
        raise TranslationError(path, f"line {reader.line_num}: {e}") from e
    return table


def load_gettext_translations(directory: str, domain: str = "cyclone") -> None:
    """Load gettext catalogs ``<directory>/<lang>/LC_MESSAGES/<domain>.mo``.

    Every subdirectory of ``directory`` is a locale code (``pt_BR``, ``es``).
    Replaces any translations loaded before. ``domain`` defaults to
    ``"cyclone"`` as in the original cyclone; Tornado requires it.

    To produce the catalogs without GNU gettext::

        python -m cyclone.i18n extract -o myapp.pot myapp/ templates/
        # copy myapp.pot to locale/pt_BR/LC_MESSAGES/myapp.po and translate it
        python -m cyclone.i18n compile locale/pt_BR/LC_MESSAGES/myapp.po

    Subdirectories without a ``<domain>.mo`` are skipped with a warning.
    Raises :class:`TranslationError` naming the file if a ``.mo`` file is not
    a valid catalog (bad magic number, truncated, undecodable, bad
    ``Plural-Forms``).
    """
    loaded: dict[str, gettext.GNUTranslations] = {}
    for lang in sorted(os.listdir(directory)):
        if lang.startswith(".") or not os.path.isdir(os.path.join(directory, lang)):
            continue
        path = os.path.join(directory, lang, "LC_MESSAGES", domain + ".mo")
        if not os.path.isfile(path):
            log.warning("Cannot load translation for %r: %s does not exist", lang, path)
            continue
        loaded[lang] = _read_mo(path)
    _install(loaded, use_gettext=True)
    log.debug("Supported locales: %s", sorted(_supported_locales))


def _read_mo(path: str) -> gettext.GNUTranslations:
    # gettext.translation() is avoided on purpose: it caches catalogs by path
    # for the life of the process, so a recompiled .mo would never be re-read.
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 28:  # the fixed header of a .mo file
        raise TranslationError(path, f"not a gettext .mo file: only {len(data)} bytes")
    try:
        return gettext.GNUTranslations(io.BytesIO(data))
    except struct.error as e:
        raise TranslationError(path, f"not a valid gettext .mo file: truncated ({e})") from e
    except Exception as e:
        # The stdlib reports the other defects as OSError (bad magic or
        # version, offsets past the end), UnicodeDecodeError or ValueError
        # (Plural-Forms).
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise TranslationError(path, f"not a valid gettext .mo file: {reason}") from e


class Locale:
    """A locale: translates messages and formats dates, lists and numbers.

    Obtain instances with :func:`get`, :meth:`get_closest` or :meth:`get`,
    never by calling the constructor: they return a :class:`CSVLocale` or a
    :class:`GettextLocale` depending on which loader ran, cached per code.

    Attributes: ``code`` (``"pt_BR"``), ``name`` (native name from
    :data:`LOCALE_NAMES`, ``"Unknown"`` otherwise), ``rtl`` (right-to-left
    script), ``translations`` (the loaded catalog).
    """

    _cache: ClassVar[dict[str, "Locale"]] = {}

    translations: Any

    @classmethod
    def get_closest(cls, *locale_codes: str | None) -> "Locale":
        """Return the best supported locale for the given codes (see :func:`get`)."""
        for code in locale_codes:
            if not code:
                continue
            code = code.replace("-", "_")
            parts = code.split("_")
            if len(parts) > 2:
                continue
            if len(parts) == 2:
                code = parts[0].lower() + "_" + parts[1].upper()
            if code in _supported_locales:
                return cls.get(code)
            if parts[0].lower() in _supported_locales:
                return cls.get(parts[0].lower())
        return cls.get(_default_locale)

    @classmethod
    def get(cls, code: str) -> "Locale":
        """Return the locale for a supported ``code``, exactly as spelled.

        Raises ``ValueError`` for a code not in :func:`get_supported_locales`.
        """
        locale = cls._cache.get(code)
        if locale is None:
            if code not in _supported_locales:
                raise ValueError(f"unsupported locale {code!r}")
            translations = _translations.get(code)
            if translations is None:
                locale = CSVLocale(code, {})
            elif _use_gettext:
                locale = GettextLocale(code, translations)
            else:
                locale = CSVLocale(code, translations)
            cls._cache[code] = locale
        return locale

    def __init__(self, code: str) -> None:
        self.code = code
        self.name: str = LOCALE_NAMES.get(code, {}).get("name", "Unknown")
        self.rtl = code.startswith(("fa", "ar", "he"))
        _ = self.translate
        self._months = [
            _("January"), _("February"), _("March"), _("April"), _("May"),
            _("June"), _("July"), _("August"), _("September"), _("October"),
            _("November"), _("December"),
        ]  # fmt: skip
        self._weekdays = [
            _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"),
            _("Friday"), _("Saturday"), _("Sunday"),
        ]  # fmt: skip

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.code}>"

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        """Return the translation of ``message``.

        With ``plural_message`` and ``count``, return the singular or plural
        translation for that count (``count`` is required then).
        """
        raise NotImplementedError()

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        """Like :meth:`translate`, for a message disambiguated by ``context``.

        ``pgettext("month", "May")`` and ``pgettext("verb", "May")`` can have
        different translations. In .po files the context is ``msgctxt``.
        """
        raise NotImplementedError()

    def format_date(
        self,
        date: int | float | datetime.datetime,
        gmt_offset: int = 0,
        relative: bool = True,
        shorter: bool = False,
        full_format: bool = False,
        *,
        now: datetime.datetime | None = None,
    ) -> str:
        """Format ``date`` (a datetime or a unix timestamp) for display.

        Naive datetimes are taken as UTC. ``gmt_offset`` is the viewer's
        offset in minutes, positive west of Greenwich (JavaScript's
        ``getTimezoneOffset()``). With ``relative`` recent dates read
        "2 minutes ago", "3 hours ago" or "yesterday at 4:05 pm"; ``shorter``
        drops the time of day from older dates; ``full_format`` always gives
        "April 28, 2013 at 6:35 pm". Locales other than ``en``, ``en_US`` and
        ``zh_CN`` use a 24-hour clock. ``now`` (default: the current time)
        is the reference point for relative forms.
        """
        date = _as_utc(date)
        now = datetime.datetime.now(datetime.timezone.utc) if now is None else _as_utc(now)
        if date > now:
            if relative and (date - now).total_seconds() < 60:
                # Clocks of different machines drift: a timestamp from the
                # immediate future reads as "now" rather than a full date.
                date = now
            else:
                full_format = True
        local_date = date - datetime.timedelta(minutes=gmt_offset)
        local_now = now - datetime.timedelta(minutes=gmt_offset)
        local_yesterday = local_now - datetime.timedelta(hours=24)
        difference = now - date
        seconds = difference.seconds
        days = difference.days

        _ = self.translate
        fmt = None
        if not full_format:
            if relative and days == 0:
                if seconds < 50:
                    return _("1 second ago", "%(seconds)d seconds ago", seconds) % {
                        "seconds": seconds
                    }
                if seconds < 50 * 60:
                    minutes = round(seconds / 60.0)
                    return _("1 minute ago", "%(minutes)d minutes ago", minutes) % {
                        "minutes": minutes
                    }
                hours = round(seconds / (60.0 * 60))
                return _("1 hour ago", "%(hours)d hours ago", hours) % {"hours": hours}

            if days == 0:
                fmt = _("%(time)s")
            elif days == 1 and local_date.day == local_yesterday.day and relative:
                fmt = _("yesterday") if shorter else _("yesterday at %(time)s")
            elif days < 5:
                fmt = _("%(weekday)s") if shorter else _("%(weekday)s at %(time)s")
            elif days < 334:
                # Under 11 months: omitting the year cannot be mistaken for
                # the same month of last year.
                fmt = (
                    _("%(month_name)s %(day)s")
                    if shorter
                    else _("%(month_name)s %(day)s at %(time)s")
                )
        if fmt is None:
            fmt = (
                _("%(month_name)s %(day)s, %(year)s")
                if shorter
                else _("%(month_name)s %(day)s, %(year)s at %(time)s")
            )

        if self.code in ("en", "en_US"):
            str_time = "%d:%02d %s" % (
                local_date.hour % 12 or 12,
                local_date.minute,
                ("am", "pm")[local_date.hour >= 12],
            )
        elif self.code == "zh_CN":
            str_time = "%s%d:%02d" % (
                ("\u4e0a\u5348", "\u4e0b\u5348")[local_date.hour >= 12],
                local_date.hour % 12 or 12,
                local_date.minute,
            )
        else:
            str_time = "%d:%02d" % (local_date.hour, local_date.minute)

        return fmt % {
            "month_name": self._months[local_date.month - 1],
            "weekday": self._weekdays[local_date.weekday()],
            "day": str(local_date.day),
            "year": str(local_date.year),
            "time": str_time,
        }

    def format_day(
        self,
        date: int | float | datetime.datetime,
        gmt_offset: int = 0,
        dow: bool = True,
    ) -> str:
        """Format a day as "Monday, January 22" (``dow=False``: "January 22").

        ``gmt_offset`` is in minutes, positive west of Greenwich, as in
        :meth:`format_date`. ``date`` may be a datetime or a unix timestamp.
        """
        local_date = _as_utc(date) - datetime.timedelta(minutes=gmt_offset)
        _ = self.translate
        values = {
            "month_name": self._months[local_date.month - 1],
            "weekday": self._weekdays[local_date.weekday()],
            "day": str(local_date.day),
        }
        if dow:
            return _("%(weekday)s, %(month_name)s %(day)s") % values
        return _("%(month_name)s %(day)s") % values

    def list(self, parts: Iterable[str]) -> str:
        """Join items as a human list: ``["A", "B", "C"]`` gives "A, B and C"."""
        items = [str(p) for p in parts]
        if not items:
            return ""
        if len(items) == 1:
            return items[0]
        comma = " \u0648 " if self.code.startswith("fa") else ", "
        return self.translate("%(commas)s and %(last)s") % {
            "commas": comma.join(items[:-1]),
            "last": items[-1],
        }

    def friendly_number(self, value: int) -> str:
        """Return ``value`` with thousands separators ("1,000,000") for English.

        Other locales get the plain number, since their separators differ.
        """
        if self.code not in ("en", "en_US"):
            return str(value)
        return f"{int(value):,}"


def _as_utc(value: int | float | datetime.datetime) -> datetime.datetime:
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


class CSVLocale(Locale):
    """A locale whose translations come from a CSV file (:func:`load_translations`).

    ``translations`` maps ``"plural"``, ``"singular"`` and ``"unknown"`` to
    ``{message: translation}`` dicts.
    """

    def __init__(self, code: str, translations: Mapping[str, Mapping[str, str]]) -> None:
        self.translations = translations
        super().__init__(code)

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        if plural_message is not None:
            if count is None:
                raise ValueError("count is required when plural_message is given")
            if count != 1:
                message = plural_message
                table = self.translations.get("plural", {})
            else:
                table = self.translations.get("singular", {})
        else:
            table = self.translations.get("unknown", {})
        return table.get(message, message)

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        """CSV files have no contexts: this is :meth:`translate` ignoring ``context``."""
        return self.translate(message, plural_message, count)


class GettextLocale(Locale):
    """A locale backed by a gettext catalog (:func:`load_gettext_translations`).

    ``translations`` is the ``gettext.GNUTranslations`` object; plural rules
    come from the catalog's ``Plural-Forms`` header.
    """

    def __init__(self, code: str, translations: gettext.NullTranslations) -> None:
        # Locale.__init__ translates month and day names, so the catalog must
        # be in place before it runs.
        self.translations = translations
        self.gettext = translations.gettext
        self.ngettext = translations.ngettext
        super().__init__(code)

    def translate(
        self, message: str, plural_message: str | None = None, count: int | None = None
    ) -> str:
        if plural_message is not None:
            if count is None:
                raise ValueError("count is required when plural_message is given")
            return self.ngettext(message, plural_message, count)
        return self.gettext(message)

    def pgettext(
        self,
        context: str,
        message: str,
        plural_message: str | None = None,
        count: int | None = None,
    ) -> str:
        """Translate the catalog entry with ``msgctxt`` ``context``.

        A message with no entry for that context is returned untranslated
        (for plurals: ``message`` or ``plural_message`` by English rules).
        """
        if plural_message is not None:
            if count is None:
                raise ValueError("count is required when plural_message is given")
            return self.translations.npgettext(context, message, plural_message, count)
        return self.translations.pgettext(context, message)


def _locale_names() -> dict[str, dict[str, str]]:
    # (code, English name, native name); the codes are the ones Tornado knows.
    table = [
        ("af_ZA", "Afrikaans", "Afrikaans"),
        ("am_ET", "Amharic", "አማርኛ"),
        ("ar_AR", "Arabic", "العربية"),
        ("bg_BG", "Bulgarian", "Български"),
        ("bn_IN", "Bengali", "বাংলা"),
        ("bs_BA", "Bosnian", "Bosanski"),
        ("ca_ES", "Catalan", "Català"),
        ("cs_CZ", "Czech", "Čeština"),
        ("cy_GB", "Welsh", "Cymraeg"),
        ("da_DK", "Danish", "Dansk"),
        ("de_DE", "German", "Deutsch"),
        ("el_GR", "Greek", "Ελληνικά"),
        ("en_GB", "English (UK)", "English (UK)"),
        ("en_US", "English (US)", "English (US)"),
        ("es_ES", "Spanish (Spain)", "Español (España)"),
        ("es_LA", "Spanish", "Español"),
        ("et_EE", "Estonian", "Eesti"),
        ("eu_ES", "Basque", "Euskara"),
        ("fa_IR", "Persian", "فارسی"),
        ("fi_FI", "Finnish", "Suomi"),
        ("fr_CA", "French (Canada)", "Français (Canada)"),
        ("fr_FR", "French", "Français"),
        ("ga_IE", "Irish", "Gaeilge"),
        ("gl_ES", "Galician", "Galego"),
        ("he_IL", "Hebrew", "עברית"),
        ("hi_IN", "Hindi", "हिन्दी"),
        ("hr_HR", "Croatian", "Hrvatski"),
        ("hu_HU", "Hungarian", "Magyar"),
        ("id_ID", "Indonesian", "Bahasa Indonesia"),
        ("is_IS", "Icelandic", "Íslenska"),
        ("it_IT", "Italian", "Italiano"),
        ("ja_JP", "Japanese", "日本語"),
        ("ko_KR", "Korean", "한국어"),
        ("lt_LT", "Lithuanian", "Lietuvių"),
        ("lv_LV", "Latvian", "Latviešu"),
        ("mk_MK", "Macedonian", "Македонски"),
        ("ml_IN", "Malayalam", "മലയാളം"),
        ("ms_MY", "Malay", "Bahasa Melayu"),
        ("nb_NO", "Norwegian (bokmal)", "Norsk (bokmål)"),
        ("nl_NL", "Dutch", "Nederlands"),
        ("nn_NO", "Norwegian (nynorsk)", "Norsk (nynorsk)"),
        ("pa_IN", "Punjabi", "ਪੰਜਾਬੀ"),
        ("pl_PL", "Polish", "Polski"),
        ("pt_BR", "Portuguese (Brazil)", "Português (Brasil)"),
        ("pt_PT", "Portuguese (Portugal)", "Português (Portugal)"),
        ("ro_RO", "Romanian", "Română"),
        ("ru_RU", "Russian", "Русский"),
        ("sk_SK", "Slovak", "Slovenčina"),
        ("sl_SI", "Slovenian", "Slovenščina"),
        ("sq_AL", "Albanian", "Shqip"),
        ("sr_RS", "Serbian", "Српски"),
        ("sv_SE", "Swedish", "Svenska"),
        ("sw_KE", "Swahili", "Kiswahili"),
        ("ta_IN", "Tamil", "தமிழ்"),
        ("te_IN", "Telugu", "తెలుగు"),
        ("th_TH", "Thai", "ภาษาไทย"),
        ("tl_PH", "Filipino", "Filipino"),
        ("tr_TR", "Turkish", "Türkçe"),
        # Tornado spells this "Ukraini " (sic); the code and native name match.
        ("uk_UA", "Ukrainian", "Українська"),
        ("vi_VN", "Vietnamese", "Tiếng Việt"),
        ("zh_CN", "Chinese (Simplified)", "中文(简体)"),
        ("zh_TW", "Chinese (Traditional)", "中文(繁體)"),
    ]
    return {code: {"name_en": en, "name": native} for code, en, native in table}


#: ``{code: {"name_en": English name, "name": native name}}`` for 62 locales.
LOCALE_NAMES: dict[str, dict[str, str]] = _locale_names()

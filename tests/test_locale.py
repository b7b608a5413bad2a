"""cyclone.locale: loading CSV and gettext catalogs, locale choice, formatting."""

from __future__ import annotations

import codecs
import datetime
import logging
import struct
from pathlib import Path

import pytest
import pytest_twisted

import cyclone.locale
from cyclone.i18n import compile_po
from cyclone.locale import CSVLocale, GettextLocale, Locale, TranslationError

UTC = datetime.timezone.utc
# A Friday, so weekday names below are easy to check against a calendar.
NOW = datetime.datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def isolated_locale_state():
    """Each test starts with no translations and en_US as default, and leaves it so."""
    names = ["_translations", "_supported_locales", "_use_gettext", "_default_locale"]
    saved = {name: getattr(cyclone.locale, name) for name in names}
    cyclone.locale._translations = {}
    cyclone.locale._supported_locales = frozenset(["en_US"])
    cyclone.locale._use_gettext = False
    cyclone.locale._default_locale = "en_US"
    Locale._cache.clear()
    yield
    for name, value in saved.items():
        setattr(cyclone.locale, name, value)
    Locale._cache.clear()


def write_csv(directory: Path, code: str, text: str, encoding: str = "utf-8") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{code}.csv"
    path.write_bytes(text.encode(encoding))
    return path


def write_po(path: Path, body: str, plural_forms: str = "nplurals=2; plural=(n != 1);") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        'msgid ""\nmsgstr ""\n'
        '"Content-Type: text/plain; charset=UTF-8\\n"\n'
        f'"Plural-Forms: {plural_forms}\\n"\n\n'
    )
    path.write_text(header + body, encoding="utf-8")
    return path


def install_mo(root: Path, lang: str, body: str, domain: str = "test", **kw: str) -> Path:
    """Compile a catalog with cyclone.i18n into root/lang/LC_MESSAGES/domain.mo."""
    po = write_po(root / lang / "LC_MESSAGES" / f"{domain}.po", body, **kw)
    mo = po.with_suffix(".mo")
    compile_po(po, mo)
    return mo


FR_PO = """\
msgid "school"
msgstr "école"

msgid "%(n)d file"
msgid_plural "%(n)d files"
msgstr[0] "%(n)d fichier"
msgstr[1] "%(n)d fichiers"

msgctxt "law"
msgid "right"
msgstr "le droit"

msgctxt "good"
msgid "right"
msgstr "le bien"

msgctxt "organization"
msgid "club"
msgid_plural "clubs"
msgstr[0] "le club"
msgstr[1] "les clubs"

msgctxt "stick"
msgid "club"
msgid_plural "clubs"
msgstr[0] "le bâton"
msgstr[1] "les bâtons"

msgid "March"
msgstr "mars"

msgid "%(month_name)s %(day)s, %(year)s at %(time)s"
msgstr "%(day)s %(month_name)s %(year)s à %(time)s"
"""


# ---------------------------------------------------------------------------
# format_date, format_day, list, friendly_number


def ago(**kw: float) -> datetime.datetime:
    return NOW - datetime.timedelta(**kw)


FORMAT_DATE_CASES = [
    # (date, kwargs, expected) with now = Friday 2024-03-15 12:00 UTC, en_US
    (ago(seconds=0), {}, "0 seconds ago"),
    (ago(seconds=1), {}, "1 second ago"),
    (ago(seconds=2), {}, "2 seconds ago"),
    (ago(seconds=49), {}, "49 seconds ago"),
    (ago(seconds=50), {}, "1 minute ago"),
    (ago(seconds=89), {}, "1 minute ago"),
    (ago(minutes=2), {}, "2 minutes ago"),
    (ago(minutes=49, seconds=29), {}, "49 minutes ago"),
    (ago(minutes=50), {}, "1 hour ago"),
    (ago(hours=3), {}, "3 hours ago"),
    (ago(hours=23, minutes=59), {}, "24 hours ago"),
    # slightly in the future (clock skew) reads as now; further is a full date
    (ago(seconds=-30), {}, "0 seconds ago"),
    (ago(minutes=-2), {}, "March 15, 2024 at 12:02 pm"),
    (ago(seconds=-30), {"relative": False}, "March 15, 2024 at 12:00 pm"),
    # not relative, same day: only the time
    (ago(minutes=30), {"relative": False}, "11:30 am"),
    (ago(hours=12), {"relative": False}, "12:00 am"),
    (ago(days=1), {}, "yesterday at 12:00 pm"),
    (ago(days=1), {"shorter": True}, "yesterday"),
    (ago(days=1), {"relative": False}, "Thursday at 12:00 pm"),
    (ago(days=2), {}, "Wednesday at 12:00 pm"),
    (ago(days=2), {"shorter": True}, "Wednesday"),
    (ago(days=4, hours=23), {}, "Sunday at 1:00 pm"),
    (ago(days=5), {}, "March 10 at 12:00 pm"),
    (ago(days=5), {"shorter": True}, "March 10"),
    (ago(days=333), {}, "April 17 at 12:00 pm"),
    (ago(days=334), {}, "April 16, 2023 at 12:00 pm"),
    (ago(days=334), {"shorter": True}, "April 16, 2023"),
    (ago(days=1), {"full_format": True}, "March 14, 2024 at 12:00 pm"),
    (ago(seconds=5), {"full_format": True}, "March 15, 2024 at 11:59 am"),
    # gmt_offset is minutes west of UTC: UTC 02:00 is 23:00 the day before in UTC-3
    (
        datetime.datetime(2024, 3, 15, 2, 0, tzinfo=UTC),
        {"gmt_offset": 180, "full_format": True},
        "March 14, 2024 at 11:00 pm",
    ),
    (datetime.datetime(2024, 3, 14, 1, 0, tzinfo=UTC), {}, "yesterday at 1:00 am"),
    # in UTC-2 that moment is late on the 13th: two local days back, so a weekday
    (
        datetime.datetime(2024, 3, 14, 1, 0, tzinfo=UTC),
        {"gmt_offset": 120},
        "Wednesday at 11:00 pm",
    ),
    # naive datetimes are UTC; aware ones are converted to UTC first
    (datetime.datetime(2013, 4, 28, 18, 35), {"full_format": True}, "April 28, 2013 at 6:35 pm"),
    (
        datetime.datetime(2024, 3, 15, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-3))),
        {"full_format": True},
        "March 15, 2024 at 12:00 pm",
    ),
    (datetime.datetime(2024, 1, 2, 0, 5), {"full_format": True}, "January 2, 2024 at 12:05 am"),
    (datetime.datetime(2024, 1, 2, 12, 5), {"full_format": True}, "January 2, 2024 at 12:05 pm"),
    # unix timestamps
    (0, {}, "January 1, 1970 at 12:00 am"),
    (NOW.timestamp() - 120, {}, "2 minutes ago"),
    (NOW.timestamp() - 7.5, {}, "7 seconds ago"),
]


@pytest.mark.parametrize("date, kwargs, expected", FORMAT_DATE_CASES)
def test_format_date_english(date, kwargs, expected):
    assert cyclone.locale.get("en_US").format_date(date, now=NOW, **kwargs) == expected


def test_format_date_defaults_to_the_current_time():
    # Against the real clock, so only forms that no boundary can flip.
    locale = cyclone.locale.get("en_US")
    old = datetime.datetime.now(UTC) - datetime.timedelta(days=500)
    assert locale.format_date(old, shorter=True) == (
        f"{locale._months[old.month - 1]} {old.day}, {old.year}"
    )
    recent = datetime.datetime.now(UTC).replace(tzinfo=None) - datetime.timedelta(days=2)
    assert locale.format_date(recent, shorter=True) == locale._weekdays[recent.weekday()]


@pytest.mark.parametrize(
    "code, date, expected",
    [
        ("en", datetime.datetime(2024, 3, 15, 15, 45), "March 15, 2024 at 3:45 pm"),
        ("de_DE", datetime.datetime(2024, 3, 15, 15, 45), "March 15, 2024 at 15:45"),
        ("pt_BR", datetime.datetime(2024, 3, 15, 9, 5), "March 15, 2024 at 9:05"),
        ("zh_CN", datetime.datetime(2024, 3, 15, 15, 45), "March 15, 2024 at \u4e0b\u53483:45"),
        ("zh_CN", datetime.datetime(2024, 3, 15, 0, 30), "March 15, 2024 at \u4e0a\u534812:30"),
    ],
)
def test_format_date_clock_by_locale(code, date, expected):
    cyclone.locale.set_default_locale(code)
    assert cyclone.locale.get(code).format_date(date, full_format=True, now=NOW) == expected


def test_format_date_uses_translations(tmp_path):
    write_csv(
        tmp_path,
        "pt_BR",
        '"March","março"\n'
        '"Thursday","quinta-feira"\n'
        '"%(month_name)s %(day)s, %(year)s at %(time)s","%(day)s de %(month_name)s de %(year)s às %(time)s"\n'
        '"%(weekday)s at %(time)s","%(weekday)s às %(time)s"\n'
        '"1 minute ago","há 1 minuto","singular"\n'
        '"%(minutes)d minutes ago","há %(minutes)d minutos","plural"\n',
    )
    cyclone.locale.load_translations(str(tmp_path))
    pt = cyclone.locale.get("pt_BR")
    assert pt.format_date(ago(days=1), full_format=True, now=NOW) == "14 de março de 2024 às 12:00"
    assert pt.format_date(ago(days=1), relative=False, now=NOW) == "quinta-feira às 12:00"
    assert pt.format_date(ago(minutes=1), now=NOW) == "há 1 minuto"
    assert pt.format_date(ago(minutes=5), now=NOW) == "há 5 minutos"


@pytest.mark.parametrize(
    "date, kwargs, expected",
    [
        (datetime.datetime(2013, 4, 28, 18, 35), {}, "Sunday, April 28"),
        (datetime.datetime(2013, 4, 28, 18, 35), {"dow": False}, "April 28"),
        (datetime.datetime(2013, 4, 28, 18, 35), {"gmt_offset": 20 * 60}, "Saturday, April 27"),
        (datetime.datetime(2013, 4, 28, 18, 35), {"gmt_offset": -6 * 60}, "Monday, April 29"),
        (datetime.datetime(2024, 2, 29, tzinfo=UTC), {}, "Thursday, February 29"),
        (0, {"dow": False}, "January 1"),
    ],
)
def test_format_day(date, kwargs, expected):
    assert cyclone.locale.get("en_US").format_day(date, **kwargs) == expected


@pytest.mark.parametrize(
    "parts, expected",
    [
        ([], ""),
        (["A"], "A"),
        (["A", "B"], "A and B"),
        (["A", "B", "C"], "A, B and C"),
        (("x", "y", "z", "w"), "x, y, z and w"),
        (iter(["one", "two"]), "one and two"),
    ],
)
def test_list(parts, expected):
    assert cyclone.locale.get("en_US").list(parts) == expected


def test_list_translated_and_persian_separator(tmp_path):
    write_csv(tmp_path, "fa_IR", '"%(commas)s and %(last)s","%(commas)s \u0648 %(last)s"\n')
    write_csv(tmp_path, "es_LA", '"%(commas)s and %(last)s","%(commas)s y %(last)s"\n')
    cyclone.locale.load_translations(str(tmp_path))
    assert cyclone.locale.get("fa_IR").list(["A", "B", "C"]) == "A \u0648 B \u0648 C"
    assert cyclone.locale.get("es_LA").list(["A", "B", "C"]) == "A, B y C"


@pytest.mark.parametrize(
    "code, value, expected",
    [
        ("en_US", 0, "0"),
        ("en_US", 999, "999"),
        ("en_US", 1000, "1,000"),
        ("en_US", 1000000, "1,000,000"),
        ("en_US", 123456789, "123,456,789"),
        ("en_US", -1234, "-1,234"),
        ("en_US", -100, "-100"),
        ("en", 12345, "12,345"),
        ("en_GB", 12345, "12345"),
        ("pt_BR", 1000000, "1000000"),
    ],
)
def test_friendly_number(code, value, expected):
    cyclone.locale.set_default_locale(code)
    assert cyclone.locale.get(code).friendly_number(value) == expected


# ---------------------------------------------------------------------------
# Locale choice


@pytest.fixture
def supported(tmp_path):
    for code in ("pt_BR", "es", "fr_FR"):
        write_csv(tmp_path, code, '"yes","%s"\n' % {"pt_BR": "sim", "es": "sí", "fr_FR": "oui"}[code])
    cyclone.locale.load_translations(str(tmp_path))


@pytest.mark.parametrize(
    "codes, expected",
    [
        (("pt_BR",), "pt_BR"),
        (("pt-br",), "pt_BR"),
        (("PT_br",), "pt_BR"),
        (("pt_PT",), "en_US"),  # no "pt" locale: a sibling is not a fallback
        (("pt",), "en_US"),
        (("es_MX",), "es"),
        (("ES-ar",), "es"),
        (("es",), "es"),
        (("de_DE", "fr_FR"), "fr_FR"),
        (("fr",), "en_US"),
        (("", None, "fr_FR"), "fr_FR"),
        (("pt_BR_x", "es"), "es"),  # three parts are skipped
        ((), "en_US"),
        (("xx",), "en_US"),
    ],
)
def test_get_closest(supported, codes, expected):
    assert cyclone.locale.get(*codes).code == expected
    assert Locale.get_closest(*codes).code == expected


def test_supported_locales_and_default(supported):
    assert cyclone.locale.get_supported_locales() == {"pt_BR", "es", "fr_FR", "en_US"}
    cyclone.locale.set_default_locale("pt_BR")
    assert cyclone.locale.get("de").code == "pt_BR"
    assert cyclone.locale.get_supported_locales() == {"pt_BR", "es", "fr_FR"}
    cyclone.locale.set_default_locale("it_IT")
    assert "it_IT" in cyclone.locale.get_supported_locales()
    it = cyclone.locale.get("zz")
    assert (it.code, it.name, it.translate("yes")) == ("it_IT", "Italiano", "yes")


def test_get_is_cached_and_rejects_unsupported(supported):
    assert Locale.get("pt_BR") is Locale.get("pt_BR")
    assert cyclone.locale.get("pt-BR") is Locale.get("pt_BR")
    with pytest.raises(ValueError, match="unsupported locale 'de_DE'"):
        Locale.get("de_DE")


@pytest.mark.parametrize(
    "code, name, rtl",
    [
        ("en_US", "English (US)", False),
        ("pt_BR", "Portugu\u00eas (Brasil)", False),
        ("fa_IR", "\u0641\u0627\u0631\u0633\u06cc", True),
        ("ar_AR", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", True),
        ("he_IL", "\u05e2\u05d1\u05e8\u05d9\u05ea", True),
        ("xx_YY", "Unknown", False),
    ],
)
def test_locale_attributes(code, name, rtl):
    cyclone.locale.set_default_locale(code)
    locale = cyclone.locale.get(code)
    assert (locale.code, locale.name, locale.rtl) == (code, name, rtl)


def test_locale_names_table():
    names = cyclone.locale.LOCALE_NAMES
    assert len(names) == 62
    assert all(set(entry) == {"name_en", "name"} and all(entry.values()) for entry in names.values())
    assert all(len(code) == 5 and code[2] == "_" for code in names)
    assert names["es_LA"] == {"name_en": "Spanish", "name": "Espa\u00f1ol"}
    assert names["zh_TW"]["name"] == "\u4e2d\u6587(\u7e41\u9ad4)"
    assert {"af_ZA", "en_GB", "nb_NO", "sw_KE", "uk_UA", "zh_CN"} <= set(names)


# ---------------------------------------------------------------------------
# CSV translations

FR_CSV = (
    '"school","\u00e9cole"\n'
    '"%(name)s liked this","%(name)s a aim\u00e9 \u00e7a","singular"\n'
    '"%(name)s liked this","%(name)s ont aim\u00e9 \u00e7a","plural"\n'
    '"comma, inside","virgule, dedans",""\n'
    '" padded "," rembourr\u00e9 "\n'
    '\n'
    '"two\nlines","deux\nlignes","unknown"\n'
)


@pytest.mark.parametrize(
    "encoding, prefix",
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
def test_csv_detects_encoding(tmp_path, encoding, prefix):
    (tmp_path / "fr_FR.csv").write_bytes(prefix + FR_CSV.encode(encoding))
    cyclone.locale.load_translations(str(tmp_path))
    fr = cyclone.locale.get("fr_FR")
    assert isinstance(fr, CSVLocale)
    assert fr.translate("school") == "\u00e9cole"
    assert fr.translate("comma, inside") == "virgule, dedans"
    assert fr.translate("padded") == "rembourr\u00e9"
    assert fr.translate("two\nlines") == "deux\nlignes"


def test_csv_explicit_encoding(tmp_path):
    write_csv(tmp_path, "fr_FR", FR_CSV, encoding="latin-1")
    cyclone.locale.load_translations(str(tmp_path), encoding="latin-1")
    assert cyclone.locale.get("fr_FR").translate("school") == "\u00e9cole"


@pytest.mark.parametrize(
    "count, expected",
    [(1, "Ana a aim\u00e9 \u00e7a"), (2, "Ana ont aim\u00e9 \u00e7a"), (0, "Ana ont aim\u00e9 \u00e7a")],
)
def test_csv_plurals(tmp_path, count, expected):
    write_csv(tmp_path, "fr_FR", FR_CSV)
    cyclone.locale.load_translations(str(tmp_path))
    fr = cyclone.locale.get("fr_FR")
    assert fr.translate("%(name)s liked this", "%(name)s liked this", count) % {"name": "Ana"} == expected


def test_csv_untranslated_and_pgettext_fallbacks(tmp_path):
    write_csv(tmp_path, "fr_FR", FR_CSV)
    cyclone.locale.load_translations(str(tmp_path))
    fr = cyclone.locale.get("fr_FR")
    assert fr.translate("unknown") == "unknown"
    assert fr.translate("apple", "apples", 1) == "apple"
    assert fr.translate("apple", "apples", 3) == "apples"
    # A singular row does not answer a plain lookup: it is kept per form.
    assert fr.translate("%(name)s liked this") == "%(name)s liked this"
    # CSV has no contexts: pgettext ignores the context.
    assert fr.pgettext("building", "school") == "\u00e9cole"
    assert fr.pgettext("x", "%(name)s liked this", "%(name)s liked this", 1) == "%(name)s a aim\u00e9 \u00e7a"
    with pytest.raises(ValueError, match="count"):
        fr.translate("apple", "apples")


def test_csv_skips_files_not_named_after_a_locale(tmp_path, caplog):
    write_csv(tmp_path, "fr_FR", FR_CSV)
    write_csv(tmp_path, "French", '"school","\u00e9cole"\n')
    (tmp_path / "notes.txt").write_text("not a translation")
    with caplog.at_level(logging.ERROR, logger="cyclone.locale"):
        cyclone.locale.load_translations(str(tmp_path))
    assert cyclone.locale.get_supported_locales() == {"fr_FR", "en_US"}
    assert "Unrecognized locale 'French'" in caplog.text


@pytest.mark.parametrize(
    "content, message",
    [
        (b'"school"\n', "line 1: expected 2 or 3 columns, got 1"),
        (b'"a","b"\n"c","d","plural","x"\n', "line 2: expected 2 or 3 columns, got 4"),
        (b'"a","b","many"\n', "line 1: unrecognized plural indicator 'many'"),
        (b'"school","\xe9cole"\n', "cannot decode as utf-8-sig"),
        (codecs.BOM_UTF16_LE + b"\x00\xd8", "cannot decode as utf-16"),
    ],
)
def test_csv_corrupt_files_raise_at_load_time(tmp_path, content, message):
    good = tmp_path / "good"
    write_csv(good, "fr_FR", FR_CSV)
    cyclone.locale.load_translations(str(good))
    bad = tmp_path / "bad"
    write_csv(bad, "fr_FR", FR_CSV)
    (bad / "es_LA.csv").write_bytes(content)
    with pytest.raises(TranslationError) as info:
        cyclone.locale.load_translations(str(bad))
    assert str(bad / "es_LA.csv") in str(info.value)
    assert message in str(info.value)
    assert info.value.path == str(bad / "es_LA.csv")
    # All or nothing: the translations loaded before are still served.
    assert cyclone.locale.get_supported_locales() == {"fr_FR", "en_US"}
    assert cyclone.locale.get("fr_FR").translate("school") == "\u00e9cole"


def test_reloading_replaces_cached_locales(tmp_path):
    write_csv(tmp_path / "v1", "fr_FR", '"school","\u00e9cole"\n')
    write_csv(tmp_path / "v2", "fr_FR", '"school","coll\u00e8ge"\n')
    cyclone.locale.load_translations(str(tmp_path / "v1"))
    first = cyclone.locale.get("fr_FR")
    assert first.translate("school") == "\u00e9cole"
    cyclone.locale.load_translations(str(tmp_path / "v2"))
    second = cyclone.locale.get("fr_FR")
    assert second is not first
    assert second.translate("school") == "coll\u00e8ge"


# ---------------------------------------------------------------------------
# gettext translations


@pytest.fixture
def gettext_dir(tmp_path):
    root = tmp_path / "locale"
    install_mo(root, "fr_FR", FR_PO, plural_forms="nplurals=2; plural=(n > 1);")
    install_mo(
        root,
        "pl",
        'msgid "%(n)d file"\nmsgid_plural "%(n)d files"\n'
        'msgstr[0] "%(n)d plik"\nmsgstr[1] "%(n)d pliki"\nmsgstr[2] "%(n)d plik\u00f3w"\n',
        plural_forms="nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
    )
    return root


def test_gettext_translate(gettext_dir):
    cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    assert cyclone.locale.get_supported_locales() == {"fr_FR", "pl", "en_US"}
    fr = cyclone.locale.get("fr-fr")
    assert isinstance(fr, GettextLocale)
    assert fr.translate("school") == "\u00e9cole"
    assert fr.translate("missing") == "missing"
    with pytest.raises(ValueError, match="count"):
        fr.translate("%(n)d file", "%(n)d files")


@pytest.mark.parametrize(
    "code, count, expected",
    [
        ("fr_FR", 0, "0 fichier"),  # French: 0 is singular
        ("fr_FR", 1, "1 fichier"),
        ("fr_FR", 2, "2 fichiers"),
        ("pl", 1, "1 plik"),
        ("pl", 3, "3 pliki"),
        ("pl", 5, "5 plik\u00f3w"),
        ("pl", 22, "22 pliki"),
        ("pl", 12, "12 plik\u00f3w"),
        ("en_US", 1, "1 file"),
        ("en_US", 0, "0 files"),
    ],
)
def test_gettext_plurals_follow_plural_forms(gettext_dir, code, count, expected):
    cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    locale = cyclone.locale.get(code)
    assert locale.translate("%(n)d file", "%(n)d files", count) % {"n": count} == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        (("law", "right"), "le droit"),
        (("good", "right"), "le bien"),
        (("organization", "club", "clubs", 1), "le club"),
        (("organization", "club", "clubs", 2), "les clubs"),
        (("stick", "club", "clubs", 1), "le b\u00e2ton"),
        (("stick", "club", "clubs", 2), "les b\u00e2tons"),
        # no entry for that context: untranslated, never another context's text
        (("direction", "right"), "right"),
        (("golf", "club", "clubs", 1), "club"),
        (("golf", "club", "clubs", 2), "clubs"),
        # the context-free entry is not used for a context either
        (("building", "school"), "school"),
    ],
)
def test_gettext_pgettext(gettext_dir, args, expected):
    cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    assert cyclone.locale.get("fr_FR").pgettext(*args) == expected


def test_gettext_translates_date_formats(gettext_dir):
    cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    fr = cyclone.locale.get("fr_FR")
    date = datetime.datetime(2024, 3, 1, 17, 5)
    assert fr.format_date(date, full_format=True, now=NOW) == "1 mars 2024 \u00e0 17:05"


def test_gettext_default_domain_is_cyclone(tmp_path):
    install_mo(tmp_path, "es", 'msgid "yes"\nmsgstr "s\u00ed"\n', domain="cyclone")
    cyclone.locale.load_gettext_translations(str(tmp_path))
    assert cyclone.locale.get("es_AR").translate("yes") == "s\u00ed"


def test_gettext_skips_other_entries(gettext_dir, caplog):
    (gettext_dir / "de_DE" / "LC_MESSAGES").mkdir(parents=True)  # no .mo for this domain
    (gettext_dir / ".hidden").mkdir()
    (gettext_dir / "README").write_text("a file, not a language")
    with caplog.at_level(logging.WARNING, logger="cyclone.locale"):
        cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    assert cyclone.locale.get_supported_locales() == {"fr_FR", "pl", "en_US"}
    assert "Cannot load translation for 'de_DE'" in caplog.text


def test_gettext_reload_sees_a_recompiled_catalog(tmp_path):
    # The stdlib's gettext.translation() caches catalogs by path forever;
    # a reload must read the file again.
    install_mo(tmp_path, "fr_FR", 'msgid "school"\nmsgstr "\u00e9cole"\n')
    cyclone.locale.load_gettext_translations(str(tmp_path), "test")
    assert cyclone.locale.get("fr_FR").translate("school") == "\u00e9cole"
    install_mo(tmp_path, "fr_FR", 'msgid "school"\nmsgstr "coll\u00e8ge"\n')
    cyclone.locale.load_gettext_translations(str(tmp_path), "test")
    assert cyclone.locale.get("fr_FR").translate("school") == "coll\u00e8ge"


def test_switching_backends(gettext_dir, tmp_path):
    cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    assert isinstance(cyclone.locale.get("fr_FR"), GettextLocale)
    write_csv(tmp_path / "csv", "fr_FR", '"school","\u00e9cole (csv)"\n')
    cyclone.locale.load_translations(str(tmp_path / "csv"))
    fr = cyclone.locale.get("fr_FR")
    assert isinstance(fr, CSVLocale)
    assert fr.translate("school") == "\u00e9cole (csv)"
    assert cyclone.locale.get_supported_locales() == {"fr_FR", "en_US"}


def valid_mo(tmp_path: Path) -> bytes:
    return install_mo(tmp_path / "scratch", "xx", FR_PO).read_bytes()


def _mo_with_bad_utf8() -> bytes:
    from cyclone.i18n import _mo_bytes

    return _mo_bytes({b"": b"Content-Type: text/plain; charset=UTF-8\n", b"a": b"\xff\xfe"})


def _mo_with_bad_plural() -> bytes:
    from cyclone.i18n import _mo_bytes

    return _mo_bytes(
        {b"": b"Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=n ?? 1;\n"}
    )


def _mo_with_bad_offset(good: bytes) -> bytes:
    # first original string claims to lie far beyond the end of the file
    return good[:28] + struct.pack("<2I", 5, 10**6) + good[36:]


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda good: b"", "not a gettext .mo file: only 0 bytes"),
        (lambda good: b"\0" * len(good), "Bad magic number"),
        (lambda good: b"%PDF-1.4" + good[8:], "Bad magic number"),
        (lambda good: good[:24], "not a gettext .mo file: only 24 bytes"),
        (lambda good: good[:40], "truncated"),
        (lambda good: good[: len(good) // 2], "File is corrupt"),
        (lambda good: good[:4] + struct.pack("<I", 7 << 16) + good[8:], "Bad version number"),
        (_mo_with_bad_offset, "File is corrupt"),
        (lambda good: _mo_with_bad_utf8(), "can't decode byte 0xff"),
        (lambda good: _mo_with_bad_plural(), "plural form"),
    ],
)
def test_gettext_corrupt_mo_raises_at_load_time(tmp_path, gettext_dir, make, reason):
    cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    bad = gettext_dir / "es" / "LC_MESSAGES" / "test.mo"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(make(valid_mo(tmp_path)))
    with pytest.raises(TranslationError) as info:
        cyclone.locale.load_gettext_translations(str(gettext_dir), "test")
    assert info.value.path == str(bad)
    assert str(info.value).startswith(str(bad) + ": ")
    assert reason in str(info.value)
    # All or nothing: the catalogs loaded before are still served.
    assert cyclone.locale.get_supported_locales() == {"fr_FR", "pl", "en_US"}
    assert cyclone.locale.get("fr_FR").translate("school") == "\u00e9cole"


# -- the locale demo, served over HTTP ------------------------------------------------------


@pytest.fixture
def locale_demo(tmp_path, listen):
    """demos/locale with its catalogs compiled into tmp_path, listening on 127.0.0.1."""
    import importlib.util
    import shutil

    from cyclone.i18n import compile_po

    repo = Path(__file__).resolve().parent.parent
    source = repo / "demos" / "locale" / "locale"
    catalogs = tmp_path / "locale"
    shutil.copytree(source, catalogs)
    for po in catalogs.glob("*/LC_MESSAGES/demo.po"):
        compile_po(str(po), str(po.with_suffix(".mo")))
    spec = importlib.util.spec_from_file_location("locale_demo", repo / "demos" / "locale" / "locale_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield listen(module.make_app(str(catalogs)))
    finally:
        cyclone.locale._install({}, False)  # later tests start with no catalogs


def _get_page(port: int, path: str, headers: dict | None = None) -> tuple[int, str, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Set-Cookie") or "", response.read().decode("utf-8")
    finally:
        conn.close()


@pytest_twisted.inlineCallbacks
def test_locale_demo_serves_two_languages(locale_demo):
    from twisted.internet import threads

    status, cookie, page = yield threads.deferToThread(_get_page, locale_demo, "/?lang=pt_BR&files=1")
    assert status == 200 and "lang=pt_BR" in cookie
    assert "Olá, mundo!" in page and "1 arquivo<" in page
    assert "Ordem" in page and "Crescente" in page and "Pedido" in page
    status, _, page = yield threads.deferToThread(_get_page, locale_demo, "/?lang=es_ES&files=2")
    assert "¡Hola, mundo!" in page and "2 archivos" in page
    # no choice made: the browser's Accept-Language decides
    status, _, page = yield threads.deferToThread(
        _get_page, locale_demo, "/", {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert "¡Hola, mundo!" in page
    status, _, page = yield threads.deferToThread(_get_page, locale_demo, "/?files=5")
    assert "Hello, world!" in page and "5 files" in page

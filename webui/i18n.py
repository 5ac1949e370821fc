"""The pages' languages: English and Simplified Chinese, with Flask-Babel.

Translations are kept as gettext ``.po`` files under ``webui/translations/<locale>/``, one file per
group of pages (so two people translating two pages do not edit one file); they are read and merged
when the app starts, and compiled in memory: no generated ``.mo`` file is written or committed.
The language is the one the user chose (the ``mosu_lang`` cookie, set by the switch at the top of
every page), else the browser's ``Accept-Language``, else English. Dates and numbers are formatted
for it by Flask-Babel's filters (``dateformat``, ``datetimeformat``, ``numberformat``).
"""
from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlsplit

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Blueprint, Flask, make_response, redirect, request
from flask_babel import Babel, Domain, get_locale

LANGUAGES = {"en": "English", "zh_Hans": "简体中文"}
"""Locale -> its name in itself (what the switch shows)."""
COOKIE = "mosu_lang"
TRANSLATIONS = Path(__file__).parent / "translations"

bp = Blueprint("i18n", __name__)


def load_catalogs(root: Path = TRANSLATIONS) -> dict[str, Catalog]:
    """Every ``<root>/<locale>/*.po`` merged into one catalog per locale (a message in two files: the
    later file, in name order, wins; :func:`check_catalogs` reports such duplicates)."""
    out: dict[str, Catalog] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        merged = Catalog(locale=folder.name, domain="messages")
        for po in sorted(folder.glob("*.po")):
            with po.open("rb") as f:
                for message in read_po(f, locale=folder.name):
                    if message.id and message.string:
                        merged[message.id] = message
        out[folder.name] = merged
    return out


def compiled(catalog: Catalog) -> Translations:
    """``catalog`` as gettext translations, compiled in memory."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


class CatalogDomain(Domain):
    """Flask-Babel's domain over the catalogs compiled at start-up instead of ``.mo`` files on disk."""

    def __init__(self, translations: dict[str, Translations]) -> None:
        super().__init__(domain="messages")
        self._by_locale = translations

    def get_translations(self):  # noqa: ANN201 - Flask-Babel's signature
        locale = get_locale()
        return self._by_locale.get(str(locale), NullTranslations()) if locale else NullTranslations()


def choose_locale() -> str:
    """The request's language: the user's choice, else the browser's, else English (pure over the request)."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-Hans", "zh-SG"])
    return "zh_Hans" if best and best.startswith("zh") else "en"


def html_lang() -> str:
    """The ``lang`` attribute of a page in the current language (BCP 47)."""
    return "zh-Hans" if str(get_locale()) == "zh_Hans" else "en"


def install(app: Flask) -> None:
    """Flask-Babel on ``app``, with the catalogs of :data:`TRANSLATIONS`."""
    babel = Babel()
    babel.init_app(app, default_locale="en", locale_selector=choose_locale)
    babel.domain_instance = CatalogDomain({name: compiled(c) for name, c in load_catalogs().items()})
    app.jinja_env.globals.update(languages=LANGUAGES, html_lang=html_lang, current_locale=lambda: str(get_locale()))
    app.register_blueprint(bp)


def safe_next(target: str | None) -> str:
    """A path on this site to go back to, or ``/``: never another site (``//evil``, ``https://evil``,
    ``/\\evil``), so the switch and sign-in cannot be used as an open redirect (pure)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return "/"
    return target


@bp.route("/language/<code>")
def switch(code: str):
    """Remember the chosen language for a year and go back to the page it was chosen on."""
    response = make_response(redirect(safe_next(request.args.get("next")), code=303))
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 86400, samesite="Lax", httponly=True, path="/")
    return response

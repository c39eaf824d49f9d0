"""Template filters and globals: labels, masking, local dates, role-aware navigation."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import url_for
from flask.globals import _cv_request
from flask_babel import get_locale, get_translations, gettext
from flask_login import current_user
from jinja2 import pass_eval_context
from markupsafe import Markup

from app.cases import vocab
from app.i18n import N_

SHANGHAI = ZoneInfo("Asia/Shanghai")


def mask_id_number(value: str | None) -> str:
    """``420222********1234``: first 6 and last 4 shown (PRODUCT.md §9)."""
    if not value:
        return ""
    if len(value) <= 4:  # too short to show any of it
        return "*" * len(value)
    if len(value) <= 10:
        return value[:2] + "*" * (len(value) - 4) + value[-2:]
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str | None) -> str:
    """``138****5678`` for mobiles; landlines keep the area code and last 4."""
    if not value:
        return ""
    digits = value.strip()
    if len(digits) >= 11 and digits.isdigit():
        return digits[:3] + "****" + digits[-4:]
    if len(digits) > 4:
        return digits[: max(len(digits) - 8, 0)] + "****" + digits[-4:]
    return "****"


def local_datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC datetime shown in Asia/Shanghai."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(SHANGHAI).strftime(fmt)


def today_local() -> date:
    """Today in the county's time zone (Asia/Shanghai)."""
    return datetime.now(SHANGHAI).date()


def format_rate(value: float | None) -> str:
    """A §6 rate: one decimal with %, or "—" for a zero denominator."""
    return "—" if value is None else f"{value:.1f}%"


# Navigation: (capability, endpoint, label, icon).  Shown only when the role has it and the
# endpoint exists in this build.
NAV_ITEMS = [
    (None, "home.index", N_("工作台"), "bi-house"),
    ("reception", "reception.index", N_("来访登记"), "bi-person-lines-fill"),
    ("cases.register", "cases.new", N_("登记纠纷"), "bi-plus-square"),
    ("cases.view", "cases.index", N_("纠纷台账"), "bi-journal-text"),
    ("cases.view", "mediation.backlog", N_("清仓"), "bi-inboxes-fill"),
    ("roster", "mediation.roster", N_("调解力量库"), "bi-person-badge"),
    ("dept_queue", "workflow.department_queue", N_("部门待办"), "bi-inboxes"),
    ("sign_off", "workflow.sign_off_queue", N_("待签批"), "bi-pen"),
    ("high_risk_board", "workflow.high_risk_board", N_("高风险看板"), "bi-exclamation-triangle"),
    ("supervise", "workflow.supervision_index", N_("督办"), "bi-flag"),
    ("screening.view", "screening.index", N_("排查"), "bi-search"),
    ("screening.file", "screening.new", N_("排查上报"), "bi-clipboard-check"),
    ("reports.view", "reports.monthly", N_("统计报表"), "bi-bar-chart"),
    ("dashboard", "reports.dashboard", N_("领导看板"), "bi-speedometer2"),
    ("ledger.import", "ledger.index", N_("台账导入导出"), "bi-file-earmark-spreadsheet"),
    ("admin", "orgs.tree", N_("组织机构"), "bi-diagram-3"),
    ("admin", "admin.users", N_("用户管理"), "bi-people"),
    ("admin", "admin.settings", N_("系统设置"), "bi-gear"),
    ("admin", "workflow.calendar", N_("节假日日历"), "bi-calendar3"),
    ("admin", "workflow.routing", N_("分流建议"), "bi-signpost-split"),
    ("audit.view", "audit.index", N_("审计日志"), "bi-shield-check"),
]


def nav_items(app):
    """The navigation entries the current user's role may use (and this build has); the
    same for every user of a role, so made once per role and process."""
    if not current_user.is_authenticated:
        return []
    cache = app.extensions.setdefault("qy_nav_items", {})
    role = current_user.role
    items = cache.get(role)
    if items is None:
        endpoints = frozenset(rule.endpoint for rule in app.url_map.iter_rules())
        items = cache[role] = [{"endpoint": endpoint, "label": label, "icon": icon}
                               for capability, endpoint, label, icon in NAV_ITEMS
                               if endpoint in endpoints and (capability is None or current_user.can(capability))]
    return items


_NAV_LINK = Markup('<li class="nav-item">\n          <a class="nav-link {}" href="{}"><i class="bi {}"></i> {}</a>\n'
                   '        </li>')
_NAV_SEPARATOR = Markup("\n        ")


def nav_links(app) -> Markup:
    """The navigation bar's entries (``nav_items``) as HTML, the current page's marked active.

    Every page shows them, and rendering the loop in the layout (a URL, a translation and three
    lookups per entry) cost more than anything else in it; each entry's HTML, in both states,
    depends only on the role, the language and the application root, so it is made once per
    process for each of those and joined here."""
    ctx = _cv_request.get(None)
    if ctx is None or not current_user.is_authenticated:
        return Markup("")
    key = (current_user.role, str(get_locale()), ctx.request.script_root)
    cache = app.extensions.setdefault("qy_nav_links", {})
    links = cache.get(key)
    if links is None:
        translations = fast_translations()
        links = cache[key] = [
            (item["endpoint"],
             *(_NAV_LINK.format(state, fixed_url(item["endpoint"]), item["icon"],
                                Markup(translations.ugettext(item["label"])))  # nosec B704 # our own msgid or its translation
               for state in ("", "active")))
            for item in nav_items(app)]
    endpoint = ctx.request.endpoint
    return _NAV_SEPARATOR.join(active if item_endpoint == endpoint else inactive
                               for item_endpoint, inactive, active in links)


class _ShownVocab:
    """``vocab`` as templates see it: the same tables, but ``vocab.label(...)`` gives the label
    in the page's language (``app.cases.vocab.shown``)."""

    label = staticmethod(vocab.shown)  # a class attribute: read without a failed lookup first

    def __getattr__(self, name):
        return getattr(vocab, name)


_SHOWN_VOCAB = _ShownVocab()


RISK_BADGES = {"high": ("danger", N_("高")), "medium": ("warning", N_("中")), "low": ("success", N_("低"))}
NO_RISK_BADGE = ("light text-muted", N_("未定级"))
STATUS_COLOURS = {"pending_triage": "secondary", "in_mediation": "primary", "escalated": "warning",
                  "transferred": "info", "closed": "success", "archived": "dark", "declined": "light"}


def request_memo() -> dict:
    """A dict that lives as long as the current request (its WSGI environ), for values that
    stay the same all through it; a fresh one outside a request.  Not ``g``: a test's app
    context outlives its requests.  Read straight from Flask's request context variable, not
    through the ``request`` proxy: a page asks for it a few hundred times (every translated
    string)."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return {}
    return ctx.request.environ.setdefault("qingyuan.memo", {})


def _memo(kind: str, key, make) -> Markup:
    """Badges are the same all through a request (one locale): made once each."""
    memo = request_memo()
    hit = memo.get((kind, key))
    if hit is None:
        hit = memo[(kind, key)] = make()
    return hit


def fast_translations():
    """Flask-Babel's translations object, looked up once per request (its own lookup walks
    the context, the domain and the locale on every string; a list page translates ~200)."""
    memo = request_memo()
    t = memo.get("translations")
    if t is None:
        t = memo["translations"] = get_translations()
    return t


def risk_badge_html(level: str | None) -> Markup:
    """The risk-level badge (templates call it directly): a list page shows 50."""
    def make() -> Markup:
        colour, label = RISK_BADGES.get(level or "", NO_RISK_BADGE)
        return Markup('<span class="badge text-bg-{}">{}</span>').format(colour, gettext(label))
    return _memo("risk", level, make)


def status_badge_html(status: str) -> Markup:
    """The status badge (templates call it directly)."""
    return _memo("status", status, lambda: Markup('<span class="badge text-bg-{}">{}</span>').format(
        STATUS_COLOURS.get(status, "secondary"), vocab.shown(vocab.STATUSES, status)))


def option_tags(pairs, selected: str | None) -> Markup:
    """``<option value="…">label</option>`` for each (value, label) of ``pairs``, the one equal
    to ``selected`` marked, escaped as Jinja would; for long select boxes shown on every page
    (the ledger's 140 villages), whose callers keep the result (``ListChoices.options``)."""
    option = Markup('<option value="{}"{}>{}</option>')
    return Markup("").join(option.format(value, Markup(" selected") if value == selected else "", label)
                           for value, label in pairs)


def fixed_url(endpoint: str, filename: str | None = None) -> str:
    """``url_for(endpoint)`` (or ``url_for('static', filename=…)``) for URLs with no variable
    part, built once per app and application root: the layout alone asks for some twenty
    (stylesheets, scripts, the navigation), each ~20 µs through the URL map.  Outside a request
    (where url_for may need SERVER_NAME) it is plain ``url_for``."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return url_for(endpoint, filename=filename) if filename is not None else url_for(endpoint)
    urls = ctx.app.extensions.setdefault("qy_fixed_urls", {})
    key = (ctx.request.script_root, endpoint, filename)
    url = urls.get(key)
    if url is None:
        url = urls[key] = url_for(endpoint, filename=filename) if filename is not None else url_for(endpoint)
    return url


def static_url(filename: str) -> str:
    return fixed_url("static", filename)


# What werkzeug's string converter leaves unquoted in a path segment (``UnicodeConverter.to_url``).
_SEGMENT_SAFE = "!$&'()*+,/:;=@"
_NUMBER_SLOT = "QYCASENUMBERSLOT"
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~-]*")  # what quote() leaves as it is


def case_link(endpoint: str, number: str, **values) -> str:
    """``url_for(endpoint, number=number, **values)`` for the links of the case page and the
    lists: the URL around the number is built once per app, endpoint and ``values`` (which must
    come from a small fixed set, such as a workflow action's name; row ids go to ``url_for``),
    and the number is quoted as werkzeug's converter quotes it.  A case page has a dozen such
    links, each ~10–20 µs through the URL map; a list has fifty.  Outside a request, or for an
    endpoint that would not put the number in the path once, it is plain ``url_for``."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return url_for(endpoint, number=number, **values)
    links = ctx.app.extensions.get("qy_case_links")
    if links is None:
        links = ctx.app.extensions["qy_case_links"] = {}
    key = (ctx.request.script_root, endpoint, *sorted(values.items())) if values else \
        (ctx.request.script_root, endpoint)
    parts = links.get(key)
    if parts is None:
        built = url_for(endpoint, number=_NUMBER_SLOT, **values)
        query = built.find("?")
        in_path = built.count(_NUMBER_SLOT) == 1 and (query < 0 or built.index(_NUMBER_SLOT) < query)
        parts = links[key] = tuple(built.split(_NUMBER_SLOT)) if in_path else ()
    if not parts:
        return url_for(endpoint, number=number, **values)
    number = str(number)
    # a number as the app makes them (QH-2026-000123) needs no quoting
    return parts[0] + (number if _PLAIN_SEGMENT.fullmatch(number) else quote(number, safe=_SEGMENT_SAFE)) + parts[1]


def case_url(number: str) -> str:
    """The case page's URL (``url_for("cases.detail", number=...)``), for the rows of a list."""
    return case_link("cases.detail", number)


@pass_eval_context
def template_gettext(eval_ctx, string: str, **variables) -> str:
    """``_('…', name=value)`` in templates: what Jinja's newstyle gettext does (translate, mark
    safe under autoescape, fill ``%(name)s`` with escaped values, ``%%`` → ``%``) in one call.
    Jinja's own ``_`` resolves ``gettext`` from the context and calls it through the context
    again, then formats even a string with no ``%``: a case page translates ~90 strings."""
    rv = fast_translations().ugettext(string)
    if eval_ctx.autoescape:
        rv = Markup(rv)  # nosec B704 # a msgid or its translation: text of our own, as Jinja marks it
    return rv % variables if "%" in rv else rv


def init_app(app) -> None:
    # Flask-Babel's callables, with the translations object looked up once per request
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: fast_translations().ugettext(s),
        ngettext=lambda s, p, n: fast_translations().ungettext(s, p, n), newstyle=True,
        pgettext=lambda c, s: fast_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: fast_translations().unpgettext(c, s, p, n))
    app.jinja_env.globals["_"] = template_gettext
    # environment globals, not a context processor: macros imported without context use them
    app.jinja_env.globals.update(case_url=case_url, case_link=case_link, fixed_url=fixed_url, static_url=static_url,
                                 risk_badge_html=risk_badge_html,
                                 status_badge_html=status_badge_html)
    app.jinja_env.filters.update(
        mask_id=mask_id_number, mask_phone=mask_phone, localdt=local_datetime, rate=format_rate,
        # Labels in the page's language (the vocabularies hold the Chinese, marked N_).
        status_label=lambda c: vocab.shown(vocab.STATUSES, c),
        outcome_label=lambda c: vocab.shown(vocab.OUTCOMES, c),
        level_label=lambda c: vocab.shown(vocab.LEVELS, c),
        risk_label=lambda c: vocab.shown(vocab.RISK_LEVELS, c),
        dict_without=lambda d, *keys: {k: v for k, v in d.items() if k not in keys},
    )

    @app.context_processor
    def _globals():
        return {"nav_items": lambda: nav_items(app), "nav_links": lambda: nav_links(app), "vocab": _SHOWN_VOCAB, "today_local": today_local,
                "url_endpoints": app.view_functions}

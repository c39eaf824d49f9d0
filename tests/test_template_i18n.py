"""Templates with their fixed strings translated at compile time (app.template_i18n) render
byte for byte what the run-time ``_()`` renders, in Chinese and in English, on every page.

Every GET route of the URL map whose only argument is a case number (or none) is requested by
several roles, plus the list and report pages of the query-count test, once with folding off and
once on; CSRF tokens (random per session) are blanked before comparing."""
from __future__ import annotations

import difflib
import re
from urllib.parse import urlsplit

import pytest
from jinja2.lexer import TOKEN_STRING

from app.template_i18n import FoldTranslations, LocaleEnvironment, fold
from tests.intake_helpers import login
from tests.test_scale_query_counts import VILLAGE, add_case, add_case_details, pages, populate
from tests.workflow_factories import org

CSRF = re.compile(r'(name="csrf_token"[^>]*value=")[^"]*|(name="csrf-token" content=")[^"]*')
FERNET = re.compile(r"gAAAAA[A-Za-z0-9_\-=%]+")  # sealed search tokens: a fresh IV each time
ROLES = ("township_mediator", "village_mediator", "county_supervisor", "admin", "dept_liaison")


def _targets(app, number: str) -> list[tuple[str, str]]:
    simple = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static" or not set(rule.arguments) <= {"number"}:
            continue
        path = rule.rule.replace("<number>", number)
        if re.search(r"\.(xlsx|json|csv|pdf|docx)$|/api/|logout|/attachments/", path):
            continue
        simple.append(path)
    targets = [(u, p) for u in ROLES for p in simple]
    targets += [(u, p) for u, p in pages() if not p.startswith("/api/") and ".xlsx" not in p and ".json" not in p]
    return targets


def _get(client, path: str):
    resp = client.get(path)
    if resp.status_code in (302, 303) and path.startswith("/cases/?"):
        loc = urlsplit(resp.headers["Location"])
        resp = client.get(loc.path + "?" + loc.query)
    html = FERNET.sub("<sealed>", CSRF.sub(r"\1\2", resp.get_data(as_text=True)))
    return resp.status_code, resp.mimetype, html


def _render_both(app, client, auth, targets, lang: str) -> tuple[dict, dict]:
    """Each page rendered with folding off, then at once with it on (what the first request
    wrote, an audit entry say, is there for both only if the page does not show it)."""
    plain, folded, user = {}, {}, None
    try:
        for username, path in targets:
            if username != user:
                login(auth, username)
                client.get(f"/?lang={lang}")
                user = username
            for fold_on, out in ((False, plain), (True, folded)):
                with client.session_transaction() as http_session:  # messages an earlier page left
                    http_session.pop("_flashes", None)
                app.config["FOLD_TEMPLATE_TRANSLATIONS"] = fold_on
                status, mimetype, html = _get(client, path)
                if mimetype == "text/html":
                    out[(username, path)] = (status, html)
    finally:
        app.config.pop("FOLD_TEMPLATE_TRANSLATIONS", None)
    return plain, folded


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_folded_templates_render_what_runtime_translation_renders(app, db, client, auth, lang):
    populate(0, 2)
    case = add_case(1, org(VILLAGE))
    add_case_details(case, 2)
    targets = _targets(app, case.number)
    plain, folded = _render_both(app, client, auth, targets, lang)
    assert plain.keys() == folded.keys()
    rendered = [k for k, (status, _) in plain.items() if status == 200]
    assert len(rendered) > 60  # the comparison covers the app's pages, not a handful
    differ = [k for k in plain if plain[k] != folded[k]]
    assert not differ, "\n".join(f"{k}:\n" + "\n".join(list(difflib.unified_diff(
        plain[k][1].splitlines(), folded[k][1].splitlines(), lineterm="", n=0))[:8]) for k in differ[:3])
    marker = "纠纷台账" if lang == "zh" else "Case ledger"
    assert sum(marker in html for _, html in folded.values()) > 30
    # the second pass really used the folded templates of this language
    overlay = app.jinja_env._locale_overlays[lang]
    assert overlay.folded_locale == lang and "cases/detail.html" in {k[1] for k in overlay.cache.keys()}


def _tokens(env, source: str) -> list:
    """The tokens of ``source`` after the folding extension's filter."""
    stream = env.extensions[FoldTranslations.identifier].filter_stream(iter(env._tokenize(source, None, None)))
    return [(t.type, t.value) for t in stream]


class _Catalogue:
    def ugettext(self, s):
        return {"是": "Yes", "引号": 'say "hi"', "百分": "100%", "否": "No"}.get(s, s)


@pytest.fixture()
def folding_env(app):
    env = app.jinja_env.overlay(cache_size=10, bytecode_cache=None)
    env.folded_translations = _Catalogue()
    return env


def test_only_plain_literal_calls_are_folded(folding_env):
    env = folding_env
    folded = [v for t, v in _tokens(env, "{{ _('是') }}{{ x._('否') }}{{ _('引号') }}{{ _('百分') }}"
                                         "{{ _('否', n=1) }}{{ _(name) }}{{ _('否').format(1) }}{{ _('否') % 1 }}")
              if t == TOKEN_STRING]
    # only the first: an attribute, escaping, %, keyword arguments, a variable and what follows
    # acting on Markup stay run-time calls
    assert folded == ["Yes", "否", "引号", "百分", "否", "否", "否"]
    assert env.from_string("<b>{{ _('是') }}</b>|{{ _('否') }}").render() == "<b>Yes</b>|No"


def test_fold_refuses_what_would_need_escaping():
    assert fold(_Catalogue(), "是") == "Yes"
    assert fold(_Catalogue(), "引号") is None
    assert fold(_Catalogue(), "百分") is None


def test_outside_a_request_templates_are_not_folded(app):
    assert isinstance(app.jinja_env, LocaleEnvironment)
    with app.app_context():
        assert app.jinja_env.folded_translations is None
        assert app.jinja_env._overlay_for_request() is None

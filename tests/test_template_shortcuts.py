"""The template shortcuts answer exactly what they stand in for: ``case_link`` what ``url_for``
builds, and the environment's ``getattr`` on a plain dict what Jinja's own gives."""
from __future__ import annotations

import pytest
from flask import url_for
from jinja2 import Environment, Undefined

from app.template_i18n import LocaleEnvironment
from app.templating import case_link, case_url

NUMBERS = ["QY-2026-000123", "QH.2026_x~1", "调解（2026）第12号", "a b+c&d", "x%y", "~!$'()*,;=@:"]


@pytest.mark.parametrize("script_root", ["", "/qingyuan"])
def test_case_link_is_url_for(app, script_root):
    endpoints = [("cases.detail", {}), ("cases.edit", {}), ("mediation.archive", {}),
                 ("workflow.act", {"action": "accept"}), ("workflow.act", {"action": "close"}),
                 ("mediation.document", {"kind": "agreement"})]
    with app.test_request_context("/", environ_overrides={"SCRIPT_NAME": script_root}):
        for endpoint, values in endpoints:
            for number in NUMBERS:
                assert case_link(endpoint, number, **values) == url_for(endpoint, number=number, **values)
        assert case_url(NUMBERS[1]) == url_for("cases.detail", number=NUMBERS[1])
        # the URL around the number is kept per endpoint and fixed values, never mixed up
        assert case_link("workflow.act", "N1", action="accept") != case_link("workflow.act", "N1", action="close")


def test_case_link_outside_a_request_is_url_for(app):
    with app.test_request_context("/"):
        inside = case_link("cases.edit", "N-1")
    app.config["SERVER_NAME"] = "localhost"
    try:
        with app.app_context():  # a CLI command or a mail: url_for's own URL
            assert case_link("cases.edit", "N-1") == url_for("cases.edit", number="N-1")
            assert url_for("cases.edit", number="N-1").endswith(inside)
    finally:
        app.config["SERVER_NAME"] = None


def test_case_link_falls_back_when_the_number_is_not_in_the_path(app):
    """An endpoint without ``<number>`` puts it in the query string: built by url_for each time."""
    with app.test_request_context("/"):
        assert case_link("cases.index", "甲 1") == url_for("cases.index", number="甲 1")
        assert case_link("cases.index", "乙 2") == url_for("cases.index", number="乙 2")


class _Dict(dict):
    label = "attribute of a subclass"


@pytest.mark.parametrize("source", [
    "{{ d.label }}|{{ d.missing is defined }}|{{ d.items is defined }}|{{ d.get('label') }}|{{ d['label'] }}",
    "{{ d.keys()|list|join(',') }}|{{ d.values is callable }}|{{ d.endpoint }}",
    "{{ s.label }}|{{ s['label'] }}|{{ o.real }}|{{ n.anything is defined }}",
])
def test_getattr_on_dicts_is_jinjas(source):
    values = {"d": {"label": "key", "endpoint": "cases.index"}, "s": _Dict(label="key"), "o": 3, "n": None}
    plain = Environment(undefined=Undefined, autoescape=True)
    fast = LocaleEnvironment.__new__(LocaleEnvironment)
    Environment.__init__(fast, undefined=Undefined, autoescape=True)
    assert fast.from_string(source).render(values) == plain.from_string(source).render(values)


def test_the_app_environment_reads_dict_keys_without_the_attribute_miss(app):
    env = app.jinja_env
    assert isinstance(env, LocaleEnvironment)
    assert env.getattr({"items": 1, "x": 2}, "x") == 2
    d = {"items": 1}
    assert env.getattr(d, "items") == d.items  # the method, as in Jinja
    assert isinstance(env.getattr({}, "nope"), Undefined)


# The layout's loop before ``nav_links`` replaced it: the entries must come out the same.
_NAV_LOOP = """{% set endpoint = request.endpoint %}{% for item in nav_items() %}
<li class="nav-item">
  <a class="nav-link {% if endpoint == item.endpoint %}active{% endif %}" href="{{ url_for(item.endpoint) }}"><i class="bi {{ item.icon }}"></i> {{ _(item.label) }}</a>
</li>{% endfor %}"""


def _squeezed(html: str) -> str:
    return " ".join(html.split()).replace("> <", "><")


@pytest.mark.parametrize("username", ["admin", "county_supervisor", "township_mediator", "grid_worker",
                                      "dept_liaison"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_nav_links_are_the_layout_loop(app, db, client, auth, username, lang):
    from flask import render_template_string

    from app.templating import nav_links
    auth.login(username)
    client.get(f"/?lang={lang}")
    for path in ["/", "/cases/", "/reports/"]:
        with client.application.test_request_context(path):
            from flask import session as http_session
            from flask_login import login_user
            from sqlalchemy import select

            from app.accounts.models import User
            http_session["lang"] = lang
            login_user(db.scalar(select(User).where(User.username == username)))
            expected = _squeezed(render_template_string(_NAV_LOOP))
            got = _squeezed(str(nav_links(app)))
            assert got == expected and 'class="nav-link "' in got
            assert got.count("nav-link active") <= 1
    page = client.get("/cases/").get_data(as_text=True)
    if 'href="/cases/"><i class="bi' in page:  # the roles with the ledger in their navigation
        assert 'class="nav-link active" href="/cases/"' in page

"""``app.proxies``: the context proxies of Flask and Flask-Login read ordinary attributes straight
from the current object, and behave as werkzeug's ``LocalProxy`` in everything else — inside a
request and outside any context."""
from __future__ import annotations

import flask
import flask_login
import pytest
from flask import g, request, session
from flask_login import current_user

from app.proxies import DirectProxy


def test_the_proxies_have_the_direct_class(app):
    for proxy in (flask.current_app, flask.g, flask.request, flask.session, flask_login.current_user,
                  flask_login.utils.current_user):
        assert type(proxy) is DirectProxy
    with app.test_request_context("/"):
        assert isinstance(flask.request, flask.Request)  # __class__ still answers for the object


def test_inside_a_request_they_act_as_the_objects(app):
    with app.test_request_context("/cases/?type=邻里", method="GET"):
        assert request.method == "GET" and request.args["type"] == "邻里"
        assert request.path == "/cases/"
        assert flask.current_app.config["TESTING"] is True
        g.marker = 41  # assignment goes to the object
        g.marker += 1
        assert g.marker == 42 and g.get("marker") == 42 and "marker" in g
        del g.marker
        assert not hasattr(g, "marker") and getattr(g, "marker", "none") == "none"
        session["k"] = "v"
        assert session.get("k") == "v" and session["k"] == "v" and len(session) >= 1
        assert current_user.is_authenticated is False  # the anonymous user
        assert current_user._get_current_object() is flask_login.utils._get_user()
        assert bool(request) and request == request._get_current_object()
        assert not hasattr(request, "__html__")  # markupsafe's probe: still a plain miss
        assert isinstance(g, flask.ctx._AppCtxGlobals)


def test_outside_any_context_they_fail_as_werkzeugs(app):
    assert current_user._get_current_object() is None  # as Flask-Login's _get_user answers
    with pytest.raises(RuntimeError, match="outside of request context"):
        request.method  # noqa: B018
    with pytest.raises(RuntimeError, match="outside of application context"):
        g.get("x")
    assert type(request).__name__ == "DirectProxy"
    assert request.__class__ is DirectProxy  # werkzeug's fallback when nothing is bound
    assert "unbound" in repr(request)


def test_a_logged_in_users_attributes_come_through(client, auth):
    auth.login("township_mediator")
    with client:
        assert client.get("/").status_code == 200
        assert current_user.is_authenticated
        assert current_user.username == "township_mediator" and current_user.role == "township_mediator"
        assert current_user._get_current_object() is flask_login.utils._get_user()
        assert current_user.org.code and current_user.can("cases.view")

"""Attribute reads through Flask's and Flask-Login's context proxies without a thrown-away
exception.

``current_user``, ``request``, ``g``, ``session`` and ``current_app`` are werkzeug
``LocalProxy`` objects.  A proxy answers ``proxy.name`` in its ``__getattr__``, which Python
calls only after the ordinary lookup on the proxy itself has failed: every read first builds an
``AttributeError`` (its message formatted) and discards it, then werkzeug binds ``getattr`` to
the current object with a ``functools.partial`` and calls it.  A case page reads through the
proxies some 120 times (each ``current_user.x`` twice: Flask-Login's ``_get_user`` reads
``g._login_user`` through the ``g`` proxy), ~5 % of its CPU (callgrind: PyErr_Format).

``install()`` changes the class of those proxy objects, in place, to ``DirectProxy``: a
``LocalProxy`` subclass with no fields of its own whose ``__getattribute__`` reads an ordinary
name straight from the current object.  Everything else is werkzeug's: the proxy's own fields,
special names (``__class__``, ``__doc__``, ``__html__`` …, with werkzeug's fallbacks when no
context is bound), assignment and deletion, operators.  Outside a context an ordinary name
raises werkzeug's RuntimeError as before.  The objects are changed, not replaced, so every
module that imported them by name sees the change.  ``tests/test_proxies.py`` checks both.
"""
from __future__ import annotations

from flask import current_app
from flask.globals import _cv_app, _cv_request
from werkzeug.local import LocalProxy

_OWN = frozenset({"_get_current_object", "_LocalProxy__wrapped"})
_get = object.__getattribute__


class DirectProxy(LocalProxy):
    """A werkzeug ``LocalProxy`` whose ordinary attribute reads go straight to the object."""

    __slots__ = ()

    def __getattribute__(self, name: str):
        if name in _OWN or name[:2] == "__":
            return _get(self, name)  # werkzeug's own lookup (its __getattr__ after a miss)
        return getattr(_get(self, "_get_current_object")(), name)


def install() -> None:
    """Give the context proxies of Flask and Flask-Login the ``DirectProxy`` class, and
    ``current_user`` the direct reading of ``logged_in_user`` (idempotent)."""
    import flask
    import flask.globals
    import flask_login
    import flask_login.utils
    for module in (flask, flask.globals, flask_login, flask_login.utils):
        for value in list(vars(module).values()):
            if type(value) is LocalProxy:
                # object's own __class__ setter: LocalProxy's class attribute of that name (a
                # werkzeug lookup) hides it from plain assignment
                _SET_CLASS(value, DirectProxy)
    object.__setattr__(flask_login.utils.current_user, "_get_current_object", logged_in_user)


def logged_in_user():
    """What Flask-Login's ``_get_user`` answers (the request's user, loaded at the first use;
    None outside a request), read from the application context's globals directly instead of
    through the ``g`` proxy twice: ``current_user`` is read some 25 times a case page."""
    if _cv_request.get(None) is None:
        return None
    store = _cv_app.get().g.__dict__
    if "_login_user" not in store:
        current_app.login_manager._load_user()  # sets g._login_user
    return store["_login_user"]


_SET_CLASS = object.__dict__["__class__"].__set__

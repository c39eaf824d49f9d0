"""Templates compiled once per language, with their fixed strings already translated.

A template says ``{{ _('基本情况') }}`` some 1,200 times across the app, a case page about 90
times.  At run time each is a call through Jinja's context, a catalogue lookup and an escape;
together about a tenth of the CPU a case page costs.  The text of ``_('…')`` with a plain
string literal and nothing else is the same for every request in one language, so it can be
looked up when the template is compiled instead:

* ``LocaleEnvironment`` is the app's Jinja environment (``Flask.jinja_environment``).  Inside a
  request it hands out templates from an *overlay* environment of the request's language (one
  per language, each with its own template cache and no bytecode cache, so the languages never
  mix); templates that include or extend others load them from the same overlay.  Outside a
  request (CLI, e-mail-less jobs) it compiles as Jinja always does: ``_()`` at run time.
* ``FoldTranslations`` is the Jinja extension that, in such an overlay, rewrites the tokens
  ``_ ( 'literal' )`` into the string ``'translation'`` before parsing.  Jinja then treats it as
  any constant: ``{{ _('基本情况') }}`` becomes part of the template's static text.

What is folded is exactly what the run-time ``_()`` (``app.templating.template_gettext``) would
give: a string that needs escaping (``<``, ``&``, quotes), a ``%`` in the text, keyword
arguments or a non-literal argument stay run-time calls, so the output is byte for byte the same
(``tests/test_template_i18n.py`` renders every page both ways).  A translation changed on disk
is seen after a restart, as Flask-Babel's own cache of the catalogue already requires.
``FOLD_TEMPLATE_TRANSLATIONS = False`` in the config turns it off (the test compares both).
"""
from __future__ import annotations

from types import BuiltinFunctionType, FunctionType, MethodType

from flask.globals import _cv_request
from flask_babel import get_locale, get_translations
from flask.templating import Environment as FlaskEnvironment
from jinja2.ext import Extension
from jinja2.environment import Template
from jinja2.runtime import Context
from jinja2.lexer import (TOKEN_DOT, TOKEN_LBRACKET, TOKEN_LPAREN, TOKEN_MOD, TOKEN_NAME, TOKEN_RPAREN,
                          TOKEN_STRING, Token)
from markupsafe import Markup, escape

try:  # markupsafe's own escaping of a str (its C speedup), which ``escape`` calls
    from markupsafe import _escape_inner
except ImportError:  # pragma: no cover - another markupsafe: escape as it does
    def _escape_inner(value: str) -> str:
        return str(escape(value))

# the name templates translate with (app.templating installs template_gettext under it)
GETTEXT_NAME = "_"


_DICT_ATTRIBUTES = frozenset(dir(dict))


class DirectCallContext(Context):
    """Jinja's template context, calling plain functions and methods without Jinja's probe.

    Every call in a template (``case_link(...)``, ``vocab.label(...)``, a filter's helper)
    goes through ``Context.call``, which asks the callable twice whether it carries
    ``jinja_pass_arg`` (``pass_context`` and its kin) — ``hasattr`` on the object and on its
    ``__call__``.  For a bound method the miss is an ``AttributeError`` built, message and
    all, then thrown away: some 160 per case page, ~3 % of its CPU (callgrind).  A plain
    function keeps such a mark in its ``__dict__`` (a bound method in its function's, a
    builtin can carry none), so it is read there with no exception; a marked callable, and
    anything else (macros, classes, callable objects), goes through Jinja's own ``call``."""

    def call(__self, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        kind = type(__obj)
        if kind is MethodType:
            function = __obj.__func__
            if type(function) is not FunctionType or "jinja_pass_arg" in function.__dict__:
                return Context.call(__self, __obj, *args, **kwargs)
        elif kind is FunctionType:
            if "jinja_pass_arg" in __obj.__dict__:
                return Context.call(__self, __obj, *args, **kwargs)
        elif kind is not BuiltinFunctionType:
            return Context.call(__self, __obj, *args, **kwargs)
        if kwargs:
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
        try:
            return __obj(*args, **kwargs)
        except StopIteration:  # as Jinja answers it
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception")


_new_str = str.__new__


def direct_escape(value) -> Markup:
    """``markupsafe.escape`` as autoescaped templates call it for every ``{{ … }}``, with the
    two commonest kinds made without ``Markup.__new__``'s Python frame (which only checks for
    ``__html__``, which a plain str or int has not): a str is escaped by markupsafe's own C
    function, an int needs no escaping.  Anything else goes to ``markupsafe.escape``."""
    kind = type(value)
    if kind is str:
        return _new_str(Markup, _escape_inner(value))
    if kind is int:
        return _new_str(Markup, str(value))
    return escape(value)


class DirectEscapeTemplate(Template):
    """Jinja's template whose compiled code escapes with ``direct_escape``."""

    @classmethod
    def from_code(cls, environment, code, globals, uptodate=None):
        template = super().from_code(environment, code, globals, uptodate)
        # the compiled code's module namespace, where its render functions look the name up
        # at each call
        namespace = template.root_render_func.__globals__
        if "escape" in namespace:
            namespace["escape"] = direct_escape
        return template


class LocaleEnvironment(FlaskEnvironment):
    """Flask's environment, choosing a per-language overlay for templates loaded in a request."""

    context_class = DirectCallContext
    template_class = DirectEscapeTemplate
    folded_locale: str | None = None  # set on the overlays only
    folded_translations = None

    def getattr(self, obj, attribute):
        """``obj.attribute`` in a template, as Jinja answers it, without its exception for a
        plain dict's key: Jinja tries the attribute first and catches the ``AttributeError``
        before it reads the key, and the pages read context dicts that way ~90 times each (the
        navigation's entries, the case page's sections).  A ``dict`` (not a subclass) has no
        attributes but its type's, so a name that is not one of those can only be a key."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        # the rest is ``jinja2.Environment.getattr`` as written (Jinja 3.1), inlined: this runs
        # some three hundred times a page
        try:
            return getattr(obj, attribute)
        except AttributeError:
            pass
        try:
            return obj[attribute]
        except (TypeError, LookupError, AttributeError):
            return self.undefined(obj=obj, name=attribute)

    def make_globals(self, d):
        """A template's globals: this environment's own dict when the template adds none (every
        template here: ``render_template``, includes and imports pass none), else Jinja's
        ``ChainMap`` overlay.

        Why: Jinja copies a template's globals into each render's context, takes their names
        once more for the context and, at every ``{% from … import … %}``, the difference of
        two such name sets; over a ``ChainMap`` each of these walks both maps in Python, ~2 %
        of a case page.  Over the dict they are C copies.  The environment's globals stay live
        for every template (the same dict); nothing writes a template's globals but
        ``get_template``/``from_string`` called with globals of their own, which take the
        ``ChainMap`` path."""
        if not d:
            return self.globals
        return super().make_globals(d)

    def _load_template(self, name, globals):
        if self.folded_locale is None:
            overlay = self._overlay_for_request()
            if overlay is not None:
                return overlay._load_template(name, globals)
        if globals:
            # Jinja would update the cached template's globals, here this environment's own
            # (``make_globals``): a template with globals of its own is loaded apart, uncached
            return self.loader.load(self, name, self.make_globals(globals))
        return super()._load_template(name, globals)

    def _overlay_for_request(self) -> "LocaleEnvironment | None":
        ctx = _cv_request.get(None)
        if ctx is None or not ctx.app.config.get("FOLD_TEMPLATE_TRANSLATIONS", True):
            return None
        # a page loads half a dozen templates (layout, macros, the case page's sections): the
        # overlay is found once per request
        from app.templating import request_memo  # app.templating is loaded after this module
        memo = request_memo()
        key = ("template_overlay", id(self))
        if key in memo:
            return memo[key]
        overlay = memo[key] = self._overlay_for_locale()
        return overlay

    def _overlay_for_locale(self) -> "LocaleEnvironment | None":
        locale = get_locale()
        if locale is None:
            return None
        key = str(locale)
        overlays = self.__dict__.setdefault("_locale_overlays", {})
        overlay = overlays.get(key)
        if overlay is None:
            # own cache (not a copy of this one's, whose templates are not folded), no bytecode
            # cache (its key is the source, the same in every language)
            overlay = self.overlay(cache_size=400, bytecode_cache=None)
            overlay.folded_locale = key
            overlay.folded_translations = get_translations()
            overlays[key] = overlay
        return overlay


class FoldTranslations(Extension):
    """Rewrites ``_('literal')`` into the translated literal in a per-language environment."""

    def filter_stream(self, stream):
        translations = getattr(self.environment, "folded_translations", None)
        if translations is None:
            yield from stream
            return
        tokens = list(stream)  # one template's tokens: a few thousand at most
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if _is_literal_call(tokens, i):
                folded = fold(translations, tokens[i + 2].value)
                if folded is not None:
                    yield Token(token.lineno, TOKEN_STRING, folded)
                    i += 4
                    continue
            yield token
            i += 1


# After ``_('…')`` these would act on the call's Markup differently than on a plain string
# (``Markup.format`` and ``%`` escape their arguments, a str does not): not folded.
_NOT_AFTER = {TOKEN_DOT, TOKEN_MOD, TOKEN_LBRACKET, TOKEN_LPAREN}


def _is_literal_call(tokens: list[Token], i: int) -> bool:
    """``tokens[i:i + 4]`` is ``_ ( <string> )``, not an attribute (``x._('…')``) and not
    followed by something that treats its Markup specially."""
    if i + 3 >= len(tokens):
        return False
    name, lparen, string, rparen = tokens[i:i + 4]
    return (name.type == TOKEN_NAME and name.value == GETTEXT_NAME
            and lparen.type == TOKEN_LPAREN and string.type == TOKEN_STRING and rparen.type == TOKEN_RPAREN
            and (i == 0 or tokens[i - 1].type != TOKEN_DOT)
            and (i + 4 >= len(tokens) or tokens[i + 4].type not in _NOT_AFTER))


def fold(translations, msgid: str) -> str | None:
    """The text ``_(msgid)`` shows, or None when it must stay a run-time call (it would need
    escaping, whose output differs between a constant and the call's Markup, or has a ``%``)."""
    text = translations.ugettext(msgid)
    if "%" in text or str(escape(text)) != text:
        return None
    return text

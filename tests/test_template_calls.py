"""Templates call functions through ``app.template_i18n.DirectCallContext``: plain functions,
bound methods and builtins directly, everything else (and anything marked ``pass_context``,
``pass_eval_context`` or ``pass_environment``) through Jinja's own ``Context.call``.  The output
must be what Jinja's stock context gives for every kind of callable."""
from __future__ import annotations

from jinja2 import Environment, pass_context, pass_environment, pass_eval_context
from jinja2.runtime import Context

from app.template_i18n import DirectCallContext, LocaleEnvironment


@pass_context
def who(ctx, suffix=""):
    return f"{ctx.get('name')}{suffix}"


@pass_eval_context
def autoescaping(eval_ctx):
    return f"autoescape={eval_ctx.autoescape}"


@pass_environment
def env_kind(env):
    return env.context_class.__name__


def plain(a, b=1):
    return a + b


def stops():
    raise StopIteration


class Helpers:
    factor = 3

    def times(self, x):
        return x * self.factor

    @pass_context
    def greet(self, ctx):
        return "hi " + ctx.get("name")


class CallableWithContext:
    @pass_context
    def __call__(self, ctx):
        return "called with " + ctx.get("name")


class PlainCallable:
    def __call__(self, x):
        return x + 100


SOURCE = """{% macro m(x) %}[{{ x }}]{% endmacro -%}
{{ plain(1) }} {{ plain(1, b=5) }} {{ h.times(2) }} {{ h.greet() }} {{ who() }} {{ who('!') }}
{{ autoescaping() }} {{ d.get('k') }} {{ d.get('none', 'dflt') }} {{ 'x'.upper() }} {{ len(d) }}
{{ m(7) }} {{ cwc() }} {{ pc(1) }} {{ ns(a=1).a }}
{% for i in [1, 2] %}{{ who(loop.index|string) }}{% set inner = i %}{% endfor %}
{{ stops() is undefined }}"""


def _render(env) -> str:
    from jinja2.utils import Namespace
    return env.from_string(SOURCE).render(
        plain=plain, h=Helpers(), who=who, autoescaping=autoescaping, d={"k": "v"}, len=len,
        cwc=CallableWithContext(), pc=PlainCallable(), ns=Namespace, stops=stops, name="张三")


def test_every_kind_of_callable_renders_as_with_jinjas_own_context():
    stock = Environment(autoescape=True)
    direct = Environment(autoescape=True)
    direct.context_class = DirectCallContext
    assert stock.context_class is Context
    expected = _render(stock)
    assert "hi 张三" in expected and "called with 张三" in expected and "张三1" in expected
    assert _render(direct) == expected


def test_the_apps_environment_uses_it(app):
    assert LocaleEnvironment.context_class is DirectCallContext
    assert isinstance(app.jinja_env.from_string("").new_context(), DirectCallContext)
    with app.test_request_context("/"):
        assert app.jinja_env.from_string("{{ f() }}").render(f=env_kind) == "DirectCallContext"


def test_templates_share_the_environments_globals_and_own_ones_stay_apart(app):
    env = app.jinja_env
    assert env.get_template("macros.html").globals is env.globals  # live: one dict
    own = env.get_template("macros.html", globals={"qy_test_only": 1})
    assert own.globals["qy_test_only"] == 1 and own is not env.get_template("macros.html")
    assert "qy_test_only" not in env.globals
    assert env.from_string("{{ qy_test_only }}", globals={"qy_test_only": 2}).render() == "2"
    assert "qy_test_only" not in env.globals


def test_each_environment_keeps_its_own_loaded_templates(app):
    """A language's overlay starts as a copy of the app's environment: the templates it loads
    (translations folded in) are its own, never the plain ones loaded outside a request."""
    env = app.jinja_env
    plain = env.get_template("cases/detail.html")  # outside a request: not folded
    assert env.get_template("cases/detail.html") is plain
    with app.test_request_context("/"):
        folded = env.get_template("cases/detail.html")
        overlay = env._overlay_for_request()
    assert folded is not plain and folded.environment is overlay and plain.environment is env


class _Html:
    def __html__(self):
        return "<b>safe</b>"


class _Text(str):
    pass


def test_direct_escape_is_markupsafes_escape():
    from datetime import date
    from decimal import Decimal

    from markupsafe import Markup, escape

    from app.template_i18n import direct_escape
    for value in ["", "张三 <b>&\"'", "plain", 0, -12, 3.5, Decimal("1.50"), None, True, date(2026, 12, 7),
                  Markup("<i>x</i>"), _Html(), _Text("<a>")]:
        got, want = direct_escape(value), escape(value)
        assert type(got) is type(want) is Markup and str(got) == str(want), value


def test_the_apps_templates_escape_with_it(app):
    from app.template_i18n import direct_escape
    template = app.jinja_env.get_template("cases/detail.html")
    assert template.root_render_func.__globals__["escape"] is direct_escape
    rendered = app.jinja_env.from_string("{{ x }}|{{ n }}|{{ m }}").render(x="<张三&>", n=7, m=__import__("markupsafe").Markup("<i>"))
    assert rendered == "&lt;张三&amp;&gt;|7|<i>"

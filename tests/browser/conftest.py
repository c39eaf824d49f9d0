"""Browser-test fixtures: a live server on its own SQLite file, and Playwright on Debian's chromium.

Fixtures
--------
``live_server`` (session)
    The app served by werkzeug's ``make_server`` in a thread on a free 127.0.0.1 port, against
    its OWN SQLite file (schema from the models, the demo county seeded without cases,
    committed).  Attributes: ``url`` (``http://127.0.0.1:PORT``), ``app`` (the Flask app),
    ``engine``, and ``db()``: a context manager yielding a session on that database inside an
    app context, committed on exit::

        def test_x(live_server, page):
            with live_server.db() as s:
                s.add(SomeRow(...))            # committed when the block ends
            page.goto("/some/page")

    (``from app.db import session`` inside the block is the same session.)  The data stays for
    the rest of the run: give what you add unique names.  Each request of the server runs on a
    session bound to this database whatever the rest of the suite does with ``app.db.session``.
``live_app`` (session)
    ``live_server.app``.
``browser`` (module)
    A headless chromium (``/usr/bin/chromium``) through Playwright.  Missing chromium or
    Playwright: the test fails when ``REQUIRE_BROWSER=1`` (CI), is skipped otherwise.  Module
    scope, so a test module that drives its own ``sync_playwright()`` never overlaps ours.
``page`` (function)
    A page in a fresh browser context (own cookies), 1280×900, whose ``base_url`` is the live
    server: ``page.goto("/login")`` works.
``make_page`` (function)
    ``make_page(width=390, height=844)`` → another fresh page (e.g. a phone), closed afterwards.

Helper: ``login(page, username, password=DEMO_PASSWORD)`` logs in through the form, completes
the second factor for ``admin`` (enrolment at the first login, then a code computed from the
secret in the database), and waits for the 工作台 (``from tests.browser.conftest import login``).
``open_action(page, name)`` opens a workflow-panel action's form and waits until Bootstrap's
collapse has finished opening (a click into a form still animating can be lost: the mediation
test's 受理 was, now and then, with no POST sent); ``submit(page, form)`` posts it and waits for
the page it leads to.

Every test under tests/browser/ is marked ``browser`` (``make test`` runs them on SQLite only).
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from app import db as app_db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEMO_PASSWORD = "Qingyuan@2026"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


class LiveServer:
    """The running server: ``url``, ``app``, ``engine`` and ``db()`` (see the module docstring)."""

    def __init__(self, app, engine, url: str):
        self.app, self.engine, self.url = app, engine, url

    def __str__(self) -> str:
        return self.url

    def new_session(self):
        return app_db.session.session_factory(bind=self.engine, join_transaction_mode="conditional_savepoint")

    @contextmanager
    def db(self):
        """A session on the live database in an app context of the live app; commits on exit."""
        with self.app.app_context():
            s = self.new_session()
            app_db.session.registry.set(s)
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise
            finally:
                app_db.session.remove()


def _bind_each_request(live: LiveServer):
    """WSGI middleware: every request thread gets a session bound to the live database (the
    scoped session's global bind belongs to the rest of the suite)."""
    inner = live.app.wsgi_app

    def wsgi(environ, start_response):
        app_db.session.registry.set(live.new_session())
        return inner(environ, start_response)

    return wsgi


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    from werkzeug.serving import make_server

    from app import create_app
    from app.demo.seed import seed_demo

    base = tmp_path_factory.mktemp("live")
    previous_bind = app_db.session.session_factory.kw.get("bind")
    application = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{base / 'live.db'}",
                              "UPLOAD_DIR": str(base / "uploads"), "SERVER_NAME": None})
    engine = app_db.get_engine(application)
    app_db.session.configure(bind=previous_bind)  # create_app rebinds the global session: undo
    live = LiveServer(application, engine, "")
    app_db.Base.metadata.create_all(engine)
    with live.db():
        seed_demo(with_cases=False, echo=lambda *_: None)
    application.wsgi_app = _bind_each_request(live)
    server = make_server("127.0.0.1", 0, application, threaded=True)
    live.url = f"http://127.0.0.1:{server.server_port}"
    _LIVE["server"] = live
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield live
    server.shutdown()
    thread.join(timeout=5)
    engine.dispose()


@pytest.fixture(scope="session")
def live_app(live_server):
    return live_server.app


def _unavailable(reason: str):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required (REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def make_page(browser, live_server):
    # ``make test`` runs the PostgreSQL pass beside this one on the same two cores: give
    # ``expect`` assertions as long as actions (Playwright's default is 5 s)
    from playwright.sync_api import expect
    expect.set_options(timeout=15_000)
    contexts = []

    def make(width: int = 1280, height: int = 900, **options):
        context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height},
                                      locale="zh-CN", **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture()
def page(make_page):
    return make_page()


def login(page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the login form and wait until the 工作台 (or the ``next`` page) is shown.

    A user with a second factor (or whose role requires one: ``admin``) gets the code or the
    enrolment page next; ``finish_second_factor`` completes it as their authenticator would."""
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url or "/login/" in url)
    finish_second_factor(page, username, _LIVE.get("server"))
    page.wait_for_url(lambda url: "/login" not in url)


_LIVE: dict = {}  # the shared live server, for the code step (see ``live_server``)


def finish_second_factor(page, username: str, live=None) -> None:
    """On the enrolment page, read the secret shown and confirm a code; on the code page, read
    the secret from ``live``'s database.  Does nothing on any other page."""
    import pyotp

    from tests.conftest import next_totp_code
    path = page.url.split("?")[0]
    if path.endswith("/login/totp-setup"):
        secret = page.locator("[data-testid=totp-secret]").inner_text().strip()
        code = pyotp.TOTP(secret).now()
    elif path.endswith("/login/code"):
        if live is None:
            raise RuntimeError(f"{username} has a second factor: pass the live server to read its secret")
        from sqlalchemy import select

        from app.accounts.models import User
        with live.db() as s:
            code = next_totp_code(s.scalar(select(User).where(User.username == username)))
    else:
        return
    page.fill("input[name=code]", code)
    page.click("button[type=submit]")


def open_action(page, name):
    """The form of workflow action ``name`` on a case page, opened and fully shown."""
    page.click(f"button[data-action={name}]")
    form = page.locator(f"form[data-testid=form-{name}]")
    form.wait_for(state="visible")
    # Bootstrap's collapse animates its height: click into the form only once it is fully open
    # ("collapse show", no longer "collapsing"), which takes longer on a loaded machine
    page.locator(f"#wf-{name}.collapse.show").wait_for(state="visible")
    return form


def submit(page, form):
    """Post the form and wait for the page it leads to (not just the current load state)."""
    with page.expect_navigation():
        form.locator("button[type=submit]").click()

"""Browser: the admin's first login enrols the second factor (QR code and secret shown, no
script needed), the next login asks for a code; both through the shared ``login`` helper."""
from __future__ import annotations

from sqlalchemy import select

from tests.browser.conftest import login


def test_admin_enrols_then_logs_in_with_a_code(live_server, make_page):
    from app.accounts.models import User
    first = make_page()
    first.goto("/login")
    first.fill("input[name=username]", "admin")
    first.fill("input[name=password]", "Qingyuan@2026")
    first.click("button[type=submit]")
    first.wait_for_url("**/login/totp-setup")
    assert first.locator("[data-testid=totp-qr] svg").count() == 1
    assert first.locator("[data-testid=totp-uri]").inner_text().startswith("otpauth://totp/")
    login(first, "admin")  # the helper finishes the enrolment shown on the page
    first.goto("/admin/users")
    assert first.locator("h1").first.is_visible()
    with live_server.db() as s:
        assert s.scalar(select(User).where(User.username == "admin")).totp_enabled
    second = make_page()
    login(second, "admin")  # now the code step
    second.goto("/admin/users")
    assert "/admin/users" in second.url

"""The audit trail: logins and failures are recorded; only the admin can search it; no route edits it."""


def test_failed_and_successful_login_are_audited_and_searchable(client, auth):
    auth.login("village_mediator", "wrong-password-123")
    auth.login("admin")
    page = client.get("/admin/audit/?action=login").get_data(as_text=True)
    assert "login.failed" in page
    assert "<code>login</code>" in page
    filtered = client.get("/admin/audit/?action=login.failed").get_data(as_text=True)
    assert "<code>login</code>" not in filtered and "login.failed" in filtered


def test_audit_page_is_admin_only(client, auth):
    auth.login("county_supervisor")
    assert client.get("/admin/audit/").status_code == 403


def test_audit_page_rejects_bad_dates_with_chinese_message(client, auth):
    auth.login("admin")
    page = client.get("/admin/audit/?from=2026-13-45").get_data(as_text=True)
    assert "格式应为 YYYY-MM-DD" in page


def test_no_route_can_change_audit_records(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("audit."):
            assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule

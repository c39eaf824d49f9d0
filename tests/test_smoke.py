"""The app starts, the login wall works, a demo user reaches the 工作台."""


def test_anonymous_redirected_to_login(client):
    resp = client.get("/")
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"]


def test_login_and_workbench(client, auth):
    resp = auth.login("township_mediator")
    assert resp.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "工作台" in page
    assert "李调解" in page

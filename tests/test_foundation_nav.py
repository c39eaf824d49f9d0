"""Each demo role's navigation shows the pages that role uses and none of the others'
(PRODUCT.md §1).  Endpoints not in this build are left out of both lists."""
from __future__ import annotations

import re

import pytest
from flask import url_for

ADMIN_PAGES = {"orgs.tree", "admin.users", "admin.settings", "workflow.calendar", "workflow.routing"}
ALL_ROLES = ["admin", "county_supervisor", "county_leader", "township_director", "township_secretary",
             "township_mediator", "village_mediator", "grid_worker", "dept_liaison"]

# role: (links it must show, links it must not show) — beyond the admin pages, shown to admin only.
EXPECTED = {
    "admin": ({"home.index"} | ADMIN_PAGES | {"audit.index"},
              {"cases.new", "reception.index", "workflow.sign_off_queue", "workflow.department_queue"}),
    "county_supervisor": ({"home.index", "cases.index", "workflow.high_risk_board", "workflow.supervision_index",
                           "reports.monthly"},
                          {"workflow.sign_off_queue", "workflow.department_queue", "audit.index"}),
    "county_leader": ({"home.index", "cases.index", "workflow.high_risk_board", "reports.monthly"},
                      {"cases.new", "reception.index", "workflow.supervision_index", "workflow.department_queue",
                       "audit.index"}),
    "township_director": ({"home.index", "cases.index", "cases.new", "reception.index", "reports.monthly"},
                          {"workflow.department_queue", "workflow.high_risk_board", "audit.index"}),
    "township_secretary": ({"home.index", "cases.index", "workflow.sign_off_queue"},
                           {"cases.new", "reception.index", "workflow.department_queue", "audit.index"}),
    "township_mediator": ({"home.index", "cases.index", "cases.new", "reception.index"},
                          {"workflow.sign_off_queue", "workflow.department_queue", "workflow.high_risk_board",
                           "workflow.supervision_index", "audit.index"}),
    "village_mediator": ({"home.index", "cases.index", "cases.new"},
                         {"workflow.sign_off_queue", "workflow.department_queue", "workflow.high_risk_board",
                          "workflow.supervision_index", "audit.index"}),
    "grid_worker": ({"home.index", "cases.new"},
                    {"reception.index", "reports.monthly", "workflow.sign_off_queue", "workflow.department_queue",
                     "workflow.high_risk_board", "workflow.supervision_index", "audit.index"}),
    "dept_liaison": ({"home.index", "workflow.department_queue"},
                     {"cases.new", "reception.index", "reports.monthly", "workflow.sign_off_queue",
                      "workflow.high_risk_board", "workflow.supervision_index", "audit.index"}),
}


def nav_links(html: str) -> set[str]:
    nav = re.search(r'data-testid="main-nav">(.*?)</ul>', html, re.S)
    assert nav, "no main navigation on the page"
    return set(re.findall(r'href="([^"]+)"', nav.group(1)))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_navigation_shows_only_the_roles_pages(app, client, auth, role):
    must, must_not = EXPECTED[role]
    if role != "admin":
        must_not = must_not | ADMIN_PAGES
    auth.login(role)
    resp = client.get("/")
    assert resp.status_code == 200
    links = nav_links(resp.get_data(as_text=True))
    with app.test_request_context():
        def url(endpoint):
            return url_for(endpoint)
        present = {e for e in must if e in app.view_functions}
        absent = {e for e in must_not if e in app.view_functions}
        for endpoint in present:
            assert url(endpoint) in links, f"{role} should see {endpoint}"
        for endpoint in absent:
            assert url(endpoint) not in links, f"{role} should not see {endpoint}"
    assert present >= {"home.index"}


@pytest.mark.parametrize("role", [r for r in ALL_ROLES if r != "admin"])
def test_admin_pages_refused_to_other_roles(client, auth, role):
    auth.login(role)
    for path in ("/admin/orgs/", "/admin/users", "/admin/settings"):
        assert client.get(path).status_code == 403


def test_workbench_names_the_user_role_and_unit(client, auth):
    auth.login("dept_liaison")
    html = client.get("/").get_data(as_text=True)
    assert "刘所长" in html and "部门联络员" in html and "南湖镇司法所" in html

"""Authorization proven (issue 9): every route of the URL map and every API endpoint, as every
demo role and as an anonymous visitor, for an object INSIDE and one OUTSIDE the role's
jurisdiction, against the expectation table ``ROUTES`` written from PRODUCT.md §1 and the code.

- A route of the URL map without an entry in ``ROUTES`` fails the test: nobody adds an unchecked
  route.  An entry whose route is gone fails it too (the table stays true).
- GET: the status must be the table's (200 allowed, 403 forbidden, 404 outside the jurisdiction:
  a case outside answers exactly like one that does not exist; 302 to the login page for an
  anonymous visitor, 401 for the API without a token).
- POST: every (role, object) the table refuses is posted with a valid CSRF token and a body that
  would otherwise do something; the refusal status must be the table's and no row of the
  database may change.  Allowed POSTs are left to the feature tests (they change state).

"Outside" is the nearest place the role may not see: a county role → a case (sweep, visit,
roster member, report org) in another county; a township role → another township of the same
county; a village role or a department liaison → another village of the same township (the
liaison's inside case is one transferred to its 司法所).

The leak checks (lists, search, exports, reports, attachments, the API list) follow the walk.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Optional

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app.accounts.services import issue_token
from app.cases.attachments import add_attachment
from app.cases.models import Case, Party
from app.db import Base, session
from app.mediation.models import RosterMember
from app.orgs.services import add_unit
from app.reception.models import ReceptionEntry
from app.screening.models import Sweep
from app.settings.models import DisputeType
from app.templating import today_local
from tests.helpers import csrf_token
from tests.workflow_factories import LIAISON_DEPT, add_task, make_case, org, user

# ---------------------------------------------------------------------------------------------
# Who is who (PRODUCT.md §1; app/accounts/roles.py and the services' own checks)

ROLES = ("admin", "county_supervisor", "county_leader", "township_director", "township_secretary",
         "township_mediator", "village_mediator", "grid_worker", "dept_liaison")
ANON = "anonymous"
ALL = frozenset(ROLES)
COUNTY_ROLES = frozenset({"admin", "county_supervisor", "county_leader"})
TOWNSHIP_ROLES = frozenset({"township_director", "township_secretary", "township_mediator"})
ADMIN = frozenset({"admin"})
REGISTER = frozenset({"county_supervisor", "township_director", "township_mediator", "village_mediator",
                      "grid_worker"})
RECEPTION = frozenset({"county_supervisor", "township_director", "township_mediator", "village_mediator"})
REPORTS = frozenset({"admin", "county_supervisor", "county_leader", "township_director", "township_secretary",
                     "township_mediator", "village_mediator"})
DASHBOARD = frozenset({"county_supervisor", "county_leader"})
LEDGER_IMPORT = frozenset({"admin", "county_supervisor", "township_director"})
LEDGER_EXPORT = frozenset({"admin", "county_supervisor", "township_director", "township_mediator"})
SCREEN_VIEW = frozenset({"county_supervisor", "county_leader", "township_director", "township_secretary",
                         "township_mediator", "village_mediator"})
SCREEN_FILE = frozenset({"village_mediator", "grid_worker"})
UNMASK = frozenset({"county_supervisor", "township_director", "township_mediator", "village_mediator"})
# The inside case is handled at village level: only the village 综治中心 takes centre actions.
VILLAGE_CENTRE = frozenset({"village_mediator"})
MEDIATORS = frozenset({"county_supervisor", "township_director", "township_mediator", "village_mediator"})
ROSTER_EDIT = frozenset({"township_director", "township_mediator", "village_mediator"})
UPLOAD = ALL - {"admin", "county_leader"}  # read-only roles attach nothing
CRIMINAL_FLAG = frozenset({"county_supervisor", "township_director", "township_secretary", "township_mediator"})
SIGN_OFF_QUEUE = frozenset({"township_secretary", "county_leader"})
SUPERVISE = frozenset({"county_supervisor", "township_director"})
HIGH_RISK = frozenset({"county_supervisor", "county_leader"})

MONTH = "2026-10"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass(frozen=True)
class Expect:
    """What one (rule, method) answers.

    ``allow``: roles allowed on an inside object (status ``ok``); any other role gets ``deny``.
    ``outside``: the status with the object outside the role's jurisdiction (None: the route
    names no object).  ``scope_first``: the jurisdiction check runs before the role check, so a
    role without rights also gets ``outside`` for an outside object.  ``anon``: an anonymous
    visitor's status (None: not checked, e.g. the login form's POST)."""

    url: str
    allow: frozenset
    ok: int = 200
    deny: int = 403
    outside: Optional[int] = None
    scope_first: bool = False
    anon: Optional[int] = 302
    form: Optional[dict] = None
    json: Optional[dict] = None
    api: bool = False

    def expected(self, role: str, where: str) -> Optional[int]:
        if role == ANON:
            return self.anon
        allowed = role in self.allow
        if where == "out" and self.outside is not None and (allowed or self.scope_first):
            return self.outside
        return self.ok if allowed else self.deny


def API(url, allow, **kw):
    return Expect(url, allow, api=True, **{"anon": 401, **kw})


REPORT_ARGS = "org={org}&month=" + MONTH
ROUTES: dict[tuple[str, str], Expect] = {
    # accounts
    ("/login", "GET"): Expect("/login", ALL, ok=302, anon=200),
    ("/login", "POST"): Expect("/login", ALL, anon=None),
    ("/logout", "POST"): Expect("/logout", ALL),
    # the second login step answers only a visitor half-way through logging in: anyone else is sent
    # back to the login form
    ("/login/code", "GET"): Expect("/login/code", ALL, ok=302),
    ("/login/code", "POST"): Expect("/login/code", ALL, form={"code": "123456"}),
    ("/login/totp-setup", "GET"): Expect("/login/totp-setup", ALL, ok=302),
    ("/login/totp-setup", "POST"): Expect("/login/totp-setup", ALL, form={"code": "123456"}),
    ("/account/security", "GET"): Expect("/account/security", ALL),
    ("/account/totp/enable", "POST"): Expect("/account/totp/enable", ALL, form={"code": "123456"}),
    ("/account/totp/disable", "POST"): Expect("/account/totp/disable", ALL, form={"code": "123456"}),
    ("/account/password", "GET"): Expect("/account/password", ALL),
    ("/account/password", "POST"): Expect("/account/password", ALL),
    ("/", "GET"): Expect("/", ALL),
    ("/healthz", "GET"): Expect("/healthz", ALL, anon=200),
    # admin: users, settings, org tree, audit, calendar, routing (the admin only; one county per instance)
    ("/admin/users", "GET"): Expect("/admin/users", ADMIN),
    ("/admin/users/new", "GET"): Expect("/admin/users/new", ADMIN),
    ("/admin/users/new", "POST"): Expect("/admin/users/new", ADMIN, form={
        "username": "intruder1", "display_name": "入侵者", "role": "admin", "org_code": "429960",
        "password": "Zx9!intruder-pass", "password2": "Zx9!intruder-pass"}),
    ("/admin/users/<int:user_id>", "GET"): Expect("/admin/users/{user_id}", ADMIN),
    ("/admin/users/<int:user_id>", "POST"): Expect("/admin/users/{user_id}", ADMIN, form={
        "display_name": "被改名", "role": "admin", "org_code": "429960"}),
    ("/admin/users/<int:user_id>/active", "POST"): Expect("/admin/users/{user_id}/active", ADMIN,
                                                         form={"active": "0"}),
    ("/admin/users/<int:user_id>/password", "POST"): Expect("/admin/users/{user_id}/password", ADMIN,
                                                           form={"new_password": "Zx9!intruder-pass"}),
    ("/admin/users/<int:user_id>/sessions", "POST"): Expect("/admin/users/{user_id}/sessions", ADMIN),
    ("/admin/users/<int:user_id>/tokens/<int:token_id>/revoke", "POST"): Expect(
        "/admin/users/{user_id}/tokens/999999/revoke", ADMIN),
    ("/admin/settings", "GET"): Expect("/admin/settings", ADMIN),
    ("/admin/settings/<kind>", "POST"): Expect("/admin/settings/types", ADMIN, form={"name": "入侵类型"}),
    ("/admin/settings/<kind>/<int:entry_id>", "POST"): Expect("/admin/settings/types/{type_id}", ADMIN,
                                                             form={"name": "被改名类型"}),
    ("/admin/settings/deadlines", "POST"): Expect("/admin/settings/deadlines", ADMIN,
                                                  form={"mediation_days": "1"}),
    ("/admin/audit/", "GET"): Expect("/admin/audit/", ADMIN),
    ("/admin/orgs/", "GET"): Expect("/admin/orgs/?unit={org}", ADMIN),
    ("/admin/orgs/add", "POST"): Expect("/admin/orgs/add", ADMIN, form={
        "parent": "429960002", "name": "入侵村", "level": "village"}),
    ("/admin/orgs/rename", "POST"): Expect("/admin/orgs/rename", ADMIN, form={"unit": "{org}", "name": "被改名"}),
    ("/admin/orgs/import", "POST"): Expect("/admin/orgs/import", ADMIN, form={
        "file": "代码,名称,层级,上级代码\n429960002099,入侵村,村,429960002\n"}),
    ("/workflow/calendar", "GET"): Expect("/workflow/calendar", ADMIN),
    ("/workflow/calendar", "POST"): Expect("/workflow/calendar", ADMIN, form={
        "day": "2026-12-25", "kind": "holiday", "name": "入侵假日"}),
    ("/workflow/routing", "GET"): Expect("/workflow/routing", ADMIN),
    ("/workflow/routing", "POST"): Expect("/workflow/routing", ADMIN, form={"type_{type_id}": "派出所"}),
    # cases
    ("/cases/", "GET"): Expect("/cases/", ALL),
    ("/cases/export.xlsx", "GET"): Expect("/cases/export.xlsx", ALL),
    ("/cases/search", "POST"): Expect("/cases/search", ALL, ok=303, form={"q": "越权"}),
    ("/cases/export.xlsx", "POST"): Expect("/cases/export.xlsx", ALL),
    ("/cases/new", "GET"): Expect("/cases/new?reception={entry}", REGISTER, outside=404),
    ("/cases/new", "POST"): Expect("/cases/new", REGISTER, outside=422, form={
        "source": "群众来访", "type": "邻里", "village": "{village}", "summary": "越权登记的纠纷",
        "parties-0-kind": "person", "parties-0-name": "越权", "parties-0-role": "applicant",
        "confirm_duplicates": "1"}),
    ("/cases/<number>", "GET"): Expect("/cases/{case}", ALL, outside=404),
    ("/cases/<number>/edit", "GET"): Expect("/cases/{case}/edit", MEDIATORS, outside=404, scope_first=True),
    ("/cases/<number>/edit", "POST"): Expect("/cases/{case}/edit", MEDIATORS, outside=404, scope_first=True, form={
        "version": "1", "source": "群众来访", "type": "邻里", "summary": "越权修改"}),
    ("/cases/<number>/unmask", "POST"): Expect("/cases/{case}/unmask", UNMASK, outside=404, scope_first=True),
    ("/cases/<number>/attachments", "POST"): Expect("/cases/{case}/attachments", UPLOAD, outside=404,
                                                    scope_first=True, form={"file": PNG}),
    ("/cases/<number>/attachments/<int:attachment_id>", "GET"): Expect(
        "/cases/{case}/attachments/{attachment}", ALL, outside=404),
    # workflow
    ("/workflow/cases/<number>", "GET"): Expect("/workflow/cases/{case}", ALL, outside=404),
    ("/workflow/cases/<number>/actions/<action>", "POST"): Expect(
        "/workflow/cases/{case}/actions/accept", VILLAGE_CENTRE, outside=404, scope_first=True, form={}),
    ("/workflow/department", "GET"): Expect("/workflow/department", frozenset({"dept_liaison"})),
    ("/workflow/sign-offs", "GET"): Expect("/workflow/sign-offs", SIGN_OFF_QUEUE),
    ("/workflow/high-risk", "GET"): Expect("/workflow/high-risk", HIGH_RISK),
    ("/workflow/supervision", "GET"): Expect("/workflow/supervision", SUPERVISE),
    # mediation: the forms show to whoever sees the case; posting is the workflow matrix's
    **{(f"/mediation/cases/<number>/{name}", "GET"): Expect(f"/mediation/cases/{{case}}/{name}", ALL, outside=404)
       for name in ("session", "invite", "agreement", "terminate", "withdraw", "mediator", "follow-up",
                    "confirmation")},
    **{(f"/mediation/cases/<number>/{name}", "POST"): Expect(
        f"/mediation/cases/{{case}}/{name}", allow, outside=404, scope_first=True, form={
            "held_on": "2026-11-01", "place": "村委会", "record": "越权记录", "reason": "越权", "kind": "recusal",
            "result": "pending", "satisfaction": "satisfied", "department": LIAISON_DEPT, "request": "越权"})
       for name, allow in (("session", VILLAGE_CENTRE), ("invite", VILLAGE_CENTRE), ("agreement", VILLAGE_CENTRE),
                           ("terminate", VILLAGE_CENTRE), ("withdraw", VILLAGE_CENTRE), ("mediator", MEDIATORS),
                           ("follow-up", VILLAGE_CENTRE | {"grid_worker"}), ("confirmation", VILLAGE_CENTRE))},
    ("/mediation/cases/<number>/archive", "POST"): Expect("/mediation/cases/{case}/archive", VILLAGE_CENTRE,
                                                          outside=404, scope_first=True, form={}),
    ("/mediation/cases/<number>/documents/<kind>", "GET"): Expect("/mediation/cases/{case}/documents/register",
                                                                  ALL, outside=404),
    ("/mediation/follow-ups", "GET"): Expect("/mediation/follow-ups", ALL),
    ("/mediation/backlog", "GET"): Expect("/mediation/backlog", ALL),
    ("/mediation/roster", "GET"): Expect("/mediation/roster", ALL),
    ("/mediation/roster", "POST"): Expect("/mediation/roster", ROSTER_EDIT, form={
        "kind": "wulao", "name": "越权五老", "org_id": "{village_id}"}),
    ("/mediation/roster/<int:member_id>/deactivate", "POST"): Expect(
        "/mediation/roster/{member}/deactivate", ROSTER_EDIT, outside=404, form={}),
    # reception
    ("/reception/", "GET"): Expect("/reception/", RECEPTION),
    ("/reception/", "POST"): Expect("/reception/", RECEPTION, form={
        "received_at": "2026-11-01T09:00", "visitor_names": "越权", "headcount": "1", "matter": "越权来访",
        "handling": "direct_answer"}),
    # ledger
    ("/ledger/", "GET"): Expect("/ledger/", LEDGER_IMPORT),
    ("/ledger/template.xlsx", "GET"): Expect("/ledger/template.xlsx", LEDGER_IMPORT),
    ("/ledger/preview", "POST"): Expect("/ledger/preview", LEDGER_IMPORT, form={"file": b"PK\x03\x04"}),
    ("/ledger/confirm", "POST"): Expect("/ledger/confirm", LEDGER_IMPORT, form={"token": "x" * 32}),
    ("/ledger/export", "POST"): Expect("/ledger/export", LEDGER_EXPORT, outside=422, form={"org": "{org}"}),
    # reports: an org outside the jurisdiction is refused (403), like the JSON API
    ("/reports/", "GET"): Expect("/reports/?" + REPORT_ARGS, REPORTS, outside=403),
    ("/reports/monthly", "GET"): Expect("/reports/monthly?" + REPORT_ARGS, REPORTS, outside=403),
    ("/reports/period", "GET"): Expect("/reports/period?org={org}&year=2026", REPORTS, outside=403),
    ("/reports/trend.json", "GET"): Expect("/reports/trend.json?" + REPORT_ARGS, REPORTS, outside=403),
    ("/reports/monthly.xlsx", "GET"): Expect("/reports/monthly.xlsx?" + REPORT_ARGS, REPORTS, outside=403),
    ("/reports/cases", "GET"): Expect("/reports/cases?org={org}&figure=registered&from=2026-01-01&to=2026-12-31",
                                      REPORTS, outside=403),
    ("/reports/dashboard", "GET"): Expect("/reports/dashboard", DASHBOARD),
    # screening: an org or sweep outside answers 404
    ("/screening/", "GET"): Expect("/screening/?org={org}", SCREEN_VIEW | SCREEN_FILE, outside=404),
    ("/screening/new", "GET"): Expect("/screening/new", SCREEN_FILE),
    ("/screening/new", "POST"): Expect("/screening/new", SCREEN_FILE, form={
        "swept_on": "2026-11-01", "nil_report": "y", "participants": "越权", "households_visited": "1"}),
    ("/screening/sweeps/<int:sweep_id>", "GET"): Expect("/screening/sweeps/{sweep}", SCREEN_VIEW | SCREEN_FILE,
                                                        outside=404),
    ("/screening/repeats", "GET"): Expect("/screening/repeats", SCREEN_VIEW),
    ("/screening/hotspots", "GET"): Expect("/screening/hotspots?org={org}", SCREEN_VIEW, outside=404),
    ("/screening/hotspots.json", "GET"): Expect("/screening/hotspots.json?org={org}", SCREEN_VIEW, outside=404),
    ("/screening/warnings", "GET"): Expect("/screening/warnings", SCREEN_VIEW),
    ("/screening/cases/<number>/criminal", "POST"): Expect("/screening/cases/{case}/criminal", CRIMINAL_FLAG,
                                                           outside=404, scope_first=True,
                                                           form={"kind": "turned", "ref": "越权"}),
    # the JSON API (bearer token; 401 without one)
    ("/api/v1/openapi.json", "GET"): API("/api/v1/openapi.json", ALL, anon=200),
    ("/api/v1/cases", "GET"): API("/api/v1/cases", ALL),
    ("/api/v1/cases", "POST"): API("/api/v1/cases", REGISTER, outside=422, json={
        "source": "网格上报", "type": "邻里", "village": "{village}", "summary": "越权登记",
        "parties": [{"kind": "person", "name": "越权", "role": "申请人"}]}),
    ("/api/v1/cases/search", "POST"): API("/api/v1/cases/search", ALL, json={"q": "越权"}),
    ("/api/v1/cases/<number>", "GET"): API("/api/v1/cases/{case}", ALL, outside=404),
    ("/api/v1/cases/<number>", "PATCH"): API("/api/v1/cases/{case}", MEDIATORS, outside=404, scope_first=True,
                                             json={"summary": "越权修改", "version": 1}),
    ("/api/v1/cases/<number>/actions", "POST"): API("/api/v1/cases/{case}/actions", VILLAGE_CENTRE, outside=404,
                                                    scope_first=True, json={"action": "accept"}),
    ("/api/v1/reports/monthly", "GET"): API("/api/v1/reports/monthly?" + REPORT_ARGS, REPORTS, outside=403),
    ("/api/v1/reports/period", "GET"): API("/api/v1/reports/period?org={org}&from=2026-01-01&to=2026-12-31",
                                           REPORTS, outside=403),
}


def url_map_routes(app) -> set[tuple[str, str]]:
    """(rule, method) of every route of the app except static files."""
    return {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


# ---------------------------------------------------------------------------------------------
# The places: one inside world, and the three kinds of outside


@dataclass
class World:
    case: str
    case_id: int
    attachment: int
    sweep: int
    entry: int
    member: int
    village: str
    village_id: int
    org: str = ""
    extra: dict = field(default_factory=dict)

    def fmt(self, template: str) -> str:
        return template.format(case=self.case, attachment=self.attachment, sweep=self.sweep, entry=self.entry,
                               member=self.member, village=self.village, village_id=self.village_id, org=self.org,
                               **self.extra)


def build_world(village_code: str, summary: str, *, with_task: bool = False) -> World:
    """A case (village level, 待研判) with a party, an attachment, a sweep, a visit and a roster
    member, all in ``village_code``."""
    v = org(village_code)
    case = make_case("pending_triage", "village", village_code, summary=summary)
    case.parties.append(Party(position=0, kind="person", name=summary + "当事人", role="applicant",
                              id_number="420222199001011234", phone="13800001111"))
    if with_task:
        add_task(case)
    session.flush()
    att = add_attachment(user("village_mediator"), case, io.BytesIO(PNG), "现场照片.png")
    today = today_local()
    start = today.replace(day=1)
    sweep = Sweep(village_id=v.id, township_id=v.township_id, county_id=v.county_id, period_start=start,
                  period_end=start + timedelta(days=27), swept_on=today, nil_report=True, participants="网格员")
    entry = ReceptionEntry(centre_id=v.id, county_id=v.county_id, township_id=v.township_id, village_id=v.id,
                           received_on=today, visitor_names=summary + "来访人", headcount=1, matter=summary,
                           handling="direct_answer")
    member = RosterMember(org_id=v.id, kind="wulao", name=summary + "老党员")
    session.add_all([sweep, entry, member])
    session.flush()
    return World(case=case.number, case_id=case.id, attachment=att.id, sweep=sweep.id, entry=entry.id,
                 member=member.id, village=village_code, village_id=v.id)


def other_county() -> str:
    """A second county (a province-wide deployment holds many) with one township and village."""
    county = add_unit("外县", "county", None, code="429961")
    township = add_unit("外县城关镇", "township", county, code="429961001")
    add_unit("外县东村", "village", township, code="429961001001")
    return "429961001001"


OUTSIDE_KIND = {**{r: "county" for r in COUNTY_ROLES}, **{r: "township" for r in TOWNSHIP_ROLES},
                "village_mediator": "village", "grid_worker": "village", "dept_liaison": "village"}
INSIDE_ORG = {**{r: "429960" for r in COUNTY_ROLES}, **{r: "429960002" for r in TOWNSHIP_ROLES},
              "village_mediator": "429960002001", "grid_worker": "429960002001", "dept_liaison": "429960002001"}
OUTSIDE_ORG = {"county": "429961", "township": "429960003", "village": "429960002002"}


@pytest.fixture()
def worlds(db):
    """The inside world (南湖镇 village 429960002001, transferred to 南湖镇司法所) and the three
    outside ones; objects shared by every world (a user, a dispute type) go in ``extra``."""
    inside = build_world("429960002001", "本村邻里纠纷", with_task=True)
    outs = {"village": build_world("429960002002", "邻村宅基地纠纷"),
            "township": build_world("429960003010", "外镇土地纠纷"),
            "county": build_world(other_county(), "外县债务纠纷")}
    extra = {"user_id": user("village_mediator").id,
             "type_id": session.scalar(select(DisputeType.id).order_by(DisputeType.id))}
    for w in (inside, *outs.values()):
        w.extra = extra
    session.commit()  # into the test's savepoint: a route's rollback must not undo the fixtures
    return inside, outs


def worlds_for(role: str, worlds) -> dict[str, World]:
    inside, outs = worlds
    kind = OUTSIDE_KIND.get(role, "village")
    w_in, w_out = inside, outs[kind]
    w_in.org, w_out.org = INSIDE_ORG.get(role, "429960002001"), OUTSIDE_ORG[kind]
    return {"in": w_in, "out": w_out}


# ---------------------------------------------------------------------------------------------
# "Nothing changed": a digest of every row of every table but the append-only bookkeeping

SKIP_TABLES = re.compile(r"audit|api_token|login|throttl|limit|summary_dirty|case_figure_summary|user_session")
SKIP_COLUMNS = re.compile(r"last_seen|last_login|last_used|failed_|locked_until")


def database_digest() -> str:
    h = hashlib.sha256()
    for name, table in sorted(Base.metadata.tables.items()):
        if SKIP_TABLES.search(name):
            continue
        cols = [c for c in table.columns if not SKIP_COLUMNS.search(c.name)]
        pk = list(table.primary_key.columns) or cols[:1]
        for row in session.execute(select(*cols).order_by(*pk)):
            h.update(repr(tuple(row)).encode())
        h.update(b"|" + name.encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# The walk


def _request(client, exp: Expect, method: str, url: str, token: Optional[str], csrf: Optional[str], w: World):
    headers = {"Authorization": f"Bearer {token}"} if exp.api and token else {}
    if method == "GET":
        return client.get(url, headers=headers)
    if exp.api:
        return client.open(url, method=method, json=_fill(exp.json or {}, w), headers=headers)
    data = {"csrf_token": csrf} if csrf else {}
    for k, v in (exp.form or {}).items():
        if isinstance(v, bytes):
            data[w.fmt(k)] = (io.BytesIO(v), "upload.xlsx" if v.startswith(b"PK") else "photo.png")
        elif k == "file":
            data[k] = (io.BytesIO(v.encode()), "orgs.csv")
        else:
            data[w.fmt(k)] = w.fmt(v)
    return client.post(url, data=data, headers=headers, content_type="multipart/form-data")


def _fill(value, w: World):
    if isinstance(value, str):
        return w.fmt(value)
    if isinstance(value, list):
        return [_fill(v, w) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, w) for k, v in value.items()}
    return value


def _walk(app, client, auth, worlds, role: str) -> list[str]:
    """Every route as ``role``; returns the mismatches."""
    places = worlds_for(role, worlds)
    token = None
    if role != ANON:
        resp = auth.login(role)
        assert resp.status_code == 302, f"{role} could not log in"
        token = issue_token(user(role), "authz test")
        session.commit()  # the token outlives the routes' rollbacks (the test's transaction still ends it)
        csrf = csrf_token(client, "/")
    else:
        csrf = csrf_token(client, "/login")
    problems = []
    digest = None
    # GETs first, then the refused writes: each write is compared with the state just before it.
    for (rule, method), exp in sorted(ROUTES.items(), key=lambda kv: (kv[0][1] != "GET", kv[0])):
        for where, w in places.items():
            if where == "out" and exp.outside is None:
                continue  # the route names no object: inside and outside are the same request
            want = exp.expected(role, where)
            if want is None:
                continue
            if method != "GET" and role != ANON and want == exp.ok:
                continue  # an allowed POST changes state: the feature tests cover it
            url = w.fmt(exp.url)
            if method != "GET" and digest is None:
                digest = database_digest()
            resp = _request(client, exp, method, url, token, csrf, w)
            got = resp.status_code
            if got != want:
                problems.append(f"{method} {url} as {role} ({where}): {got}, expected {want}")
            if method != "GET":
                after = database_digest()
                if after != digest:
                    problems.append(f"{method} {url} as {role} ({where}): refused with {got} but the database changed")
                digest = after
            if role == ANON and method == "GET" and want == 302 and "/login" not in resp.headers.get("Location", ""):
                problems.append(f"GET {url} anonymous: redirected to {resp.headers.get('Location')}, not the login")
    return problems


def test_every_route_has_an_expectation(app):
    """A new route without an entry in ROUTES (or an entry for a route that is gone) fails here."""
    routes = url_map_routes(app)
    missing = sorted(routes - set(ROUTES))
    stale = sorted(set(ROUTES) - routes)
    assert not missing, f"routes without an authorization expectation in tests/test_trust_authz.py: {missing}"
    assert not stale, f"expectations for routes that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES + (ANON,))
def test_every_route_as_every_role(app, client, auth, worlds, role):
    test_every_route_has_an_expectation(app)
    problems = _walk(app, client, auth, worlds, role)
    assert not problems, "authorization table mismatches:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Leaks: lists, search, exports, reports, attachments and the API list show nothing outside


def _login(client, auth, role):
    assert auth.login(role).status_code == 302


def _xlsx_text(data: bytes) -> str:
    wb = load_workbook(io.BytesIO(data))
    return "\n".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
                     if c.value is not None)


LEAK_ROLES = ("county_supervisor", "township_director", "township_mediator", "village_mediator", "grid_worker",
              "dept_liaison", "county_leader", "admin")


@pytest.mark.parametrize("role", LEAK_ROLES)
def test_lists_search_and_exports_show_nothing_outside(app, client, auth, worlds, role):
    places = worlds_for(role, worlds)
    inside, outside = places["in"], places["out"]
    out_summary = session.scalar(select(Case.summary).where(Case.id == outside.case_id))
    in_summary = session.scalar(select(Case.summary).where(Case.id == inside.case_id))
    _login(client, auth, role)
    token = issue_token(user(role))
    session.commit()
    auth_header = {"Authorization": f"Bearer {token}"}

    # The ledger list, unfiltered and searched by the outside case's number, summary and party name.
    def listed(html: str, number: str) -> bool:
        return f'href="/cases/{number}"' in html  # a row links its case (the search term is echoed elsewhere)

    page = client.get("/cases/").get_data(as_text=True)
    assert listed(page, inside.case) and not listed(page, outside.case)
    assert listed(client.get("/cases/", query_string={"q": in_summary}, follow_redirects=True)
                  .get_data(as_text=True), inside.case)
    search_csrf = csrf_token(client, "/cases/")
    for term in (outside.case, out_summary, out_summary + "当事人", out_summary[:2]):
        html = client.get("/cases/", query_string={"q": term}, follow_redirects=True).get_data(as_text=True)
        assert not listed(html, outside.case), f"search {term!r} shows an outside case"
        html = client.post("/cases/search", data={"q": term, "csrf_token": search_csrf},
                           follow_redirects=True).get_data(as_text=True)
        assert not listed(html, outside.case), f"search form {term!r} shows an outside case"
        api = client.get("/api/v1/cases", query_string={"q": term}, headers=auth_header).get_json()
        assert all(item["number"] != outside.case for item in api["items"])
        api = client.post("/api/v1/cases/search", json={"q": term}, headers=auth_header).get_json()
        assert all(item["number"] != outside.case for item in api["items"])
    # Filters naming the outside place do not widen the scope.
    html = client.get("/cases/", query_string={"village": outside.village}).get_data(as_text=True)
    assert not listed(html, outside.case)
    # The API list.
    numbers = {i["number"] for i in client.get("/api/v1/cases?limit=200", headers=auth_header).get_json()["items"]}
    assert inside.case in numbers and outside.case not in numbers
    # The Excel export of the list (GET masked, POST unmasked where allowed).
    exported = _xlsx_text(client.get("/cases/export.xlsx").data)
    assert inside.case in exported and outside.case not in exported and out_summary not in exported
    exported = _xlsx_text(client.post("/cases/export.xlsx", data={"full": "1", "csrf_token": csrf_token(client, "/")})
                          .data)
    assert outside.case not in exported
    # The attachment of the outside case answers 404 (with its real id), and so does the case.
    assert client.get(f"/cases/{outside.case}/attachments/{outside.attachment}").status_code == 404
    assert client.get(f"/cases/{inside.case}/attachments/{outside.attachment}").status_code == 404
    assert client.get(f"/cases/{outside.case}").status_code == 404
    assert client.get(f"/api/v1/cases/{outside.case}", headers=auth_header).status_code == 404
    assert in_summary in client.get(f"/cases/{inside.case}").get_data(as_text=True)
    # ... exactly like a case that does not exist (same status, same page, same JSON).
    missing = "WF-0000000000"
    for url in ("/cases/{}", "/workflow/cases/{}", "/mediation/cases/{}/session"):
        a = client.get(url.format(outside.case))
        b = client.get(url.format(missing))
        assert a.status_code == b.status_code == 404
        def page(resp, number):  # CSRF tokens carry a timestamp
            return re.sub(r'value="[^"]*"', "", resp.get_data(as_text=True).replace(number, "N"))
        assert page(a, outside.case) == page(b, missing)
    a = client.get(f"/api/v1/cases/{outside.case}", headers=auth_header)
    b = client.get(f"/api/v1/cases/{missing}", headers=auth_header)
    assert (a.status_code, a.get_json()) == (b.status_code, b.get_json())
    # The reception log, the roster (even asked for the outside village by id) and the 工作台.
    if role in RECEPTION:
        html = client.get("/reception/").get_data(as_text=True)
        assert in_summary + "来访人" in html and out_summary + "来访人" not in html
    for url in ("/mediation/roster", f"/mediation/roster?org={outside.village_id}"):
        assert out_summary + "老党员" not in client.get(url).get_data(as_text=True), url
    if role not in ("dept_liaison", "admin", "county_leader"):
        assert in_summary + "老党员" in client.get("/mediation/roster").get_data(as_text=True)
    assert f'/cases/{outside.case}"' not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("role", ("county_supervisor", "township_director", "township_mediator", "admin"))
def test_ledger_export_refuses_outside_and_leaks_nothing(app, client, auth, worlds, role):
    places = worlds_for(role, worlds)
    inside, outside = places["in"], places["out"]
    _login(client, auth, role)
    token = csrf_token(client, "/ledger/" if role in LEDGER_IMPORT else "/")
    refused = client.post("/ledger/export", data={"org": outside.org, "csrf_token": token})
    assert refused.status_code == 422 and refused.mimetype == "text/html"
    resp = client.post("/ledger/export", data={"org": inside.org, "csrf_token": token})
    assert resp.status_code == 200
    text_ = _xlsx_text(resp.data)
    in_summary = session.scalar(select(Case.summary).where(Case.id == inside.case_id))
    out_summary = session.scalar(select(Case.summary).where(Case.id == outside.case_id))
    assert in_summary in text_ and out_summary not in text_


@pytest.mark.parametrize("role", ("county_supervisor", "county_leader", "township_director", "township_secretary",
                                  "village_mediator"))
def test_reports_refuse_an_org_outside(app, client, auth, worlds, role):
    places = worlds_for(role, worlds)
    outside = places["out"]
    _login(client, auth, role)
    token = issue_token(user(role))
    session.commit()
    h = {"Authorization": f"Bearer {token}"}
    for url in (f"/reports/monthly?org={outside.org}&month={MONTH}", f"/reports/monthly.xlsx?org={outside.org}",
                f"/reports/trend.json?org={outside.org}",
                f"/reports/cases?org={outside.org}&figure=registered&from=2026-01-01&to=2026-12-31"):
        resp = client.get(url)
        assert resp.status_code == 403, url
        assert resp.mimetype != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    for url in (f"/api/v1/reports/monthly?org={outside.org}&month={MONTH}",
                f"/api/v1/reports/period?org={outside.org}&from=2026-01-01&to=2026-12-31"):
        resp = client.get(url, headers=h)
        assert resp.status_code == 403 and "registered" not in resp.get_json()
    # The drill-down of the role's own org never lists the outside case, whatever its filters.
    inside = places["in"]
    today = date.today()
    html = client.get(f"/reports/cases?org={inside.org}&figure=registered&from={today.year - 1}-01-01"
                      f"&to={today.year}-12-31&township=429960003").get_data(as_text=True)
    assert f'/cases/{outside.case}"' not in html


@pytest.mark.parametrize("role", sorted(LEDGER_IMPORT))
def test_ledger_import_refuses_rows_and_cases_outside(app, client, auth, worlds, role):
    """The ledger upload (preview and the import behind confirm) refuses a row placed outside the
    role's jurisdiction and a row whose 编号 names a case outside it: each named by its cell, no
    confirm offered, no row of the database changed."""
    from app.cases.models import Case as C
    from app.ledger.importer import import_ledger
    from tests.ledger_helpers import good_row, workbook
    places = worlds_for(role, worlds)
    inside, outside = places["in"], places["out"]
    out_village = org(outside.village)
    out_place = {"乡镇": session.get(type(out_village), out_village.township_id).name, "村(社区)": out_village.name}
    in_village = org(inside.village)
    in_place = {"乡镇": session.get(type(in_village), in_village.township_id).name, "村(社区)": in_village.name}
    _login(client, auth, role)
    before = database_digest()
    for rows, cell in (([good_row(编号="IN-1", **in_place), good_row(编号="OUT-1", **out_place)], "矛盾纠纷台账!D3"),
                       ([good_row(编号=outside.case, 简要情况="越权改写", **in_place)], "矛盾纠纷台账!A2")):
        data = workbook(rows).getvalue()
        token = csrf_token(client, "/ledger/")
        resp = client.post("/ledger/preview", data={"csrf_token": token, "file": (io.BytesIO(data), "t.xlsx")},
                           content_type="multipart/form-data")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422 and cell in html and "管辖范围" in html, (role, cell)
        assert 'name="token"' not in html
        report = import_ledger(io.BytesIO(data), "t.xlsx", user=user(role))
        assert any(p.startswith(cell + ":") for p in report.problems), (role, report.problems)
        assert database_digest() == before, role
    assert session.scalar(select(C.summary).where(C.id == outside.case_id)) != "越权改写"

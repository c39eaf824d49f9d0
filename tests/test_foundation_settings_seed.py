"""The admin settings hub (lists, deadlines, links to other settings pages) and the demo seed."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import db as app_db
from app.audit.models import AuditLog
from app.settings.models import CaseSource, DisputeType, RiskFactor
from app.settings.services import active_sources, active_types, get_setting
from tests.helpers import csrf_token


def post(client, path, **data):
    data["csrf_token"] = csrf_token(client, "/admin/settings")
    return client.post(path, data=data)


def test_settings_page_lists_vocabularies_and_deadlines(client, auth, app):
    auth.login("admin")
    html = client.get("/admin/settings").get_data(as_text=True)
    for word in ("邻里", "群众来访", "多次调解未果", "调解期限", "部门反馈期限", "黄牌提前天数"):
        assert word in html
    for endpoint, path in (("workflow.calendar", "/workflow/calendar"), ("workflow.routing", "/workflow/routing")):
        assert (f'href="{path}"' in html) == (endpoint in app.view_functions)


def test_add_rename_deactivate_a_dispute_type(client, auth, db):
    auth.login("admin")
    parent = db.scalar(select(DisputeType).where(DisputeType.name == "消费"))
    assert post(client, "/admin/settings/types", name="预付卡", parent_id=str(parent.id)).status_code == 302
    added = db.scalar(select(DisputeType).where(DisputeType.name == "预付卡"))
    assert added.parent_id == parent.id and added.category == "消费"
    assert post(client, f"/admin/settings/types/{added.id}", name="预付式消费").status_code == 302
    db.refresh(added)
    assert added.name == "预付式消费"
    assert post(client, f"/admin/settings/types/{added.id}", active="0").status_code == 302
    assert "预付式消费" not in [t.name for t in active_types()]
    assert post(client, f"/admin/settings/types/{added.id}", active="1").status_code == 302
    assert "预付式消费" in [t.name for t in active_types()]
    actions = list(db.scalars(select(AuditLog.action).where(AuditLog.object_type == "types").order_by(AuditLog.id)))
    assert actions == ["settings.types.add", "settings.types.rename", "settings.types.deactivate",
                       "settings.types.activate"]


def test_sources_and_risk_factors(client, auth, db):
    auth.login("admin")
    assert post(client, "/admin/settings/sources", name="人民网留言").status_code == 302
    assert "人民网留言" in active_sources()
    src = db.scalar(select(CaseSource).where(CaseSource.name == "其他"))
    post(client, f"/admin/settings/sources/{src.id}", active="0")
    assert "其他" not in active_sources()
    assert post(client, "/admin/settings/risk_factors", name="涉及未成年人", suggests="high").status_code == 302
    assert db.scalar(select(RiskFactor).where(RiskFactor.name == "涉及未成年人")).suggests == "high"


@pytest.mark.parametrize("path,data,message", [
    ("/admin/settings/types", {"name": ""}, "请填写名称"),
    ("/admin/settings/types", {"name": "邻里"}, "已存在"),
    ("/admin/settings/sources", {"name": "网格上报"}, "已存在"),
    ("/admin/settings/risk_factors", {"name": "新因素", "suggests": "extreme"}, "风险等级"),
])
def test_bad_entries_refused(client, auth, db, path, data, message):
    auth.login("admin")
    before = db.scalar(select(func.count(DisputeType.id))) + db.scalar(select(func.count(CaseSource.id)))
    resp = post(client, path, **data)
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    assert db.scalar(select(func.count(DisputeType.id))) + db.scalar(select(func.count(CaseSource.id))) == before


def test_unknown_list_is_404(client, auth):
    auth.login("admin")
    assert post(client, "/admin/settings/colours", name="红").status_code == 404


def deadline_form(**overrides):
    data = {}
    for key in ("mediation", "escalation", "department", "follow_up", "judicial_confirmation"):
        data[f"deadline.{key}.days"] = "30"
        data[f"deadline.{key}.unit"] = "calendar"
    data.update({"deadline.sign_off_hours": "24", "deadline.warn_days": "3"})
    from app.admin.services import deadlines_version
    data["version"] = str(deadlines_version())  # the version the page's form carries
    data.update(overrides)
    return data


def test_deadlines_saved_and_audited(client, auth, db):
    auth.login("admin")
    resp = post(client, "/admin/settings/deadlines", **deadline_form(**{
        "deadline.department.days": "5", "deadline.department.unit": "working", "deadline.warn_days": "2"}))
    assert resp.status_code == 302
    assert get_setting("deadline.department") == {"days": 5, "unit": "working"}
    assert get_setting("deadline.warn_days") == 2
    entry = db.scalar(select(AuditLog).where(AuditLog.action == "settings.deadlines"))
    assert entry.detail["deadline.department"] == [{"days": 7, "unit": "calendar"}, {"days": 5, "unit": "working"}]


@pytest.mark.parametrize("field,value", [("deadline.mediation.days", "0"), ("deadline.mediation.days", "abc"),
                                         ("deadline.escalation.unit", "lunar"), ("deadline.sign_off_hours", "-1")])
def test_bad_deadlines_refused_and_nothing_saved(client, auth, db, field, value):
    auth.login("admin")
    resp = post(client, "/admin/settings/deadlines", **deadline_form(**{field: value}))
    assert resp.status_code == 422
    assert get_setting("deadline.mediation") == {"days": 30, "unit": "calendar"}
    assert get_setting("deadline.escalation") == {"days": 3, "unit": "calendar"}


# ---- flask seed-demo ---------------------------------------------------------------------------

def test_seed_demo_is_idempotent(app, tmp_path):
    """Twice on a fresh database: the same counts, and about 11 townships and 150 villages."""
    from app import create_app
    from app.accounts.models import User
    from app.orgs.models import OrgUnit

    app_db.session.remove()
    fresh = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'seed.db'}"})
    try:
        with fresh.app_context():
            app_db.Base.metadata.create_all(app_db.get_engine(fresh))
        runner = fresh.test_cli_runner()

        def counts():
            with fresh.app_context():
                s = app_db.session
                by_level = dict(s.execute(select(OrgUnit.level, func.count()).group_by(OrgUnit.level)).all())
                return by_level, s.scalar(select(func.count(User.id))), s.scalar(select(func.count(DisputeType.id)))

        first = runner.invoke(args=["seed-demo", "--no-cases"])
        assert first.exit_code == 0, first.output
        assert "township_mediator" in first.output and "Qingyuan@2026" in first.output
        after_first = counts()
        second = runner.invoke(args=["seed-demo", "--no-cases"])
        assert second.exit_code == 0, second.output
        assert counts() == after_first
        by_level, users, types = after_first
        assert by_level["county"] == 1 and 10 <= by_level["township"] <= 12
        assert 140 <= by_level["village"] <= 190 and by_level["grid"] >= by_level["village"]
        assert by_level["department"] >= 8 and users == 9 and types == 20
        assert "跳过" in runner.invoke(args=["seed-demo", "--if-empty"]).output
    finally:
        app_db.get_engine(fresh).dispose()
        app_db.session.remove()
        app_db.session.configure(bind=app_db.get_engine(app))

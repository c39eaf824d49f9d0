"""The demo county's sweeps: coverage is real (past months mostly reported, the current one
partly), and seeding twice adds nothing."""
from __future__ import annotations

from sqlalchemy import func, select

from app.demo.seed import _add_demo_sweeps
from app.orgs.models import OrgUnit
from app.screening.models import Sweep
from app.templating import today_local


def test_demo_sweeps_give_partial_current_coverage(db):
    _add_demo_sweeps(lambda *_: None)
    villages = db.scalar(select(func.count(OrgUnit.id)).where(OrgUnit.level == "village"))
    this_month = today_local().replace(day=1)
    current = db.scalar(select(func.count(Sweep.id)).where(Sweep.period_start == this_month))
    past = db.scalar(select(func.count(Sweep.id)).where(Sweep.period_start < this_month))
    assert 0 < current < villages  # some villages still owe this period's report
    assert past > 0.9 * 11 * villages
    assert all(s.nil_report and s.swept_on <= today_local() for s in db.scalars(select(Sweep).limit(50)))
    before = db.scalar(select(func.count(Sweep.id)))
    _add_demo_sweeps(lambda *_: None)
    assert db.scalar(select(func.count(Sweep.id))) == before

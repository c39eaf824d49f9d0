"""The ledger list: Chinese substring search (1, 2 and 3+ characters) and keyset pagination."""
from datetime import timedelta

import pytest

from app.cases.queries import CaseFilters, page_of_cases
from app.db import session
from app.errors import ValidationFailed
from tests.intake_helpers import make_case, user


@pytest.fixture()
def cases(db):
    a = make_case(summary="两户因排水沟堵塞发生争执", parties=[{"name": "欧阳明", "role": "申请人"}])
    b = make_case(summary="拖欠工资三个月", type="拖欠农民工工资", parties=[{"name": "李四", "role": "申请人"}])
    c = make_case(summary="宅基地边界不清", type="房屋宅基地", parties=[{"name": "王小水", "role": "申请人"}])
    return a, b, c


def _numbers(q, username="county_supervisor", **kw):
    return {c.number for c in page_of_cases(user(username), CaseFilters(q=q, **kw)).items}


@pytest.mark.parametrize("q,expected", [
    ("排水沟堵", {0}), ("排水", {0}), ("水", {0, 2}), ("欧阳明", {0}), ("欧阳", {0}), ("小水", {2}),
    ("工资三", {1}), ("宅基地 边界", {2}), ("不存在的词", set()), ("%", set()), ("_", set()),
])
def test_search_finds_chinese_substrings(cases, q, expected):
    assert _numbers(q) == {cases[i].number for i in expected}


def test_search_by_number(cases):
    assert _numbers(cases[1].number) == {cases[1].number}
    assert _numbers(cases[1].number[-6:]) == {cases[1].number}


def test_search_sees_party_renames(cases, db):
    cases[0].parties[0].name = "司马光"
    db.flush()
    assert _numbers("司马光") == {cases[0].number}
    assert _numbers("欧阳明") == set()


def test_filters(cases, db):
    assert _numbers(None, type="劳动争议") == {cases[1].number}  # a sub-type counts under its parent
    assert _numbers(None, type="房屋宅基地", status="pending_triage") == {cases[2].number}
    cases[2].deadline_on = cases[2].registered_on - timedelta(days=1)
    db.flush()
    assert cases[2].number in _numbers(None, overdue=True)
    assert cases[0].number not in _numbers(None, overdue=True)


@pytest.mark.parametrize("sort", ["-registered", "registered", "deadline", "-amount", "number"])
def test_keyset_pagination_walks_everything_once(db, sort):
    made = []
    for i in range(23):
        case = make_case(amount=str(i % 4), summary=f"第{i}件")
        case.registered_on = case.registered_on - timedelta(days=i % 5)
        case.deadline_on = None if i % 6 == 0 else case.registered_on + timedelta(days=i % 3)
        made.append(case.number)
    db.flush()
    seen, cursor, pages = [], None, 0
    while True:
        page = page_of_cases(user("county_supervisor"), CaseFilters(sort=sort, q="第"), cursor, limit=5)
        seen.extend(c.number for c in page.items)
        pages += 1
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == set(made)
    assert pages == 5


def test_bad_cursor_is_refused(db):
    with pytest.raises(ValidationFailed):
        page_of_cases(user("county_supervisor"), CaseFilters(), "not-a-cursor")


def test_list_page_filters_and_next_page(client, auth, db):
    from tests.intake_helpers import login
    for i in range(52):
        make_case(summary=f"批量{i}号")
    session.flush()
    login(auth, "township_mediator")
    html = client.get("/cases/?q=批量", follow_redirects=True).get_data(as_text=True)  # ?q= may become a token
    assert html.count('href="/cases/QH-') == 50
    assert 'data-testid="next-page"' in html

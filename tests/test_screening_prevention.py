"""Prevention (联防清源): repeat parties, cluster threshold edges, hot spots against a
hand-built fixture, each early-warning rule, and the case-page section."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.screening import queries
from app.settings.services import set_setting
from app.templating import today_local
from tests.screening_factories import (OTHER_TOWNSHIP_VILLAGE, TOWNSHIP, VILLAGE, VILLAGE_2, add_activity,
                                       make_case, org, user)

ID_A = "420222199001011234"


@pytest.fixture(autouse=True)
def _no_clusters_unless_asked(db):
    """Tests of other rules make several 邻里 cases in one village; keep them out of clusters."""
    set_setting("cluster.threshold", 50)


def _groups(username="county_supervisor"):
    return queries.repeat_groups(user(username))


def test_repeat_by_id_number(db):
    a = make_case(parties=({"name": "王五", "id_number": ID_A},))
    b = make_case(village=OTHER_TOWNSHIP_VILLAGE, parties=({"name": "王武", "id_number": ID_A},))
    make_case(parties=({"name": "别人", "id_number": "420222199001015678"},))
    groups = [g for g in _groups() if g.basis == "id_number"]
    assert len(groups) == 1 and {c.id for c in groups[0].cases} == {a.id, b.id}


def test_repeat_by_phone(db):
    a = make_case(parties=({"name": "甲", "phone": "13900002222"},))
    b = make_case(village=VILLAGE_2, parties=({"name": "乙", "phone": "13900002222"},))
    groups = [g for g in _groups() if g.basis == "phone"]
    assert len(groups) == 1 and {c.id for c in groups[0].cases} == {a.id, b.id}


def test_repeat_by_name_only_within_the_same_village(db):
    a = make_case(parties=({"name": "刘一"},))
    b = make_case(parties=({"name": "刘一"},))
    make_case(village=VILLAGE_2, parties=({"name": "刘一"},))  # same name, other village: not the same person
    groups = [g for g in _groups() if g.basis == "name_village"]
    assert len(groups) == 1 and {c.id for c in groups[0].cases} == {a.id, b.id}
    # Shown on the case page data too.
    others = queries.repeats_for_case(user("county_supervisor"), a)
    assert [o.id for o, _ in others] == [b.id] and "同村同名" in others[0][1][0]


def test_repeats_are_scoped(db):
    make_case(parties=({"name": "王五", "id_number": ID_A},))
    make_case(village=OTHER_TOWNSHIP_VILLAGE, parties=({"name": "王五", "id_number": ID_A},))
    assert [g for g in _groups("township_mediator") if g.basis == "id_number"] == []


def test_repeats_for_case_reasons_scope_and_many_parties(db):
    """The case page's repeats: each other case once, with every reason it matched, newest
    first; a case outside the reader's area never named; and a case with more parties than the
    statements kept per shape (over 8 conditions) answered the same way."""
    a = make_case(registered_on=date(2026, 3, 1),
                  parties=({"name": "周一", "id_number": ID_A, "phone": "13900003333"},))
    b = make_case(registered_on=date(2026, 4, 1),
                  parties=({"name": "周一", "id_number": ID_A, "phone": "13900003333"},))
    c = make_case(registered_on=date(2026, 5, 1), village=VILLAGE_2, parties=({"name": "周二", "phone": "13900003333"},))
    far = make_case(village=OTHER_TOWNSHIP_VILLAGE, parties=({"name": "周三", "id_number": ID_A},))
    others = queries.repeats_for_case(user("county_supervisor"), a)
    by_id = {o.id: reasons for o, reasons in others}
    assert set(by_id) == {b.id, c.id, far.id}
    assert by_id[b.id] == ["身份证号相同：周一", "电话相同：周一", "同村同名：周一"]
    assert by_id[c.id] == ["电话相同：周一"] and by_id[far.id] == ["身份证号相同：周一"]
    assert [o.registered_on for o, _ in others] == sorted((o.registered_on for o, _ in others), reverse=True)
    # the township mediator's area holds a, b and c, not the other township's case
    assert {o.id for o, _ in queries.repeats_for_case(user("township_mediator"), a)} == {b.id, c.id}
    # nine conditions (three parties with ID, phone and name each): built for the one call
    many = [{"name": f"吴{i}", "id_number": f"42022219900101{i:03d}X", "phone": f"1390000{i:04d}"} for i in range(3)]
    d = make_case(parties=tuple(many))
    e = make_case(parties=({"name": "吴2", "phone": "13900000002"},))
    hits = queries.repeats_for_case(user("township_mediator"), d)
    assert [(o.id, reasons) for o, reasons in hits] == [(e.id, ["电话相同：吴2", "同村同名：吴2"])]


def _cluster_counts(today):
    return {(c.village.code, c.dispute_type): c.count for c in queries.clusters(user("county_supervisor"), today)}


def test_cluster_threshold_edges(db):
    set_setting("cluster.window_days", 30)
    set_setting("cluster.threshold", 3)
    today = today_local()
    make_case(registered_on=today)
    make_case(registered_on=today - timedelta(days=10))
    assert (VILLAGE, "邻里") not in _cluster_counts(today)            # threshold - 1
    make_case(registered_on=today - timedelta(days=30))               # outside: window is 30 days incl. today
    assert (VILLAGE, "邻里") not in _cluster_counts(today)
    edge = make_case(registered_on=today - timedelta(days=29))        # the window's first day
    assert _cluster_counts(today)[(VILLAGE, "邻里")] == 3              # exactly the threshold
    assert edge.id in {c.id for cl in queries.clusters(user("county_supervisor"), today) for c in cl.cases}
    make_case(village=VILLAGE_2, registered_on=today)                # other village
    make_case(dispute_type="合同", registered_on=today)                # other type
    assert set(_cluster_counts(today)) == {(VILLAGE, "邻里")}
    # A day later the edge case falls out of the window.
    assert (VILLAGE, "邻里") not in _cluster_counts(today + timedelta(days=1))


def test_hot_spot_table_against_fixture(db):
    end = date(2026, 11, 15)
    make_case(registered_on=date(2026, 11, 3))
    make_case(registered_on=date(2026, 11, 20))
    make_case(registered_on=date(2026, 9, 30))
    make_case(dispute_type="合同", registered_on=date(2026, 10, 1))
    make_case(village=VILLAGE_2, dispute_type="婚姻家庭", registered_on=date(2025, 12, 1))
    make_case(village=VILLAGE_2, registered_on=date(2025, 11, 30))   # before the 12 months
    make_case(village=OTHER_TOWNSHIP_VILLAGE, registered_on=date(2026, 11, 3))  # other township
    data = queries.hot_spots(user("county_supervisor"), org(TOWNSHIP), end=end, months=12)
    assert data.months[0] == "2025-12" and data.months[-1] == "2026-11"
    table = {(r["village_code"], r["type"]): r["counts"] for r in data.rows}
    zeros = [0] * 12
    assert table == {
        (VILLAGE, "邻里"): zeros[:9] + [1, 0, 2],
        (VILLAGE, "合同"): zeros[:10] + [1, 0],
        (VILLAGE_2, "婚姻家庭"): [1] + zeros[1:],
    }
    assert data.by_type_month["邻里"][-1] == 2
    assert data.rows[0]["village_code"] == VILLAGE and data.rows[0]["total"] == 3


def test_hot_spot_tiles_coloured_by_open_risk(client, auth, db):
    make_case(risk_level="medium")
    make_case(risk_level="high", status="closed")
    make_case(village=VILLAGE_2, risk_level="high")
    data = queries.hot_spots(user("township_director"), org(TOWNSHIP))
    tiles = {t["code"]: t for t in data.tiles}
    assert tiles[VILLAGE]["risk"] == "medium" and tiles[VILLAGE]["open"] == 1
    assert tiles[VILLAGE_2]["risk"] == "high"
    assert tiles["429960002003"]["risk"] == "none" and len(tiles) == 12
    auth.login("township_director")
    html = client.get("/screening/hotspots").get_data(as_text=True)
    assert f'data-risk="high" data-village="{VILLAGE_2}"' in html and "<script>" not in html
    payload = client.get("/screening/hotspots.json").get_json()
    assert len(payload["months"]) == 12 and {s["name"] for s in payload["series"]} == {"邻里"}


def _reasons(today=None, username="county_supervisor"):
    rows, _ = queries.warnings(user(username), today)
    return {r.case.id: {code for code, _ in r.reasons} for r in rows}


def test_warning_open_high_and_medium(db):
    high = make_case(risk_level="high")
    add_activity(high, 1)
    medium = make_case(risk_level="medium")
    low = make_case(risk_level="low")
    closed = make_case(risk_level="high", status="closed")
    reasons = _reasons()
    assert reasons[high.id] == {"risk"} and reasons[medium.id] == {"risk"}
    assert low.id not in reasons and closed.id not in reasons


def test_warning_overdue(db):
    today = today_local()
    late = make_case(deadline_on=today - timedelta(days=1))
    due_today = make_case(deadline_on=today)
    closed = make_case(deadline_on=today - timedelta(days=5), status="closed")
    reasons = _reasons()
    assert reasons[late.id] == {"overdue"}
    assert due_today.id not in reasons and closed.id not in reasons


def test_warning_repeat_party(db):
    a = make_case(parties=({"name": "钱七", "phone": "13611112222"},))
    b = make_case(status="closed", parties=({"name": "钱七", "phone": "13611112222"},))
    reasons = _reasons()
    assert reasons[a.id] == {"repeat"} and b.id not in reasons


def test_warning_agreement_not_performed(db):
    c = make_case(status="closed", performance="not_performed")
    ok = make_case(status="closed", performance="performed")
    reasons = _reasons()
    assert reasons[c.id] == {"not_performed"} and ok.id not in reasons


def test_warning_cluster_over_threshold(db):
    set_setting("cluster.threshold", 2)
    a = make_case(dispute_type="物业")
    b = make_case(dispute_type="物业")
    reasons, clusters = _reasons(), queries.warnings(user("county_supervisor"))[1]
    assert "cluster" in reasons[a.id] and "cluster" in reasons[b.id]
    assert [(c.village.code, c.dispute_type, c.count) for c in clusters] == [(VILLAGE, "物业", 2)]


def test_warning_high_risk_without_recent_activity(db):
    set_setting("warning.inactive_days", 7)
    quiet = make_case(risk_level="high")
    add_activity(quiet, 8)
    busy = make_case(risk_level="high")
    add_activity(busy, 6)
    reasons = _reasons()
    assert reasons[quiet.id] == {"risk", "inactive"}
    assert reasons[busy.id] == {"risk"}


def test_warning_board_page_says_why(client, auth, db):
    c = make_case(risk_level="high", deadline_on=today_local() - timedelta(days=3))
    hidden = make_case(village=OTHER_TOWNSHIP_VILLAGE, risk_level="high")
    auth.login("township_mediator")
    html = client.get("/screening/warnings").get_data(as_text=True)
    assert c.number in html and hidden.number not in html
    assert "已超过办理期限 3 天" in html and "未办结的高风险纠纷" in html


def test_case_page_names_the_newest_cluster_cases_and_links_the_rest_to_the_ledger(client, auth, db):
    """A village's same-type cases within the window: the page counts them all, names the
    newest ``CLUSTER_SHOWN`` and links to the ledger filtered to the window (this case included);
    cases outside the window, of another type or another village are not counted."""
    import re
    from html import unescape

    from app.screening.queries import CLUSTER_SHOWN
    today = today_local()
    case = make_case(registered_on=today - timedelta(days=30))
    others = [make_case(registered_on=today - timedelta(days=30 + d)) for d in range(1, CLUSTER_SHOWN + 4)]
    make_case(registered_on=today - timedelta(days=30 + 91))  # outside the 90-day window
    make_case(dispute_type="合同", registered_on=today - timedelta(days=31))
    make_case(village=OTHER_TOWNSHIP_VILLAGE, registered_on=today - timedelta(days=31))
    auth.login("county_supervisor")
    html = client.get(f"/cases/{case.number}").get_data(as_text=True)
    section = html[html.index('data-testid="case-cluster"'):]
    section = section[:section.index("</div>")]
    assert f"另有 {len(others)} 件邻里纠纷" in section
    named = [o.number for o in others if o.number in section]
    assert named == [o.number for o in others[:CLUSTER_SHOWN]]  # the newest
    link = unescape(re.search(r'href="([^"]+)" data-testid="case-cluster-all"', section).group(1))
    listed = client.get(link).get_data(as_text=True)
    assert all(o.number in listed for o in others) and case.number in listed
    window_outside = [n for n in re.findall(r"SC-[0-9a-f]{10}", listed)
                      if n not in {o.number for o in others} | {case.number}]
    assert window_outside == []  # the other type, the other village and the case outside the window
    # a short cluster is named whole, with no ledger link
    lone = make_case(dispute_type="物业", registered_on=today - timedelta(days=5))
    make_case(dispute_type="物业", registered_on=today - timedelta(days=6))
    html = client.get(f"/cases/{lone.number}").get_data(as_text=True)
    assert "另有 1 件物业纠纷" in html and 'data-testid="case-cluster-all"' not in html


def test_case_page_shows_repeats_and_cluster(client, auth, db):
    a = make_case(parties=({"name": "孙八", "phone": "13711113333"},))
    b = make_case(parties=({"name": "孙八", "phone": "13711113333"},))
    auth.login("township_mediator")
    html = client.get(f"/cases/{a.number}").get_data(as_text=True)
    assert 'data-testid="case-repeats"' in html and b.number in html
    assert 'data-testid="case-cluster"' in html and 'data-testid="criminal-form"' in html
    auth.logout()
    auth.login("village_mediator")
    html = client.get(f"/cases/{a.number}").get_data(as_text=True)
    assert 'data-testid="case-repeats"' in html and 'data-testid="criminal-form"' not in html


def test_repeats_page(client, auth, db):
    make_case(parties=({"name": "吴九", "id_number": ID_A},))
    make_case(parties=({"name": "吴九", "id_number": ID_A},))
    auth.login("county_supervisor")
    html = client.get("/screening/repeats").get_data(as_text=True)
    assert "吴九" in html and "身份证号相同" in html


def test_warning_board_says_when_a_rule_was_cut_off(client, auth, db, monkeypatch):
    monkeypatch.setattr(queries, "WARNING_RULE_LIMIT", 2)
    monkeypatch.setattr(queries, "REPEAT_GROUP_LIMIT", 1)
    today = today_local()
    old_high = make_case(risk_level="high", registered_on=today - timedelta(days=20))
    add_activity(old_high, 1)
    for days in (3, 2):
        add_activity(make_case(risk_level="medium", registered_on=today - timedelta(days=days)), 1)
    longest = make_case(deadline_on=today - timedelta(days=9))
    make_case(deadline_on=today - timedelta(days=4))
    for name, phone in (("甲一", "13600000001"), ("乙二", "13600000002")):
        make_case(parties=({"name": name, "phone": phone},))
        make_case(parties=({"name": name, "phone": phone},))
    board = queries.warning_board(user("county_supervisor"))
    # 3 open 高/中 (over the limit of 2: 高 kept first), 2 overdue (at the limit), 2 repeat groups (limit 1)
    assert board.cut == {"risk": 2, "repeat": 1}
    risk_ids = {r.case.id for r in board.rows if any(code == "risk" for code, _ in r.reasons)}
    assert old_high.id in risk_ids and len(risk_ids) == 2
    assert longest.id in {r.case.id for r in board.rows if any(code == "overdue" for code, _ in r.reasons)}
    auth.login("county_supervisor")
    html = client.get("/screening/warnings").get_data(as_text=True)
    assert 'data-testid="rules-cut"' in html
    assert 'data-rule="risk"' in html and "仅显示前 2 条" in html and "仅显示前 1 组" in html
    assert 'data-rule="overdue"' not in html  # exactly at the limit: nothing cut


def test_warning_board_without_cut_says_nothing(client, auth, db):
    make_case(risk_level="high")
    assert queries.warning_board(user("county_supervisor")).cut == {}
    auth.login("county_supervisor")
    assert 'data-testid="rules-cut"' not in client.get("/screening/warnings").get_data(as_text=True)


def test_cluster_limit_is_reported(db, monkeypatch):
    set_setting("cluster.threshold", 2)
    monkeypatch.setattr(queries, "CLUSTER_LIMIT", 1)
    for dtype in ("物业", "物业", "合同", "合同"):
        make_case(dispute_type=dtype)
    board = queries.warning_board(user("county_supervisor"))
    assert board.cut == {"cluster": 1} and len(board.clusters) == 1


def test_hot_spot_period_picker(client, auth, db):
    today = today_local()
    make_case(registered_on=today.replace(day=1))
    old = today.replace(day=1) - timedelta(days=200)   # about 7 months back
    make_case(registered_on=old)
    auth.login("township_director")
    three = client.get("/screening/hotspots.json?months=3").get_json()
    assert len(three["months"]) == 3 and sum(sum(s["data"]) for s in three["series"]) == 1
    twelve = client.get("/screening/hotspots.json").get_json()
    assert len(twelve["months"]) == 12 and sum(sum(s["data"]) for s in twelve["series"]) == 2
    end = f"{old.year:04d}-{old.month:02d}"
    back = client.get(f"/screening/hotspots.json?months=3&end={end}").get_json()
    assert back["months"][-1] == end and sum(sum(s["data"]) for s in back["series"]) == 1
    html = client.get(f"/screening/hotspots?months=6&end={end}").get_data(as_text=True)
    assert 'data-testid="hotspot-period"' in html and '<option value="6" selected>' in html
    assert f"months=6&amp;end={end}" in html  # the chart reads the same window
    assert client.get("/screening/hotspots?months=7").status_code == 422
    assert client.get("/screening/hotspots?end=2026-13").status_code == 422


def test_the_case_pages_one_statement_answers_as_the_two_functions(db, app):
    """``prevention_for_case`` (the case page's repeat parties and 同村同类 cases in one UNION ALL)
    gives what ``repeats_for_case`` and ``cluster_for_case`` give on their own: for readers of
    different areas, a case with no parties (the cluster alone), with more conditions than the
    kept shapes, and with more same-type cases than the page names, in one statement each."""
    from tests.helpers import count_queries
    set_setting("cluster.window_days", 90)
    set_setting("cluster.threshold", 3)
    base = date(2026, 5, 1)
    a = make_case(registered_on=base, parties=({"name": "郑一", "id_number": ID_A, "phone": "13900004444"},))
    same = [make_case(registered_on=base + timedelta(days=d), parties=({"name": f"郑{d}"},)) for d in range(-5, 8)]
    b = make_case(registered_on=base - timedelta(days=3), village=OTHER_TOWNSHIP_VILLAGE,
                  parties=({"name": "郑二", "phone": "13900004444"},))
    c = make_case(registered_on=base + timedelta(days=2), parties=({"name": "郑一"},))
    bare = make_case(registered_on=base, parties=())
    many = make_case(registered_on=base, parties=tuple(
        {"name": f"冯{i}", "id_number": f"42022219900202{i:03d}X", "phone": f"1390001{i:04d}"} for i in range(3)))
    make_case(registered_on=base, parties=({"name": "冯1", "phone": "13900010001"},))
    for username in ("county_supervisor", "township_mediator", "village_mediator"):
        me = user(username)
        for case in (a, bare, many, same[0], c, b):
            case.parties  # loaded with the case on its page
            with count_queries(app) as seen:
                repeats, cluster = queries.prevention_for_case(me, case)
            # one statement (and the settings, read again after the test's uncommitted writes)
            assert len([sql for sql in seen if "FROM setting" not in sql]) == 1
            assert repeats == queries.repeats_for_case(me, case)
            assert cluster == queries.cluster_for_case(me, case)
    # what the county sees of ``a``: the cluster's newest ten of its 17 others (the thirteen, c,
    # ``bare``, ``many`` and 冯1's case; not b, in another village), and both repeats
    repeats, cluster = queries.prevention_for_case(user("county_supervisor"), a)
    assert cluster.total == len(same) + 4 and len(cluster.cases) == queries.CLUSTER_SHOWN
    assert [o.registered_on for o in cluster.cases] == sorted((o.registered_on for o in cluster.cases), reverse=True)
    assert {o.id for o, _ in repeats} == {b.id, c.id}

"""A search page looks through a window of the list before it runs the indexed search
(``app.cases.queries.page_of_cases``): whatever the window's size, every page of every query
holds exactly the rows, in exactly the order, of the indexed search alone."""
from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from app.benchgen import generate_cases
from app.cases import queries
from app.cases.models import Case, Party
from app.cases.queries import CaseFilters, page_of_cases
from app.orgs.services import find_by_code
from tests.workflow_factories import user


def _all_pages(u, filters, limit=7):
    ids, cursor = [], None
    while True:
        page = page_of_cases(u, filters, cursor, limit=limit)
        ids += [c.id for c in page.items]
        if not page.next_cursor:
            return ids
        cursor = page.next_cursor


def _queries(db):
    """A common phrase of the generated summaries, a rare 3-character name, a 2-character
    term, two terms, a case number and a term found nowhere."""
    summaries = [s for s in db.scalars(select(Case.summary))]
    grams = Counter(s[i:i + 3] for s in summaries for i in range(len(s) - 2))
    common = next(g for g, _n in grams.most_common() if " " not in g)
    names = Counter(db.scalars(select(Party.name)))
    rare = next(n for n, k in names.items() if k == 1 and len(n) >= 3)
    two = common[:2]
    number = db.scalar(select(Case.number).order_by(Case.id.desc()).limit(1))
    return [common, rare, two, f"{two} {rare[:2]}", number, "不存在的词语"]


@pytest.mark.parametrize("username", ["county_supervisor", "township_mediator"])
def test_every_window_size_gives_the_indexed_search_rows(db, monkeypatch, username):
    generate_cases(find_by_code("429960"), 250, years=2, seed=7, today=date(2026, 10, 31), echo=None)
    u = user(username)
    for q in _queries(db):
        for sort in ("-registered", "number", "deadline"):
            filters = CaseFilters(q=q, sort=sort)
            monkeypatch.setattr(queries, "SEARCH_WINDOW", 0)  # the indexed search only
            expected = _all_pages(u, filters)
            for size in (1, 5, 40, 100000):
                monkeypatch.setattr(queries, "SEARCH_WINDOW", size)
                assert _all_pages(u, filters) == expected, (q, sort, size)
            if q != "不存在的词语" and username == "county_supervisor":
                assert expected, q


def test_two_character_terms_find_what_a_row_by_row_test_finds(db):
    """2-character terms (on PostgreSQL through the bigram indexes): the same cases as testing
    every row with LIKE/ILIKE, for pairs from names, summaries and numbers, Latin letters in
    either case and the LIKE wildcards % and _ taken literally."""
    from app.cases.search import search_clause
    from app.db import is_sqlite
    generate_cases(find_by_code("429960"), 200, years=2, seed=11, today=date(2026, 10, 31), echo=None)
    case = db.scalar(select(Case).order_by(Case.id.desc()).limit(1))
    case.summary = case.summary + " ab%c_Xy 王伟"
    db.flush()
    names = [n for n in db.scalars(select(Party.name)) if len(n) >= 2][:15]
    summaries = list(db.scalars(select(Case.summary).limit(15)))
    terms = {n[:2] for n in names} | {n[-2:] for n in names} | {s[3:5] for s in summaries if len(s) > 5}
    terms |= {case.number[-2:], "AB", "xY", "b%", "c_", "%c", "王伟", "无有"}
    dialect = "sqlite" if is_sqlite() else "postgresql"
    found_any = 0
    for term in sorted(terms):
        indexed = set(db.scalars(select(Case.id).where(search_clause(term, dialect))))
        row_by_row = set(db.scalars(select(Case.id).where(search_clause(term, dialect, per_row=True))))
        assert indexed == row_by_row, term
        found_any += bool(indexed)
    assert found_any >= len(terms) - 2  # the terms are really found (all but 无有 and maybe one more)
    if dialect == "postgresql":
        from sqlalchemy import text
        db.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(db.scalars(text("EXPLAIN " + str(
            select(Case.id).where(search_clause("王伟", dialect)).compile(
                dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True})))))
        assert "ix_party_name_bigram" in plan and "ix_case_summary_bigram" in plan, plan

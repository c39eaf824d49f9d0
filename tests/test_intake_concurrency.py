"""Case numbers under concurrent registration: several threads, each with its own session and
connection, register at the same moment against a separate, committed database (SQLite file
or a fresh PostgreSQL database, whichever the suite runs on)."""
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db as app_db
from app.accounts.models import User
from app.cases.intake import register_case
from app.cases.models import Case
from app.db import make_engine
from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database
from tests.intake_helpers import intake_body

THREADS = 8


@pytest.fixture()
def committed_engine(app, tmp_path):
    from app.demo.seed import seed_demo
    url = _create_pg_database(PG_URL) if PG_URL else f"sqlite:///{tmp_path / 'concurrency.db'}"
    engine = make_engine(url)
    app_db.Base.metadata.create_all(engine)
    with app.app_context():
        app_db.session.registry.set(Session(bind=engine))
        seed_demo(with_cases=False, echo=lambda *_: None)
        app_db.session.commit()
        app_db.session.remove()
    yield engine
    engine.dispose()
    if PG_URL:
        _drop_pg_database(url, PG_URL)


def test_concurrent_registrations_get_unique_consecutive_numbers(app, committed_engine):
    barrier = threading.Barrier(THREADS)
    numbers, failures = [], []

    def worker(i):
        with app.app_context():
            app_db.session.registry.set(Session(bind=committed_engine))
            try:
                user = app_db.session.scalar(select(User).where(User.username == "township_mediator"))
                app_db.session.commit()  # end the read transaction; registration starts its own
                barrier.wait(timeout=30)
                case = register_case(user, intake_body(summary=f"并发登记{i}"))
                app_db.session.commit()
                numbers.append(case.number)
            except Exception:  # pragma: no cover - reported below
                app_db.session.rollback()
                import traceback; failures.append(traceback.format_exc())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures
    assert len(numbers) == len(set(numbers)) == THREADS
    sequences = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert sequences == list(range(1, THREADS + 1))
    with Session(bind=committed_engine) as check:
        stored = check.scalars(select(Case.number)).all()
    assert sorted(stored) == sorted(numbers)

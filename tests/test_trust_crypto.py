"""Personal data at rest (PRODUCT.md §9, issue 9): ID numbers and phones are stored encrypted,
found again through keyed hashes, masked on the way out, and the keys can be rotated."""
from __future__ import annotations

import base64
import stat

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select, text

from app.accounts.roles import UNMASK_ROLES
from app.audit.models import AuditLog
from app.cases.intake import possible_duplicates, prepare_intake
from app.cases.models import Party
from app.cases.queries import CaseFilters, page_of_cases
from app.crypto import DataKeyError, decrypt, encrypt, lookup_hash
from app.crypto_cli import rotate_keys
from app.db import session
from app.demo.seed import DEMO_USERS
from app.reception.models import ReceptionEntry
from app.screening import queries as screening
from app.templating import mask_id_number, mask_phone, today_local
from tests.helpers import csrf_token
from tests.intake_helpers import (OTHER_TOWNSHIP_VILLAGE, api_token, intake_body, login, make_case, org,
                                  user, valid_id)

ID = valid_id("42022219800101123")  # ends in a check digit
ID_X = "11010519491231002X"
PHONE = "13812345678"


def _party(number_or_case) -> Party:
    case = number_or_case
    return session.scalar(select(Party).where(Party.case_id == case.id).order_by(Party.position))


def _raw(table: str, row_id: int, *cols: str):
    """The stored values, read with plain SQL (no TypeDecorator in the way)."""
    return session.execute(text(f"SELECT {', '.join(cols)} FROM {table} WHERE id = :id"), {"id": row_id}).one()


# ------------------------------------------------------------------ at rest


def test_stored_values_are_neither_plaintext_nor_masked(db):
    case = make_case(parties=[{"name": "张三", "role": "申请人", "id_number": ID, "phone": PHONE}])
    party = _party(case)
    raw_id, raw_phone, id_hash, phone_hash = _raw("party", party.id, "id_number", "phone", "id_number_hash",
                                                  "phone_hash")
    for raw, plain, masked in ((raw_id, ID, mask_id_number(ID)), (raw_phone, PHONE, mask_phone(PHONE))):
        assert raw != plain and raw != masked and plain not in raw and plain[-4:] not in raw
        assert decrypt(raw) == plain
    assert id_hash == lookup_hash("id", ID) and phone_hash == lookup_hash("phone", PHONE)
    assert ID not in id_hash and PHONE not in phone_hash


def test_reception_and_roster_phones_are_encrypted(db):
    from tests.mediation_factories import roster_member
    v = org("429960002001")
    entry = ReceptionEntry(centre_id=v.id, county_id=v.county_id, township_id=v.township_id, village_id=v.id,
                           received_on=today_local(), visitor_names="李四", phone="0715-1234567",
                           matter="咨询", handling="direct_answer")
    session.add(entry)
    member = roster_member(phone="13700003333")
    session.flush()
    raw, phash = _raw("reception_entry", entry.id, "phone", "phone_hash")
    assert "1234567" not in raw and decrypt(raw) == "0715-1234567" and phash == lookup_hash("phone", "07151234567")
    (raw_member,) = _raw("roster_member", member.id, "phone")
    assert "3333" not in raw_member and decrypt(raw_member) == "13700003333"


def test_round_trip_and_normalised_hashes(db):
    token = encrypt("11010519491231002X")
    assert token != encrypt("11010519491231002X")  # randomised: no equality in SQL possible
    assert decrypt(token) == "11010519491231002X"
    assert lookup_hash("id", "11010519491231002x") == lookup_hash("id", " 110105 19491231002X")
    assert lookup_hash("phone", "138 1234 5678") == lookup_hash("phone", "+86 13812345678") == lookup_hash("phone", PHONE)
    assert lookup_hash("phone", PHONE) != lookup_hash("id", PHONE)  # kinds never collide
    assert lookup_hash("phone", None) is None and lookup_hash("phone", "--") is None
    # ORM reads give the plaintext back, from a fresh load.
    case = make_case(parties=[{"name": "张三", "role": "申请人", "id_number": ID, "phone": PHONE}])
    session.expire_all()
    party = _party(case)
    assert (party.id_number, party.phone) == (ID, PHONE)
    # An edit keeps the hash in step.
    party.phone = "0715-7654321"
    session.flush()
    assert _raw("party", party.id, "phone_hash")[0] == lookup_hash("phone", "07157654321")
    party.phone = None
    session.flush()
    assert tuple(_raw("party", party.id, "phone", "phone_hash")) == (None, None)


def test_sql_comparison_of_an_encrypted_column_is_refused(db):
    """A comparison against ciphertext would silently match nothing; it fails loudly instead."""
    with pytest.raises(TypeError):
        Party.phone == PHONE  # noqa: B015
    with pytest.raises(TypeError):
        Party.id_number.in_([ID])
    with pytest.raises(TypeError):
        Party.phone.like("%5678")
    assert Party.phone.isnot(None) is not None  # IS NULL tests remain allowed


def test_core_bulk_insert_fills_the_hashes(db):
    """The ledger importer and benchgen insert parties with Core executemany."""
    case = make_case(parties=[{"name": "甲", "role": "申请人"}])
    rows = [dict(case_id=case.id, village_id=case.village_id, position=i + 1, kind="person", name=f"乙{i}", role="respondent",
                 id_number=(valid_id(f"4202221980010112{i}") if i != 1 else None), phone=f"1390000000{i}")
            for i in range(3)]
    session.execute(insert(Party.__table__), rows)
    stored = session.execute(text("SELECT position, id_number, phone, id_number_hash, phone_hash FROM party "
                                  "WHERE case_id = :c AND position > 0 ORDER BY position"), {"c": case.id}).all()
    assert len(stored) == 3
    for row, given in zip(stored, rows):
        assert row.phone != given["phone"] and decrypt(row.phone) == given["phone"]
        assert row.phone_hash == lookup_hash("phone", given["phone"])
        assert row.id_number_hash == lookup_hash("id", given["id_number"])
    assert stored[1].id_number is None and stored[1].id_number_hash is None
    # Reception entries too (the importer's other bulk insert).
    v = org("429960002001")
    session.execute(insert(ReceptionEntry.__table__), [
        dict(centre_id=v.id, county_id=v.county_id, received_on=today_local(), visitor_names=f"访客{i}",
             headcount=1, phone=f"1370000000{i}", matter="咨询", handling="direct_answer", import_key=f"crypto-{i}")
        for i in range(2)])
    got = session.execute(text("SELECT phone, phone_hash FROM reception_entry WHERE import_key LIKE 'crypto-%' "
                               "ORDER BY import_key")).all()
    assert [r.phone_hash for r in got] == [lookup_hash("phone", f"1370000000{i}") for i in range(2)]
    assert all(r.phone.startswith("gAAAAA") for r in got)


def test_benchgen_rows_are_encrypted_and_hashed(db):
    from app.benchgen import generate_cases
    from app.orgs.services import find_by_code
    before = session.scalar(text("SELECT max(id) FROM party")) or 0
    generate_cases(find_by_code("429960"), 20, years=1, seed=7, echo=None)
    rows = session.execute(text("SELECT id_number, phone, id_number_hash, phone_hash FROM party WHERE id > :b"),
                           {"b": before}).all()
    assert rows and all(r.phone and r.phone.startswith("gAAAAA") for r in rows)
    assert all(r.phone_hash == lookup_hash("phone", decrypt(r.phone)) for r in rows)
    assert all((r.id_number is None) == (r.id_number_hash is None) for r in rows)


# ------------------------------------------------------------------ lookups still work


def test_duplicate_hint_by_id_number_and_by_phone(db):
    """Intake duplicate hints match through the hashes (different type and village: no other reason)."""
    by_id = make_case(village=OTHER_TOWNSHIP_VILLAGE, type="合同",
                      parties=[{"name": "丁", "role": "申请人", "id_number": ID}])
    by_phone = make_case(village=OTHER_TOWNSHIP_VILLAGE, type="合同",
                         parties=[{"name": "戊", "role": "申请人", "phone": PHONE}])
    supervisor = user("county_supervisor")
    body = intake_body(type="物业", parties=[{"name": "丁", "role": "申请人", "id_number": ID.lower()}])
    assert [c.number for c in possible_duplicates(supervisor, prepare_intake(supervisor, body))] == [by_id.number]
    body = intake_body(type="物业", parties=[{"name": "某", "role": "申请人", "phone": "+86 138 1234 5678"}])
    assert [c.number for c in possible_duplicates(supervisor, prepare_intake(supervisor, body))] == [by_phone.number]
    body = intake_body(type="物业", parties=[{"name": "某", "role": "申请人", "phone": "13812345679"}])
    assert possible_duplicates(supervisor, prepare_intake(supervisor, body)) == []


def test_repeat_parties_by_id_number_and_phone(db):
    from tests.screening_factories import make_case as screening_case
    a = screening_case(parties=({"name": "王五", "id_number": ID_X},))
    b = screening_case(village="429960002002", parties=({"name": "王武", "id_number": ID_X},))
    c = screening_case(parties=({"name": "甲", "phone": PHONE},))
    d = screening_case(village="429960002002", parties=({"name": "乙", "phone": PHONE},))
    groups = screening.repeat_groups(user("county_supervisor"))
    by_basis = {g.basis: {x.id for x in g.cases} for g in groups if g.basis in ("id_number", "phone")}
    assert by_basis == {"id_number": {a.id, b.id}, "phone": {c.id, d.id}}
    assert all(ID_X not in g.key and PHONE not in g.key for g in groups)
    others = screening.repeats_for_case(user("county_supervisor"), a)
    assert [o.id for o, _ in others] == [b.id] and others[0][1][0].startswith("身份证号相同")
    assert [o.id for o, _ in screening.repeats_for_case(user("county_supervisor"), c)] == [d.id]


def test_search_by_full_phone_or_id_number_finds_the_case(db):
    case = make_case(summary="宅基地边界不清", parties=[{"name": "欧阳明", "role": "申请人", "id_number": ID_X,
                                                       "phone": PHONE}])
    make_case(summary="另一件", parties=[{"name": "李四", "role": "申请人", "phone": "13900001111"}])

    def numbers(q):
        return [c.number for c in page_of_cases(user("county_supervisor"), CaseFilters(q=q)).items]

    assert numbers(PHONE) == [case.number]
    assert numbers("138-1234-5678") == [case.number]
    assert numbers(ID_X.lower()) == [case.number]
    assert numbers(f"{PHONE} 宅基地") == [case.number]  # combines with text terms
    assert numbers(PHONE[-4:]) == [] and numbers(PHONE[:7]) == []  # no substring search on encrypted numbers
    assert [c.number for c in page_of_cases(user("township_mediator"), CaseFilters(q=PHONE)).items] == [case.number]


def test_search_by_phone_is_scoped(db):
    make_case(village=OTHER_TOWNSHIP_VILLAGE, parties=[{"name": "丁", "role": "申请人", "phone": PHONE}])
    assert page_of_cases(user("township_mediator"), CaseFilters(q=PHONE)).items == []


# ------------------------------------------------------------------ keys


def test_rotation_reencrypts_so_the_old_key_can_be_removed(app, db, monkeypatch):
    case = make_case(parties=[{"name": "张三", "role": "申请人", "id_number": ID, "phone": PHONE},
                              {"name": "李四", "role": "被申请人", "phone": "0715-1234567"}])
    parties = session.scalars(select(Party).where(Party.case_id == case.id)).all()
    before = {p.id: tuple(_raw("party", p.id, "id_number", "phone", "id_number_hash", "phone_hash")) for p in parties}
    old_keys = list(app.config["DATA_KEYS"])
    new_key = Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "DATA_KEYS", [new_key, *old_keys])
    done = rotate_keys(batch=1)
    assert done["party"] >= 2
    monkeypatch.setitem(app.config, "DATA_KEYS", [new_key])  # the old key is gone
    session.expire_all()
    for p in session.scalars(select(Party).where(Party.case_id == case.id)):
        raw = _raw("party", p.id, "id_number", "phone", "id_number_hash", "phone_hash")
        old = before[p.id]
        assert raw.phone != old[1] and Fernet(new_key.encode()).decrypt(raw.phone.encode()).decode() == p.phone
        assert (raw.id_number_hash, raw.phone_hash) == (old[2], old[3])  # hashes do not move with the data key
    assert {p.phone for p in session.scalars(select(Party).where(Party.case_id == case.id))} == {PHONE, "0715-1234567"}
    # Without the key that wrote them, the values cannot be read: nothing passes silently.
    monkeypatch.setitem(app.config, "DATA_KEYS", old_keys)
    session.expire_all()
    with pytest.raises(DataKeyError):
        _ = _party(case).phone


def test_rotation_encrypts_rows_stored_before_encryption(db):
    case = make_case(parties=[{"name": "张三", "role": "申请人"}])
    party = _party(case)
    session.execute(text("UPDATE party SET phone = '13800009999', id_number_hash = NULL, phone_hash = NULL "
                         "WHERE id = :id"), {"id": party.id})
    session.expire_all()
    assert _party(case).phone == "13800009999"  # still readable in the meantime
    rotate_keys(batch=100)
    raw = _raw("party", party.id, "phone", "phone_hash")
    assert raw.phone.startswith("gAAAAA") and raw.phone_hash == lookup_hash("phone", "13800009999")


def test_keys_cli(runner, db):
    result = runner.invoke(args=["keys", "generate"])
    assert result.exit_code == 0
    line = [x for x in result.output.splitlines() if x.startswith("QY_DATA_KEYS=")][0]
    Fernet(line.split("=", 1)[1].encode())  # a usable key
    make_case(parties=[{"name": "张三", "role": "申请人", "phone": PHONE}])
    result = runner.invoke(args=["keys", "rotate", "--batch", "50"])
    assert result.exit_code == 0, result.output
    assert "party" in result.output


@pytest.mark.parametrize("env,missing", [
    ({"SECRET_KEY": "s"}, "QY_DATA_KEYS"),
    ({"SECRET_KEY": "s", "QY_DATA_KEYS": Fernet.generate_key().decode()}, "QY_HASH_KEY"),
    ({"SECRET_KEY": "s", "QY_DATA_KEYS": "not-a-key", "QY_HASH_KEY": "h"}, "QY_DATA_KEYS"),
])
def test_production_refuses_to_start_without_keys(monkeypatch, env, missing):
    from app import create_app
    for name in ("QY_DATA_KEYS", "QY_HASH_KEY", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QY_ENV", "production")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(RuntimeError, match=missing):
        create_app()


def test_production_starts_with_keys(monkeypatch):
    from config import ProductionConfig
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("SECRET_KEY", "s")
    monkeypatch.setenv("QY_DATA_KEYS", f" {key}, {Fernet.generate_key().decode()} ")
    monkeypatch.setenv("QY_HASH_KEY", "h" * 40)
    cfg = ProductionConfig()
    assert cfg.DATA_KEYS[0] == key and len(cfg.DATA_KEYS) == 2 and cfg.HASH_KEY == "h" * 40


def test_development_generates_keys_once_into_instance(monkeypatch, tmp_path):
    import config
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    for name in ("QY_DATA_KEYS", "QY_HASH_KEY"):
        monkeypatch.delenv(name, raising=False)
    first, second = config.Config(), config.Config()
    assert first.DATA_KEYS == second.DATA_KEYS and first.HASH_KEY == second.HASH_KEY
    assert len(base64.urlsafe_b64decode(first.DATA_KEYS[0])) == 32 and first.HASH_KEY != first.DATA_KEYS[0]
    for name in ("data_key", "hash_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


# ------------------------------------------------------------------ masking on the way out

API_ROLES = [u[2] for u in DEMO_USERS]


def _demo_username(role: str) -> str:
    return next(u[0] for u in DEMO_USERS if u[2] == role)


@pytest.mark.parametrize("role", sorted(set(API_ROLES)))
def test_api_never_returns_full_numbers(client, db, role):
    """The API masks for every role (full values only on the logged web unmask)."""
    case = make_case(parties=[{"name": "张三", "role": "申请人", "id_number": ID, "phone": PHONE}])
    token = api_token(_demo_username(role))
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    for path in (f"/api/v1/cases/{case.number}", "/api/v1/cases?limit=200"):
        resp = client.get(path, headers=headers)
        body = resp.get_data(as_text=True)
        assert ID not in body and PHONE not in body and ID.lower() not in body
        if resp.status_code == 200 and path.startswith("/api/v1/cases/"):
            party = resp.get_json()["parties"][0]
            assert party["id_number"] == mask_id_number(ID) and party["phone"] == mask_phone(PHONE)


def test_case_page_masks_and_unmask_is_role_bound_and_logged(client, auth, db):
    case = make_case(parties=[{"name": "张三", "role": "申请人", "id_number": ID, "phone": PHONE}])
    session.commit()
    no_unmask = next(r for r in ("township_secretary", "county_leader", "grid_worker") if r not in UNMASK_ROLES)
    login(auth, no_unmask)
    page = client.get(f"/cases/{case.number}")
    if page.status_code == 200:
        html = page.get_data(as_text=True)
        assert ID not in html and PHONE not in html
    token = csrf_token(client, "/cases/")
    assert client.post(f"/cases/{case.number}/unmask", data={"csrf_token": token}).status_code in (403, 404)
    login(auth, "township_mediator")
    html = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert ID not in html and mask_id_number(ID) in html
    token = csrf_token(client, f"/cases/{case.number}")
    html = client.post(f"/cases/{case.number}/unmask", data={"csrf_token": token}).get_data(as_text=True)
    assert ID in html and PHONE in html
    assert session.scalar(select(AuditLog).where(AuditLog.action == "case.unmask",
                                                 AuditLog.object_id == case.number)) is not None


# ------------------------------------------------------------------ ledger import


def _ledger_parties(external: str):
    from app.cases.models import Case
    case = session.scalar(select(Case).where((Case.external_number == external) | (Case.number == external)))
    return session.execute(text("SELECT position, phone, phone_hash FROM party WHERE case_id = :c ORDER BY position"),
                           {"c": case.id}).all()


def test_ledger_import_stores_encrypted_phones_with_hashes(db):
    from app.ledger.importer import import_ledger
    from tests.ledger_helpers import good_row, workbook
    import_ledger(workbook([good_row(编号="CR-1")]), "t.xlsx")
    rows = _ledger_parties("CR-1")
    assert [decrypt(r.phone) for r in rows] == ["13800000001", "13800000002"]
    assert all("1380000000" not in r.phone for r in rows)
    assert [r.phone_hash for r in rows] == [lookup_hash("phone", "13800000001"), lookup_hash("phone", "13800000002")]
    # A masked export re-imported never overwrites the stored phone (or its hash).
    import_ledger(workbook([good_row(编号="CR-1", 联系电话="138****0001；138****0002", 简要情况="改过")]), "t.xlsx")
    rows = _ledger_parties("CR-1")
    assert [decrypt(r.phone) for r in rows] == ["13800000001", "13800000002"]
    assert [r.phone_hash for r in rows] == [lookup_hash("phone", "13800000001"), lookup_hash("phone", "13800000002")]


def test_ledger_reimport_with_a_new_phone_moves_the_hash(db):
    """The importer's Core UPDATE of parties sets the hash beside the phone (no attribute events there)."""
    from app.ledger.importer import import_ledger
    from tests.ledger_helpers import good_row, workbook
    import_ledger(workbook([good_row(编号="CR-2")]), "t.xlsx")
    import_ledger(workbook([good_row(编号="CR-2", 联系电话="13900000009；13800000002")]), "t.xlsx")
    rows = _ledger_parties("CR-2")
    assert decrypt(rows[0].phone) == "13900000009"
    assert rows[0].phone_hash == lookup_hash("phone", "13900000009")


def test_short_id_numbers_are_masked_whole():
    """An 'other' document number of 4 characters or fewer would otherwise be shown in full."""
    assert mask_id_number("AB12") == "****" and mask_id_number("ABC") == "***"
    assert mask_id_number("A12345") == "A1**45" and mask_id_number(ID) == ID[:6] + "********" + ID[-4:]

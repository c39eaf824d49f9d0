"""``flask keys generate`` and ``flask keys rotate``: the key chores of app/crypto.py.

Rotation of the data key (README, 数据密钥轮换):
1. ``flask keys generate`` (or ``python -m app.crypto``, which needs no app) prints a new Fernet key.
2. Prepend it: ``QY_DATA_KEYS=<new>,<old>``; restart every app process (new writes use the
   new key; old rows still read with the old one).
3. ``flask keys rotate``: every encrypted column of every row is re-encrypted with the first
   key, in batches of one transaction each; safe to stop and run again.
4. Remove the old key from ``QY_DATA_KEYS``, restart, and destroy it (backups taken before
   step 3 still need it: keep it as long as those backups are kept).

The lookup hashes are recomputed by ``rotate`` as well, which also encrypts rows stored in
plain text before encryption existed.  ``QY_HASH_KEY`` is not rotated by routine: changing
it breaks duplicate lookups until ``rotate`` has finished.
"""
from __future__ import annotations

import secrets
from typing import Callable, Optional

import click
from flask.cli import AppGroup
from sqlalchemy import String, bindparam, select, type_coerce, update

from app.crypto import (DataKeyError, encrypted_columns, fernet, generate_key, hash_column_for, is_token,
                        lookup_hash, primary_fernet)

keys_cli = AppGroup("keys", help="个人信息加密密钥（QY_DATA_KEYS / QY_HASH_KEY）")


def rotate_keys(batch: int = 500, echo: Optional[Callable[[str], None]] = None) -> dict[str, int]:
    """Re-encrypt every ``EncryptedString`` value with the first key of ``QY_DATA_KEYS`` and
    refresh its lookup hash; one committed transaction per ``batch`` rows.  Returns rows
    rewritten per table."""
    from app.db import Base, session

    every, first = fernet(), primary_fernet()
    done: dict[str, int] = {}
    for table, cols in encrypted_columns(Base.metadata):
        pk = table.primary_key.columns.values()[0]
        hashes = {c.name: hash_column_for(table, c) for c in cols}
        targets = {c: bindparam(f"v_{c.name}", type_=String()) for c in cols}
        for c in cols:
            if hashes[c.name]:
                hcol, _kind = hashes[c.name]
                targets[hcol] = bindparam(f"v_{hcol.name}", type_=String())
        stmt = update(table).where(pk == bindparam("pk_")).values(targets)
        raw = [type_coerce(c, String()) for c in cols]  # the stored tokens, not the plaintext
        last, count = None, 0
        while True:
            query = select(pk, *raw).order_by(pk).limit(batch)
            if last is not None:
                query = query.where(pk > last)
            rows = session.execute(query).all()
            if not rows:
                break
            params = []
            for row in rows:
                p = {"pk_": row[0]}
                for c, stored in zip(cols, row[1:]):
                    plain = None
                    if stored is not None:
                        try:
                            plain = every.decrypt(stored.encode("ascii")).decode("utf-8") if is_token(stored) else stored
                        except Exception:  # InvalidToken: the key is gone
                            session.rollback()
                            raise DataKeyError(f"{table.name}.{c.name} of row {row[0]} cannot be decrypted "
                                               "with any key in QY_DATA_KEYS") from None
                    p[f"v_{c.name}"] = first.encrypt(plain.encode("utf-8")).decode("ascii") if plain is not None else None
                    if hashes[c.name]:
                        hcol, kind = hashes[c.name]
                        p[f"v_{hcol.name}"] = lookup_hash(kind, plain)
                params.append(p)
            session.execute(stmt, params)
            session.commit()
            count += len(rows)
            last = rows[-1][0]
            if echo:
                echo(f"  {table.name}: {count}")
        done[table.name] = count
    return done


@keys_cli.command("generate")
def generate_cmd():
    """Print a new data key (for QY_DATA_KEYS) and a hash key (for QY_HASH_KEY)."""
    click.echo(f"QY_DATA_KEYS={generate_key()}")
    click.echo(f"QY_HASH_KEY={secrets.token_urlsafe(32)}")


@keys_cli.command("rotate")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="每个事务重新加密的行数")
def rotate_cmd(batch):
    """Re-encrypt every ID number and phone with the first key of QY_DATA_KEYS."""
    try:
        done = rotate_keys(batch, echo=click.echo)
    except DataKeyError as exc:
        raise click.ClickException(str(exc)) from None
    for table, count in done.items():
        click.echo(f"{table}: {count} 行已用新密钥重新加密")


def register(app) -> None:
    app.cli.add_command(keys_cli)

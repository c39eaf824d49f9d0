"""Exit 0 when the PostgreSQL server at the given URL answers (used by `make test`)."""
import sys

import psycopg
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1])
try:
    psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, dbname=url.database,
                    password=url.password, connect_timeout=3).close()
except Exception:
    sys.exit(1)

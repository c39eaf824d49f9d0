"""gunicorn settings for Qingyuan (``gunicorn -c deploy/gunicorn.conf.py wsgi:app``).

Every value can be overridden from the environment (the systemd unit's EnvironmentFile or
the compose file), so one file serves every host.
"""
import multiprocessing
import os

# nginx proxies to this address; on a multi-host setup bind the private interface instead.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Sync workers: one request at a time each, so a worker never needs more than one database
# connection (see deploy/README.md for the pool arithmetic).  (2 × cores) + 1 by default.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"

# Reports over a year of a county stay well under this; a ledger import of 5,000 rows takes
# ~10 s.  A worker stuck longer than this is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5  # nginx keeps upstream connections alive (see nginx.conf)

# Load the app once in the master and fork: less memory per worker, faster restarts.
# The database engine is created at import but opens no connection until the first request;
# post_fork still drops any pooled connection so no socket is ever shared between processes.
preload_app = True

# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200

# Heartbeat files in RAM (a slow /tmp disk can get healthy workers killed).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Trust X-Forwarded-* only from nginx (the app itself uses PROXY_COUNT with ProxyFix).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "qingyuan"


def post_fork(server, worker):
    """Each worker starts with an empty connection pool of its own."""
    try:
        from app.db import get_engine
        from wsgi import app
        get_engine(app).dispose(close=False)
    except Exception:  # pragma: no cover - never stop a worker from booting over this
        server.log.exception("could not reset the database pool after fork")

"""WSGI entry point: ``gunicorn wsgi:app``.

The garbage collector's youngest generation is collected after ``QY_GC_GEN0`` (default 10,000)
net new container objects instead of Python's 700.  A case page allocates tens of thousands of
short-lived objects (ORM rows, template output), almost all freed by reference counting, so
with 700 the collector ran about every other request and cost ~0.3 ms of a case page's ~8 ms
of CPU; with 10,000 about 0.1 ms (``bench/README.md``).  The few cycles it leaves wait a little
longer; workers are recycled anyway (``max_requests`` in ``deploy/gunicorn.conf.py``).  What
exists once the app is built is frozen out of the collector's scans (``gc.freeze``), which also
keeps the collector from touching, and so copying, the memory the workers share with the
master under ``preload_app``.  ``QY_GC_GEN0=700`` restores Python's default."""
import gc
import os

from app import create_app

app = create_app()

gc.set_threshold(int(os.environ.get("QY_GC_GEN0", "10000")), *gc.get_threshold()[1:])
gc.freeze()

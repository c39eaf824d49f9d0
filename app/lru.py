"""A per-process least-recently-used map, safe across threads: the report cache
(``app.reports.cache``), the signed CSRF tokens (``app.security``) and the verified session
cookies (``app.sessions``) keep what they computed in one of these.  ``None`` is not a value
(``get`` answers None for a miss)."""
from __future__ import annotations

import threading
from collections import OrderedDict


class LRU:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return value

    def put(self, key, value, size: int) -> None:
        """Keep ``value`` under ``key``; the least recently used beyond ``size`` are dropped."""
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > size:
                self.items.popitem(last=False)

    def pop(self, key) -> None:
        with self.lock:
            self.items.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.hits = self.misses = 0

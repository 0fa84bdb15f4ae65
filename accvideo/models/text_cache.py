"""A small LRU of text conditionings per (model, prompt, negative prompt, sequence length).

The app generates the same prompt again and again (another seed, another model step count): the
text encoder's output depends only on the text, so it is kept. Entries hold tensors on the
model's device; `max_entries` bounds the memory (a Wan2.1 T5 conditioning is 512 x 4096 values,
8 MiB in bf16, twice under CFG).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class TextEmbeddingCache:
    """Thread-safe LRU: `get(key)` (None on a miss) and `put(key, value)`; counts `hits` and `misses`."""

    def __init__(self, max_entries: int = 32):
        if not isinstance(max_entries, int) or isinstance(max_entries, bool) or max_entries < 1:
            raise ValueError(f"`max_entries` must be an integer >= 1 but is {max_entries!r}.")
        self.max_entries = max_entries
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> Any | None:
        with self._lock:
            if key not in self._items:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)  # the least recently used

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

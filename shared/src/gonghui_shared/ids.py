"""Identifiers: UUIDv7, so ids sort by creation time and make stable cursors."""

from __future__ import annotations

import os
import threading
import time

# Randomness is read from the OS a page at a time: a bulk import makes three ids a row,
# and a system call for each 10 bytes was most of an id's cost. The lock keeps two
# threads (imports encrypt in one) from taking the same bytes; a forked child starts
# with a pool of its own, never its parent's.
_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_taken = 0


def _drop_pool() -> None:
    global _pool, _taken
    _pool, _taken = b"", 0


os.register_at_fork(after_in_child=_drop_pool)


def _random_80_bits() -> int:
    global _pool, _taken
    with _lock:
        if _taken + 10 > len(_pool):
            _pool, _taken = os.urandom(_POOL_BYTES), 0
        start = _taken
        _taken += 10
        return int.from_bytes(_pool[start : start + 10], "big")


def new_id() -> str:
    """A UUIDv7 string (RFC 9562): 48-bit millisecond timestamp, then randomness."""
    millis = time.time_ns() // 1_000_000
    rand = _random_80_bits()
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68) << 64  # 12 bits rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # 62 bits rand_b
    # uuid.UUID's canonical form, without building the object (half the cost).
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

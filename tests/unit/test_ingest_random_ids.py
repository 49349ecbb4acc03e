"""Pooled random ids: shaped as uuid4's, unique, and never shared with a forked child."""

from __future__ import annotations

import os
import uuid

from leadstream_ingest.random_ids import uuid4_bytes, uuid4_hex, uuid4_str


def test_ids_are_version_4_rfc_4122_and_unique() -> None:
    seen = set()
    for _ in range(3000):  # several pools
        text = uuid4_str()
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
        hex_ = uuid4_hex()
        assert uuid.UUID(hex=hex_).hex == hex_
        assert len(uuid4_bytes()) == 16
        seen.update((text, hex_))
    assert len(seen) == 6000


def test_a_forked_child_does_not_hand_out_the_parents_next_ids() -> None:
    uuid4_hex()  # the pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.close(read)
        os.write(write, uuid4_hex().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child != uuid4_hex()

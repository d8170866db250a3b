"""`fer-edge fleet events` prints each event once: the de-duplication by id (bounded memory)."""
from __future__ import annotations

from edge.ops.fleet.watch import Deduplicator


def test_an_id_is_printed_once_and_duplicates_are_counted():
    d = Deduplicator()
    assert [d.first(i) for i in ("a", "b", "a", "c", "b")] == [True, True, False, True, False]
    assert d.duplicates == 2


def test_memory_is_bounded_to_the_newest_ids():
    d = Deduplicator(size=3)
    for i in "abcd":
        d.first(i)
    assert d.first("a") is True           # forgotten: the oldest of four with room for three
    assert d.first("d") is False

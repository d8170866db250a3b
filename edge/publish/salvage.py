"""Read the events out of a damaged queue file page by page, without SQLite's own b-tree walk.

A queue file cut short (``truncate``), overwritten in the middle or left with a broken ``-wal``
makes SQLite refuse the whole file ("database disk image is malformed"). The rows themselves are
still on the pages that survived: this reader takes the newest image of every page (the main file,
then the WAL's frames in order), skips the pages on the free list, and decodes every table leaf
cell that has the shape of an event row ``(seq, id, payload, created)`` and whose JSON says the
same seq and id. Rows that SQLite had deleted but a page still holds (a page freed when the free
list itself is unreadable) may come back: they are re-sent with their original id and seq, the
at-least-once duplicates the MQTT contract already allows.

File format: https://www.sqlite.org/fileformat2.html (b-tree pages, records, WAL frames).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

_HEADER = b"SQLite format 3\x00"
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_LEAF_TABLE = 0x0D


@dataclass
class Salvaged:
    """What could be read: the events by seq, the highest seq counter seen, and the pages looked at."""

    events: dict[int, tuple[str, str, float]] = field(default_factory=dict)   # seq -> (id, payload, created)
    counter: int = 0            # the highest value of the meta table's seq row found on any page
    pages: int = 0
    unreadable_pages: int = 0

    @property
    def max_seq(self) -> int:
        return max([self.counter, *self.events])


def salvage(db_path: Path) -> Salvaged:
    """Every event row still readable in ``db_path`` and its ``-wal`` (both may be missing or damaged)."""
    main = _read(db_path)
    wal = _read(db_path.with_name(db_path.name + "-wal"))
    page_size = _page_size(main, wal)
    pages = {n + 1: main[o:o + page_size] for n, o in enumerate(range(0, len(main), page_size))}
    pages.update(_wal_pages(wal, page_size))
    free = _free_pages(pages, page_size)
    out = Salvaged()
    usable = page_size - (main[20] if len(main) > 20 and main.startswith(_HEADER) else 0)
    for number, page in sorted(pages.items()):
        if number in free or len(page) < page_size:
            continue
        out.pages += 1
        try:
            _read_leaf(pages, number, page, usable, out)
        except (IndexError, ValueError, struct.error, UnicodeDecodeError, RecursionError):
            out.unreadable_pages += 1
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _page_size(main: bytes, wal: bytes) -> int:
    candidates = []
    if main.startswith(_HEADER):
        raw = struct.unpack(">H", main[16:18])[0]
        candidates.append(65536 if raw == 1 else raw)
    if len(wal) >= 32 and struct.unpack(">I", wal[:4])[0] in _WAL_MAGIC:
        candidates.append(struct.unpack(">I", wal[8:12])[0])
    for size in candidates:
        if 512 <= size <= 65536 and size & (size - 1) == 0:
            return size
    return 4096


def _wal_pages(wal: bytes, page_size: int) -> dict[int, bytes]:
    """The newest image of each page among the WAL's frames of its current generation (its salts).

    Lenient on purpose: frames after a damaged one are still used (the rows on them are checked one
    by one), and so are frames of a transaction the crash cut short.
    """
    if len(wal) < 32 or struct.unpack(">I", wal[:4])[0] not in _WAL_MAGIC:
        return {}
    if struct.unpack(">I", wal[8:12])[0] != page_size:
        return {}
    salts = wal[16:24]
    pages: dict[int, bytes] = {}
    for offset in range(32, len(wal) - 24 - page_size + 1, 24 + page_size):
        if wal[offset + 8:offset + 16] != salts:
            continue
        number = struct.unpack(">I", wal[offset:offset + 4])[0]
        if number:
            pages[number] = wal[offset + 24:offset + 24 + page_size]
    return pages


def _free_pages(pages: dict[int, bytes], page_size: int) -> set[int]:
    """Pages on the free list named by page 1 (empty when page 1 is unreadable)."""
    first = pages.get(1, b"")
    if not first.startswith(_HEADER):
        return set()
    free: set[int] = set()
    trunk = struct.unpack(">I", first[32:36])[0]
    seen: set[int] = set()
    while trunk and trunk not in seen and trunk in pages:
        seen.add(trunk)
        free.add(trunk)
        page = pages[trunk]
        nxt, count = struct.unpack(">II", page[:8])
        count = min(count, (page_size - 8) // 4)
        free.update(struct.unpack(f">{count}I", page[8:8 + 4 * count]))
        trunk = nxt
    return free


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


def _read_leaf(pages: dict[int, bytes], number: int, page: bytes, usable: int, out: Salvaged) -> None:
    start = 100 if number == 1 else 0
    if page[start] != _LEAF_TABLE:
        return
    cells = struct.unpack(">H", page[start + 3:start + 5])[0]
    for i in range(cells):
        pointer = struct.unpack(">H", page[start + 8 + 2 * i:start + 10 + 2 * i])[0]
        try:
            size, pos = _varint(page, pointer)
            rowid, pos = _varint(page, pos)
            payload = _payload(pages, page, pos, size, usable)
            _take_row(rowid, _record(payload), out)
        except (IndexError, ValueError, struct.error, UnicodeDecodeError, KeyError):
            continue


def _payload(pages: dict[int, bytes], page: bytes, pos: int, size: int, usable: int) -> bytes:
    """A cell's whole payload: its local part and its overflow chain."""
    most = usable - 35
    if size <= most:
        return page[pos:pos + size]
    least = (usable - 12) * 32 // 255 - 23
    local = least + (size - least) % (usable - 4)
    if local > most:
        local = least
    data = bytearray(page[pos:pos + local])
    nxt = struct.unpack(">I", page[pos + local:pos + local + 4])[0]
    hops = 0
    while len(data) < size and nxt and hops < 10_000:
        over = pages[nxt]
        nxt = struct.unpack(">I", over[:4])[0]
        data += over[4:usable][:size - len(data)]
        hops += 1
    if len(data) != size:
        raise ValueError("overflow chain cut short")
    return bytes(data)


def _record(payload: bytes) -> list[object]:
    header_size, pos = _varint(payload, 0)
    types = []
    while pos < header_size:
        kind, pos = _varint(payload, pos)
        types.append(kind)
    values: list[object] = []
    pos = header_size
    for kind in types:
        if kind == 0:
            values.append(None)
        elif kind in (8, 9):
            values.append(kind - 8)
        elif 1 <= kind <= 6:
            width = (1, 2, 3, 4, 6, 8)[kind - 1]
            values.append(int.from_bytes(payload[pos:pos + width], "big", signed=True))
            pos += width
        elif kind == 7:
            values.append(struct.unpack(">d", payload[pos:pos + 8])[0])
            pos += 8
        elif kind >= 12:
            width = (kind - 12) // 2
            raw = payload[pos:pos + width]
            if len(raw) != width:
                raise ValueError("record cut short")
            values.append(raw.decode() if kind % 2 else raw)
            pos += width
        else:
            raise ValueError(f"serial type {kind}")
    return values


def _take_row(rowid: int, values: list[object], out: Salvaged) -> None:
    """Keep an events row whose JSON agrees with its seq and id; note the meta table's seq counter."""
    if len(values) == 2 and values[0] == "seq" and isinstance(values[1], int):
        out.counter = max(out.counter, values[1])
        return
    if len(values) != 4 or values[0] is not None or not isinstance(values[1], str) \
            or not isinstance(values[2], str) or not isinstance(values[3], (int, float)):
        return
    event = json.loads(values[2])
    if isinstance(event, dict) and event.get("seq") == rowid and event.get("id") == values[1] and rowid > 0:
        out.events[rowid] = (values[1], values[2], float(values[3]))

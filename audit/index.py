"""A SQLite index over the log, for queries, stats and export; the log stays the source of truth.

The index is derived data: `update()` catches up incrementally (new bytes in each segment),
re-reads a segment whose size shrank or whose content changed in place, drops pruned segments, and
`rebuild=True` starts from nothing. It holds routing fields and flagged categories only — never
input text — so it can be deleted at any time. Integrity questions go to `audit.verify`, not here.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.files import INDEX_FILE, list_segments

SCHEMA_VERSION = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS segments(name TEXT PRIMARY KEY, indexed_bytes INTEGER, size INTEGER, mtime_ns INTEGER);
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY, id TEXT, ts TEXT, day TEXT, kind TEXT, stage TEXT, action TEXT, tenant TEXT,
  request_id TEXT, key_id TEXT, policy_id TEXT, node TEXT, categories TEXT,
  segment TEXT, offset INTEGER, length INTEGER);
CREATE TABLE IF NOT EXISTS event_categories(seq INTEGER, category TEXT, score REAL, threshold REAL, action TEXT);
"""
# Composite indexes chosen so that the common filters (and their counts) are answered from the
# index alone: tenant/stage/action prefixes, time ranges, and "no category" rows for stats.
_INDEXES = """
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_id ON events(id);
CREATE INDEX IF NOT EXISTS events_action_ts ON events(action, ts);
CREATE INDEX IF NOT EXISTS events_tenant ON events(tenant, stage, action, ts);
CREATE INDEX IF NOT EXISTS events_stage ON events(stage, action, ts);
CREATE INDEX IF NOT EXISTS events_segment ON events(segment);
CREATE INDEX IF NOT EXISTS events_uncategorised ON events(categories, day, action);
CREATE INDEX IF NOT EXISTS categories_category ON event_categories(category, seq);
CREATE INDEX IF NOT EXISTS categories_seq ON event_categories(seq, category);
"""
_INDEX_NAMES = (
    "events_ts",
    "events_id",
    "events_action_ts",
    "events_tenant",
    "events_tenant_ts",
    "events_stage",
    "events_stage_ts",
    "events_segment",
    "events_uncategorised",
    "categories_category",
    "categories_seq",
)
COLUMNS = (
    "seq",
    "id",
    "ts",
    "kind",
    "stage",
    "action",
    "categories",
    "tenant",
    "request_id",
    "key_id",
    "policy_id",
    "node",
)


@dataclass(frozen=True)
class Filters:
    """Query filters; `since`/`until` are ISO-8601 UTC strings comparable with the events' `ts`."""

    since: str | None = None
    until: str | None = None
    action: str | None = None
    category: str | None = None
    tenant: str | None = None
    stage: str | None = None

    def where(self, alias: str = "e") -> tuple[str, list[Any]]:
        clauses, args = [], []
        for column, value, op in (
            ("ts", self.since, ">="),
            ("ts", self.until, "<"),
            ("action", self.action, "="),
            ("tenant", self.tenant, "="),
            ("stage", self.stage, "="),
        ):
            if value is not None:
                clauses.append(f"{alias}.{column} {op} ?")
                args.append(value)
        if self.category is not None:
            clauses.append(f"{alias}.seq IN (SELECT seq FROM event_categories WHERE category = ?)")
            args.append(self.category)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


@dataclass(frozen=True)
class UpdateStats:
    added: int
    reindexed_segments: int
    dropped_segments: int


class AuditIndex:
    def __init__(self, directory: str | Path, path: str | Path | None = None) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"audit directory {self.directory} does not exist")
        self.path = Path(path) if path is not None else self.directory / INDEX_FILE
        self._conn = sqlite3.connect(self.path, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        version = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if version is not None and version[0] != SCHEMA_VERSION:
            self._reset()
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES('schema', ?)", (SCHEMA_VERSION,))
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AuditIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building -----------------------------------------------------------------------
    def update(self, *, rebuild: bool = False) -> UpdateStats:
        """Bring the index level with the log; when nothing changed this is one stat per segment."""
        conn = self._conn
        if rebuild:
            self._reset()
        known = {row[0]: row[1:] for row in conn.execute("SELECT name, indexed_bytes, size, mtime_ns FROM segments")}
        segments = list_segments(self.directory)
        gone = set(known) - {s.name for s in segments}
        work = []  # (segment, stat, start offset, reindex?)
        for seg in segments:
            st = seg.path.stat()
            if seg.name not in known:
                work.append((seg, st, 0, False))
                continue
            indexed, size, mtime = known[seg.name]
            if st.st_size < indexed or (st.st_size == size and st.st_mtime_ns != mtime and indexed == size):
                work.append((seg, st, 0, True))  # shrank or rewritten in place: never trust old rows
            elif st.st_size != size or st.st_mtime_ns != mtime:
                work.append((seg, st, indexed, False))
        if not work and not gone:
            return UpdateStats(0, 0, 0)
        added = 0
        bulk = conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None
        with conn:
            if bulk:  # building from empty: insert first, create the b-tree indexes once at the end
                for name in _INDEX_NAMES:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
            for name in gone:
                self._drop_segment(name)
            for seg, st, start, reindex in work:
                if reindex:
                    self._drop_segment(seg.name)
                consumed = start
                if st.st_size > start:
                    n, consumed = self._index_segment(seg.path, seg.name, start, bulk=bulk)
                    added += n
                conn.execute(
                    "INSERT OR REPLACE INTO segments VALUES(?, ?, ?, ?)",
                    (seg.name, consumed, st.st_size, st.st_mtime_ns),
                )
        conn.executescript(_INDEXES)
        if bulk or added > 100_000:
            conn.execute("ANALYZE")  # planner statistics: pick the selective index per filter
            conn.commit()
        return UpdateStats(added, sum(1 for w in work if w[3]), len(gone))

    def total(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def _reset(self) -> None:
        with self._conn as conn:
            for table in ("events", "event_categories", "segments"):
                conn.execute(f"DELETE FROM {table}")

    def _drop_segment(self, name: str) -> None:
        self._conn.execute(
            "DELETE FROM event_categories WHERE seq IN (SELECT seq FROM events WHERE segment = ?)", (name,)
        )
        self._conn.execute("DELETE FROM events WHERE segment = ?", (name,))
        self._conn.execute("DELETE FROM segments WHERE name = ?", (name,))

    def _index_segment(self, path: Path, name: str, start: int, *, bulk: bool) -> tuple[int, int]:
        """Index complete lines from `start`; returns (events added, bytes consumed up to)."""
        added = 0
        events: list[tuple[Any, ...]] = []
        cats: list[tuple[Any, ...]] = []
        offset = start
        with open(path, "rb") as fh:
            fh.seek(start)
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # a torn tail: index it once a writer has sealed it off
                length = len(line)
                try:
                    rec = json.loads(line)
                    seq = int(rec["seq"])
                except (ValueError, KeyError, TypeError):
                    offset += length
                    continue
                flagged = rec.get("flagged") or []
                events.append(
                    (
                        seq,
                        rec.get("id"),
                        rec.get("ts"),
                        (rec.get("ts") or "")[:10],
                        rec.get("kind"),
                        rec.get("stage"),
                        rec.get("action"),
                        rec.get("tenant"),
                        rec.get("request_id"),
                        rec.get("key_id"),
                        (rec.get("policy") or {}).get("id"),
                        rec.get("node"),
                        ",".join(f.get("category", "") for f in flagged),
                        name,
                        offset,
                        length,
                    )
                )
                cats.extend(
                    (seq, f.get("category"), f.get("score"), f.get("threshold"), f.get("action")) for f in flagged
                )
                offset += length
                if len(events) >= 20000:
                    added += self._insert(events, cats, bulk=bulk)
        added += self._insert(events, cats, bulk=bulk)
        return added, offset

    def _insert(self, events: list[tuple[Any, ...]], cats: list[tuple[Any, ...]], *, bulk: bool) -> int:
        """Insert a batch; outside a bulk build, replaces rows of a seq seen before (a tampered log)."""
        n = len(events)
        if not bulk and events:
            self._conn.executemany("DELETE FROM event_categories WHERE seq = ?", [(e[0],) for e in events])
        self._conn.executemany(f"INSERT OR REPLACE INTO events VALUES({','.join('?' * 16)})", events)
        self._conn.executemany("INSERT INTO event_categories VALUES(?, ?, ?, ?, ?)", cats)
        events.clear()
        cats.clear()
        return n

    # --- reading ------------------------------------------------------------------------
    def count(self, filters: Filters) -> int:
        where, args = filters.where()
        return self._conn.execute(f"SELECT COUNT(*) FROM events e{where}", args).fetchone()[0]

    def query(self, filters: Filters, *, limit: int | None = 100, newest_first: bool = False) -> list[dict[str, Any]]:
        where, args = filters.where()
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {', '.join('e.' + c for c in COLUMNS)} FROM events e{where} ORDER BY e.seq {order}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [dict(zip(COLUMNS, row, strict=True)) for row in self._conn.execute(sql, args)]

    def stats(self, filters: Filters) -> list[dict[str, Any]]:
        """Counts per day x action x category; events with no flagged category count under '-'.

        Two halves instead of one LEFT JOIN: most events flag nothing and are counted from an
        index alone; only flagged events are joined with their categories.
        """
        where, args = filters.where()
        plain = f"{where} AND" if where else " WHERE"
        sql = (
            f"SELECT e.day, e.action, '-', COUNT(*) FROM events e{plain} e.categories = '' GROUP BY 1, 2 "
            "UNION ALL "
            f"SELECT e.day, e.action, c.category, COUNT(*) FROM event_categories c JOIN events e ON e.seq = c.seq"
            f"{where} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        return [{"day": d, "action": a, "category": c, "count": n} for d, a, c, n in self._conn.execute(sql, args * 2)]

    def locate(self, event_id: str) -> tuple[str, int, int] | None:
        row = self._conn.execute("SELECT segment, offset, length FROM events WHERE id = ?", (event_id,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The full record from the log file (not the index), or None."""
        where = self.locate(event_id)
        if where is None:
            return None
        line = _read_at(self.directory / where[0], where[1], where[2])
        record = json.loads(line)
        return record if record.get("id") == event_id else None

    def raw_lines(self, filters: Filters) -> Iterator[bytes]:
        """The sealed log lines matching `filters`, in log order, read from the segments."""
        where, args = filters.where()
        sql = f"SELECT e.segment, e.offset, e.length FROM events e{where} ORDER BY e.seq"
        handles: dict[str, Any] = {}
        try:
            for segment, offset, length in self._conn.execute(sql, args):
                fh = handles.get(segment)
                if fh is None:
                    fh = handles[segment] = open(self.directory / segment, "rb")  # noqa: SIM115
                fh.seek(offset)
                yield fh.read(length)
        finally:
            for fh in handles.values():
                fh.close()


def _read_at(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)

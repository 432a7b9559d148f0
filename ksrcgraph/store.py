"""Stage 5 — store: the SQLite cache of facts, manifests and linked graphs.

In: facts of one file content (``FileFacts``), keyed by (content hash, extractor key); a tree's
manifest (path, size, mtime, content hash); a linked graph keyed by (manifest digest, linker key).
Out: the same, read back — or nothing, when a row is missing or fails its checksum.

Facts are stored once per distinct file content, like Elixir does for every kernel tag: indexing a
second version parses only the files whose content is new. Every row carries a checksum; a row
that fails it is dropped with a warning and rebuilt; a database SQLite cannot read is moved aside
(``facts.sqlite.damaged-<time>``) and rebuilt. A cache is an optimisation, never a crash. A cache
that cannot be written (read-only, full disk) is not damaged: that is a ``CacheError`` saying which.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import shutil
import sqlite3
import sys
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import cachedir
from .errors import CacheError
from .facts import FileFacts, from_plain, to_plain

SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs(
    hash TEXT NOT NULL, xkey TEXT NOT NULL, data BLOB NOT NULL, checksum TEXT NOT NULL,
    PRIMARY KEY(hash, xkey)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests(
    id TEXT PRIMARY KEY, label TEXT NOT NULL, root TEXT NOT NULL, scope TEXT NOT NULL,
    version TEXT, created REAL NOT NULL, digest TEXT NOT NULL, data BLOB NOT NULL, checksum TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS graphs(
    key TEXT PRIMARY KEY, created REAL NOT NULL, data BLOB NOT NULL, checksum TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS graph_rows(
    key TEXT NOT NULL, node INTEGER NOT NULL, data BLOB NOT NULL, checksum TEXT NOT NULL,
    PRIMARY KEY(key, node)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS graph_parts(
    key TEXT NOT NULL, part TEXT NOT NULL, data BLOB NOT NULL, checksum TEXT NOT NULL,
    PRIMARY KEY(key, part)) WITHOUT ROWID;
"""


class DamagedEntry(Exception):
    """A cached row failed its checksum."""

_MARSHAL_VERSION = 4


def checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pack(obj: object) -> bytes:
    return zlib.compress(marshal.dumps(obj, _MARSHAL_VERSION), 1)


def unpack(data: bytes) -> object:
    return marshal.loads(zlib.decompress(data))


def pack_facts(ff: FileFacts) -> bytes:
    return pack(to_plain(ff))


def checked(data: bytes, cs: str) -> object:
    """A stored value, unpacked after its checksum; ValueError (or a decoding error) when damaged."""
    if checksum(data) != cs:
        raise ValueError("checksum")
    return unpack(data)


_DAMAGE = (ValueError, EOFError, TypeError, zlib.error)


def warn(msg: str) -> None:
    print(f"Warning: {msg}", file=sys.stderr)


BUSY_SECONDS = 300.0  # how long a run waits for another run holding the database


def _busy(e: Exception) -> bool:
    """Another process holds the database (not damage): SQLite's "database is locked" / "busy"."""
    return isinstance(e, sqlite3.OperationalError) and any(w in str(e).lower() for w in ("locked", "busy"))


def _when_free(fn, *args):  # type: ignore[no-untyped-def]
    """fn(*args), retried while another run holds the database; other errors go through."""
    deadline = time.monotonic() + BUSY_SECONDS
    pause = 0.05
    while True:
        try:
            return fn(*args)
        except sqlite3.DatabaseError as e:
            if not _busy(e) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _not_damage(e: sqlite3.Error, path: Path) -> CacheError | None:
    """The cache's surroundings, not its content, are at fault — a full disk, a read-only file or
    directory, a database that cannot be opened: the CacheError saying so (None for damage)."""
    name = getattr(e, "sqlite_errorname", "") or ""
    text = str(e).lower()
    if name.startswith("SQLITE_FULL") or "disk is full" in text or _no_room(path):
        return cachedir.full_error(path)
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")) or "readonly" in text:
        return cachedir.read_only_error(path, str(e))
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        writable = os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))
        if not writable:
            return cachedir.read_only_error(path, str(e))
        return CacheError(f"cannot open the cache database {path}: {e}",
                          "check that it is a file you can write (or remove it), or set KSRCGRAPH_CACHE_DIR "
                          "to another directory")
    return None


def _no_room(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        return False


class Store:
    """One connection to the cache database. Safe to use from concurrent processes (WAL, busy
    timeout); every write is a short transaction, so a killed run leaves only complete rows."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cachedir.db_path()
        self._warned = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot create cache directory {self.path.parent}: {e.strerror}",
                             "set KSRCGRAPH_CACHE_DIR to a writable directory") from e
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return _when_free(self._connect)
        except sqlite3.DatabaseError as e:
            self._raise_unless_damage(e)
            self._move_aside(e)
            try:
                return self._connect()
            except sqlite3.DatabaseError as e2:
                raise CacheError(f"cannot use cache database {self.path}: {e2}",
                                 "set KSRCGRAPH_CACHE_DIR to another directory") from e2

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=60000")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None:
                raise sqlite3.DatabaseError("cannot set journal mode")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            db.execute("SELECT count(*) FROM manifests").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _raise_unless_damage(self, e: sqlite3.Error) -> None:
        err = _not_damage(e, self.path)
        if err is not None:
            raise err from e

    def _move_aside(self, err: Exception) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        warn(f"cache database {self.path} is damaged ({err}); moved to {aside.name} and rebuilding")
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            try:
                if p.exists():
                    os.replace(p, Path(str(aside) + suffix))
            except OSError:
                try:
                    p.unlink(missing_ok=True)
                except OSError as e:
                    raise cachedir.write_error(e, p) from e

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _damaged(self, what: str) -> None:
        if not self._warned:
            warn(f"cache entry {what} failed its checksum; it is ignored and rebuilt")
            self._warned = True

    def _guard(self, fn, *args):  # type: ignore[no-untyped-def]
        """Run a read; a database error in the middle of a run moves the cache aside once."""
        try:
            return _when_free(fn, *args)
        except sqlite3.DatabaseError as e:
            self._raise_unless_damage(e)
            self.db.close()
            self._move_aside(e)
            self.db = self._open()
            return fn(*args)

    def _select_in(self, sql: str, fixed: tuple, keys: Sequence):  # type: ignore[no-untyped-def]
        """Rows of ``sql`` (ending in ``IN ({marks})``) for keys, 500 at a time."""
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            yield from self.db.execute(sql.format(marks=",".join("?" * len(chunk))), (*fixed, *chunk))

    # -- blobs -----------------------------------------------------------------------------
    def known_blobs(self, hashes: Sequence[str], xkey: str) -> set[str]:
        def q() -> set[str]:
            return {r[0] for r in self._select_in("SELECT hash FROM blobs WHERE xkey=? AND hash IN ({marks})",
                                                  (xkey,), hashes)}

        return self._guard(q)

    def load_blobs(self, hashes: Sequence[str], xkey: str) -> dict[str, FileFacts]:
        def q() -> dict[str, FileFacts]:
            out: dict[str, FileFacts] = {}
            bad: list[str] = []
            for h, data, cs in self._select_in("SELECT hash, data, checksum FROM blobs WHERE xkey=? AND hash IN ({marks})",
                                               (xkey,), sorted(set(hashes))):
                try:
                    out[h] = from_plain(checked(data, cs))  # type: ignore[arg-type]
                except _DAMAGE:
                    bad.append(h)
            if bad:
                self._damaged(f"facts of {len(bad)} file(s)")
                self.delete_blobs(bad, xkey)
            return out

        return self._guard(q)

    def put_blobs(self, rows: Iterable[tuple[str, str, bytes]]) -> None:
        data = [(h, x, d, checksum(d)) for h, x, d in rows]
        if not data:
            return
        with self._tx():
            self.db.executemany("INSERT OR IGNORE INTO blobs(hash, xkey, data, checksum) VALUES (?,?,?,?)", data)

    def delete_blobs(self, hashes: Sequence[str], xkey: str) -> None:
        with self._tx():
            self.db.executemany("DELETE FROM blobs WHERE hash=? AND xkey=?", [(h, xkey) for h in hashes])

    # -- manifests -------------------------------------------------------------------------
    def get_manifest(self, mid: str) -> tuple[dict, list] | None:
        def q():  # type: ignore[no-untyped-def]
            row = self.db.execute(
                "SELECT label, root, scope, version, created, digest, data, checksum FROM manifests WHERE id=?", (mid,)
            ).fetchone()
            if row is None:
                return None
            label, root, scope, version, created, digest, data, cs = row
            try:
                files = checked(data, cs)
            except _DAMAGE:
                self._damaged(f"manifest {mid}")
                return None
            meta = {"id": mid, "label": label, "root": root, "scope": scope, "version": version,
                    "created": created, "digest": digest}
            return meta, files

        return self._guard(q)

    def put_manifest(self, mid: str, label: str, root: str, scope: str, version: str | None, digest: str,
                     files: list) -> None:
        data = pack(files)
        with self._tx():
            self.db.execute(
                "INSERT OR REPLACE INTO manifests(id, label, root, scope, version, created, digest, data, checksum)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (mid, label, root, scope, version, time.time(), digest, data, checksum(data)),
            )

    def manifests(self) -> list[dict]:
        rows = self._guard(lambda: self.db.execute(
            "SELECT id, label, root, scope, version, created, digest, length(data) FROM manifests ORDER BY id").fetchall())
        return [dict(zip(("id", "label", "root", "scope", "version", "created", "digest", "bytes"), r)) for r in rows]

    # -- linked graphs ---------------------------------------------------------------------
    # A graph is a core (nodes, counts, weighted adjacency arrays), one row of edges per calling
    # function, and named parts (the reference stack's tables): a warm query reads the core and only
    # the rows and parts it needs.
    def get_graph(self, key: str) -> dict | None:
        def q():  # type: ignore[no-untyped-def]
            row = self.db.execute("SELECT data, checksum FROM graphs WHERE key=?", (key,)).fetchone()
            if row is None:
                return None
            try:
                return checked(*row)
            except _DAMAGE:
                self._damaged(f"graph {key}")
                self.delete_graph(key)
                return None

        return self._guard(q)

    ROWS_PER_CHUNK = 64  # functions whose edge rows are stored (and read) together

    def get_rows(self, key: str, nodes: Sequence[int]) -> dict[int, list]:
        """Edge rows of these functions; DamagedEntry when one fails its checksum."""
        def q() -> dict[int, list]:
            out: dict[int, list] = {}
            chunks = sorted({n // self.ROWS_PER_CHUNK for n in nodes})
            for chunk, data, cs in self._select_in("SELECT node, data, checksum FROM graph_rows WHERE key=? AND node IN ({marks})",
                                                   (key,), chunks):
                try:
                    rows = checked(data, cs)
                except _DAMAGE as e:
                    raise DamagedEntry(f"edges of functions #{chunk * self.ROWS_PER_CHUNK}..") from e
                out.update(rows)  # type: ignore[arg-type]
            return out

        return self._guard(q)

    def get_part(self, key: str, part: str) -> object | None:
        def q():  # type: ignore[no-untyped-def]
            row = self.db.execute("SELECT data, checksum FROM graph_parts WHERE key=? AND part=?", (key, part)).fetchone()
            if row is None:
                return None
            try:
                return checked(*row)
            except _DAMAGE as e:
                raise DamagedEntry(f"{part} of the graph") from e

        return self._guard(q)

    def put_graph(self, key: str, core: dict, rows: dict[int, list], parts: dict[str, object]) -> None:
        data = pack(core)
        chunks: dict[int, dict[int, list]] = {}
        for n, r in rows.items():
            chunks.setdefault(n // self.ROWS_PER_CHUNK, {})[n] = r
        row_data = [(key, c, d, checksum(d)) for c, d in ((c, pack(v)) for c, v in sorted(chunks.items()))]
        part_data = [(key, name, d, checksum(d)) for name, d in ((n, pack(v)) for n, v in sorted(parts.items()))]
        with self._tx():
            self.db.execute("DELETE FROM graph_rows WHERE key=?", (key,))
            self.db.execute("DELETE FROM graph_parts WHERE key=?", (key,))
            self.db.executemany("INSERT INTO graph_rows(key, node, data, checksum) VALUES (?,?,?,?)", row_data)
            self.db.executemany("INSERT INTO graph_parts(key, part, data, checksum) VALUES (?,?,?,?)", part_data)
            # the core last: a graph without its core is never read
            self.db.execute("INSERT OR REPLACE INTO graphs(key, created, data, checksum) VALUES (?,?,?,?)",
                            (key, time.time(), data, checksum(data)))

    def delete_graph(self, key: str) -> None:
        with self._tx():
            for table in ("graphs", "graph_rows", "graph_parts"):
                self.db.execute(f"DELETE FROM {table} WHERE key=?", (key,))

    # -- maintenance -----------------------------------------------------------------------
    def info(self) -> dict:
        def q() -> dict:
            nb, bb = self.db.execute("SELECT count(*), coalesce(sum(length(data)),0) FROM blobs").fetchone()
            ng, gb = self.db.execute("SELECT count(*), coalesce(sum(length(data)),0) FROM graphs").fetchone()
            gb += self.db.execute("SELECT coalesce(sum(length(data)),0) FROM graph_rows").fetchone()[0]
            gb += self.db.execute("SELECT coalesce(sum(length(data)),0) FROM graph_parts").fetchone()[0]
            return {"path": str(self.path), "blobs": nb, "blob_bytes": bb, "graphs": ng, "graph_bytes": gb,
                    "manifests": self.manifests(),
                    "file_bytes": self.path.stat().st_size if self.path.exists() else 0}

        return self._guard(q)

    def prune(self) -> dict:
        """Drop manifests of trees that are gone, facts no manifest references, graphs of
        manifests that no longer exist; then compact the database."""
        before = self.path.stat().st_size if self.path.exists() else 0
        gone = [m["id"] for m in self.manifests() if not Path(m["root"]).exists()]
        with self._tx():
            self.db.executemany("DELETE FROM manifests WHERE id=?", [(g,) for g in gone])
        keep: set[str] = set()
        digests: set[str] = set()
        for (mid,) in self.db.execute("SELECT id FROM manifests").fetchall():
            got = self.get_manifest(mid)
            if got is not None:
                keep.update(r[3] for r in got[1])
                digests.add(got[0]["digest"])
        stale = [h for (h,) in self.db.execute("SELECT DISTINCT hash FROM blobs") if h not in keep]
        graphs = [k for (k,) in self.db.execute("SELECT key FROM graphs") if k.split("|")[0] not in digests]
        orphans = [k for (k,) in self.db.execute("SELECT DISTINCT key FROM graph_rows")
                   if k.split("|")[0] not in digests]
        with self._tx():
            self.db.executemany("DELETE FROM blobs WHERE hash=?", [(h,) for h in stale])
            for k in set(graphs) | set(orphans):
                for table in ("graphs", "graph_rows", "graph_parts"):
                    self.db.execute(f"DELETE FROM {table} WHERE key=?", (k,))
        with _Tx(self.db, self.path, begin=False):
            self.db.execute("VACUUM")
        after = self.path.stat().st_size if self.path.exists() else 0
        return {"manifests": len(gone), "blobs": len(stale), "graphs": len(graphs), "before": before, "after": after}

    def _tx(self):  # type: ignore[no-untyped-def]
        return _Tx(self.db, self.path)


class _Tx:
    """One write transaction; a write the cache's surroundings refuse (full disk, read-only) is a
    CacheError saying so."""

    def __init__(self, db: sqlite3.Connection, path: Path, begin: bool = True) -> None:
        self.db, self.path, self.begin = db, path, begin

    def __enter__(self) -> None:
        if self.begin:
            self._run("BEGIN IMMEDIATE")

    def __exit__(self, et, ev, tb) -> None:  # type: ignore[no-untyped-def]
        if et is None and self.begin:
            self._run("COMMIT")
            return
        if self.begin and self.db.in_transaction:  # after SQLITE_FULL, SQLite has rolled back already
            self.db.execute("ROLLBACK")
        if isinstance(ev, sqlite3.Error):
            err = _not_damage(ev, self.path)
            if err is not None:
                raise err from ev

    def _run(self, sql: str) -> None:
        try:
            self.db.execute(sql)
        except sqlite3.Error as e:
            if sql == "COMMIT" and self.db.in_transaction:
                self.db.execute("ROLLBACK")
            err = _not_damage(e, self.path)
            if err is not None:
                raise err from e
            raise

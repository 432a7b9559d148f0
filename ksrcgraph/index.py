"""The indexing run: sources → clean/parse/extract (process pool) → store.

In: a ``SourceTree``. Out: an ``Index`` — the tree's manifest (path, content hash) with its digest,
every file's facts present in the store, and counts of what was done.

Steps:
 1. list the .c/.h files in scope (sources.list_files);
 2. hash their contents, reusing the previous manifest's hash when size and mtime are unchanged
    (a tree we extracted ourselves is immutable: its manifest is reused as is);
 3. ask the store which contents already have facts for this extractor;
 4. parse the others in a process pool (each worker builds its own parser) and store their facts
    in batches — a killed run keeps every completed batch;
 5. record the manifest.
"""

from __future__ import annotations

import os
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from . import env
from . import extract as _extract
from .progress import Progress
from .sources import SourceTree, list_files
from .store import Store, content_hash, pack_facts


@dataclass
class Index:
    tree: SourceTree
    manifest_id: str
    digest: str  # hash of the sorted (path, content hash) list: identifies the indexed content
    files: list[tuple[str, str]]  # (path, content hash), sorted by path
    xkey: str
    stats: dict = field(default_factory=dict)


def manifest_id(tree: SourceTree, all_headers: bool = False) -> str:
    return f"{tree.root}|{','.join(tree.scope)}|{'all' if all_headers else 'reach'}"


_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.M)


def includes_of(data: bytes) -> tuple[str, ...]:
    """The #include targets of a file, '<linux/net.h' or '"foo.h' (quote kind kept)."""
    return tuple(q.decode() + n.decode("utf-8", "replace").strip() for q, n in _INCLUDE.findall(data))


def include_closure(rows: list[tuple]) -> set[str]:
    """The .c files in scope and every header they include, directly or not. A header no .c file
    in scope includes cannot define or declare anything the scope's code calls: it is not indexed
    (unless --all-headers). Resolution: "x.h" next to the includer first; <x/y.h> under include/,
    include/uapi/, and <asm/y.h> as include/asm-generic/y.h (the architecture is not in scope)."""
    present = {r[0] for r in rows}
    incs = {r[0]: r[4] for r in rows}
    roots = [p for p in present if p.endswith(".c")]
    if not roots:
        return present
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        here = os.path.dirname(p)
        for inc in incs.get(p, ()):
            kind, name = inc[0], inc[1:]
            cands = []
            if kind == '"':
                cands.append(os.path.normpath(os.path.join(here, name)))
            cands += [f"include/{name}", f"include/uapi/{name}"]
            if name.startswith("asm/"):
                cands.append(f"include/asm-generic/{name[4:]}")
            for c in cands:
                if c in present:
                    if c not in seen:
                        stack.append(c)
                    break
    return seen


def _digest(files: list[tuple[str, str]]) -> str:
    return content_hash("\n".join(f"{p}\t{h}" for p, h in files).encode())


def default_jobs() -> int:
    """KSRCGRAPH_JOBS, else the CPUs; never more than env.max_jobs() (a library caller gets no
    usage error, as the command line does, but no thousand processes either)."""
    value = os.environ.get("KSRCGRAPH_JOBS")
    n = int(value) if value and value.isdigit() and int(value) > 0 else env.cpus()
    return min(n, env.max_jobs())


def _job(items: list[tuple[str, str]]) -> list[tuple[str, str, bytes | None, int, str]]:
    """Worker: (relpath, abspath) -> (relpath, content hash, packed facts | None, size, error)."""
    out = []
    for rel, ap in items:
        try:
            with open(ap, "rb") as fh:
                raw = fh.read()
        except OSError as e:
            out.append((rel, "", None, 0, e.strerror or str(e)))
            continue
        h = content_hash(raw)
        out.append((rel, h, pack_facts(_extract.extract(rel, raw)), len(raw), ""))
    return out


def usable_jobs(jobs: int | None) -> int:
    """The parser processes to start for a caller's jobs (None: the default), within 1..max_jobs()."""
    return max(1, min(jobs, env.max_jobs())) if jobs else default_jobs()


def build_index(tree: SourceTree, store: Store, jobs: int | None = None, progress: Progress | None = None,
                all_headers: bool = False) -> Index:
    t0 = time.perf_counter()
    mid = manifest_id(tree, all_headers)
    xkey = _extract.extractor_key()
    prev = store.get_manifest(mid)
    prev_rows = {r[0]: tuple(r) for r in prev[1]} if prev else {}
    stats: dict = {"files": 0, "bytes": 0, "parsed": 0, "parsed_bytes": 0, "reused": 0, "unreadable": []}

    if prev and tree.immutable and prev[0]["digest"] and all(len(r) >= 5 for r in prev[1]):
        rows = [tuple(r) for r in prev[1]]
    else:
        rows = []
        for rel, ap, size, mtime in list_files(tree):
            old = prev_rows.get(rel)
            if old is not None and old[1] == size and old[2] == mtime and len(old) >= 5:
                rows.append(old)
                continue
            try:
                with open(ap, "rb") as fh:
                    data = fh.read()
            except OSError as e:
                stats["unreadable"].append(f"{rel}: {e.strerror}")
                continue
            rows.append((rel, size, mtime, content_hash(data), includes_of(data)))
    if not rows:
        from .errors import SourceError

        raise SourceError(f"no .c or .h files under {tree.root} in scope {','.join(tree.scope)}",
                          "check --source and --scope")
    keep = {r[0] for r in rows} if all_headers else include_closure(rows)
    stats["headers_in_scope"] = sum(1 for r in rows if r[0].endswith(".h"))
    stats["headers_indexed"] = sum(1 for r in rows if r[0].endswith(".h") and r[0] in keep)
    files = sorted((r[0], r[3]) for r in rows if r[0] in keep)
    stats["files"] = len(files)
    stats["bytes"] = sum(r[1] for r in rows if r[0] in keep)
    digest = _digest(files)
    if prev is not None and prev[0]["digest"] == digest and prev[0]["id"] == mid:
        # nothing changed since this manifest was recorded with every file's facts in the store
        # (a fact lost since then is re-extracted by load_facts)
        stats["reused"] = len(files)
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        return Index(tree, mid, digest, files, xkey, stats)
    hashes = [h for _, h in files]
    known = store.known_blobs(hashes, xkey)
    todo: dict[str, str] = {}
    queued: set[str] = set()
    for rel, h in files:
        if h not in known and h not in queued:
            todo[rel] = h
            queued.add(h)
    stats["reused"] = len(files) - len(todo)
    if todo:
        _parse_all(tree, todo, store, xkey, usable_jobs(jobs), progress, stats)
    if prev is None or prev[0]["digest"] != digest or not (prev and tree.immutable):
        store.put_manifest(mid, tree.label, str(tree.root), ",".join(tree.scope), tree.version, digest,
                           [list(r) for r in sorted(rows)])
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    return Index(tree, mid, digest, files, xkey, stats)


def _parse_all(tree: SourceTree, todo: dict[str, str], store: Store, xkey: str, jobs: int,
               progress: Progress | None, stats: dict) -> None:
    root = str(tree.root)
    items = sorted(todo, key=lambda rel: -_size(os.path.join(root, rel)))
    total = len(items)
    done = 0
    pending_rows: list[tuple[str, str, bytes]] = []

    def collect(results: list) -> None:
        nonlocal done
        for rel, h, blob, size, err in results:
            done += 1
            if blob is None:
                stats["unreadable"].append(f"{rel}: {err}")
                continue
            stats["parsed"] += 1
            stats["parsed_bytes"] += size
            pending_rows.append((h, xkey, blob))
        if len(pending_rows) >= 200:
            store.put_blobs(pending_rows)
            pending_rows.clear()
        if progress is not None:
            progress("indexing", done, total)

    if progress is not None:
        progress("indexing", 0, total)
    if jobs <= 1 or total < 16:
        for i in range(0, total, 16):
            collect(_job([(rel, os.path.join(root, rel)) for rel in items[i : i + 16]]))
    else:
        # big files first, small batches: keeps both workers busy to the end
        batches: list[list[tuple[str, str]]] = []
        cur: list[tuple[str, str]] = []
        acc = 0
        for rel in items:
            ap = os.path.join(root, rel)
            cur.append((rel, ap))
            acc += _size(ap)
            if acc > 400_000 or len(cur) >= 32:
                batches.append(cur)
                cur, acc = [], 0
        if cur:
            batches.append(cur)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_job, b) for b in batches[: jobs * 4]}
            nxt = jobs * 4
            while futures:
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                for f in finished:
                    collect(f.result())
                    if nxt < len(batches):
                        futures.add(pool.submit(_job, batches[nxt]))
                        nxt += 1
    store.put_blobs(pending_rows)


def _size(p: str) -> int:
    try:
        return os.path.getsize(p)
    except OSError:
        return 0


def load_facts(index: Index, store: Store) -> list:
    """Facts of every file of the index, in path order (re-extracting any the store lost)."""
    blobs = store.load_blobs([h for _, h in index.files], index.xkey)
    missing = {rel: h for rel, h in index.files if h not in blobs}
    if missing:
        _parse_all(index.tree, missing, store, index.xkey, default_jobs(), None, {"parsed": 0, "parsed_bytes": 0,
                                                                                   "unreadable": []})
        blobs.update(store.load_blobs(list(missing.values()), index.xkey))
    out = []
    for rel, h in index.files:
        ff = blobs.get(h)
        if ff is None:
            print(f"Warning: no facts for {rel}", file=sys.stderr)
            continue
        if ff.path != rel:  # same content under another name: facts are per content
            ff = ff._replace(path=rel)
        out.append(ff)
    return out

"""The whole pipeline behind one call: ``open_graph(kernel, source, scope)`` → ``CallGraph``.

Steps (each a stage module, data flowing one way):
 1. sources.open_tree — find, extract or download the kernel tree;
 2. index.build_index — parse what the store does not know yet (process pool), record the manifest;
 3. the linked graph for that manifest is read from the store, or built (``build_graph``) by
    link.Program + resolve.build from every file's facts, with the reference stack's tables from
    refstack.tables.build_parts, packed by graph.pack and stored;
 4. graph.CallGraph serves queries, reading edge rows and the reference stack's tables from the
    store only when a query needs them.
A warm run on a tree we extracted ourselves reads the manifest and the graph's core: it parses,
links and loads nothing else.
"""

from __future__ import annotations

import time

from . import attach, index, kdata, link, resolve, sources
from .extract import extractor_key
from .facts import FileFacts
from .graph import CallGraph, pack
from .progress import Progress
from .refstack import tables
from .store import DamagedEntry, Store, warn


def graph_key(digest: str, xkey: str) -> str:
    return f"{digest}|{xkey}|L{resolve.LINKER_VERSION}-{kdata.package_digest(but=kdata.NOT_IN_GRAPH)}"


def _meta(tree: sources.SourceTree, digest: str, version: str | None, extra: dict | None = None) -> dict:
    m = {"label": tree.label, "version": version, "scope": list(tree.scope), "root": str(tree.root),
         "origin": tree.origin, "digest": digest}
    if extra:
        m.update(extra)
    return m


class _Lazy:
    """Reads a stored graph's rows and parts on demand; rebuilds the graph if one is damaged."""

    def __init__(self, st: Store, key: str, rebuild) -> None:  # type: ignore[no-untyped-def]
        self.st, self.key, self.rebuild = st, key, rebuild
        self.fresh: tuple[dict, dict] | None = None  # (rows, parts) after a rebuild

    def rows(self, nodes: list[int], lost: list[int] | None = None) -> dict[int, list]:
        if self.fresh is None and lost:
            self._rebuild(f"edges of {len(lost)} function(s) are missing")
        if self.fresh is None:
            try:
                return self.st.get_rows(self.key, nodes)
            except DamagedEntry as e:
                self._rebuild(str(e))
        rows = self.fresh[0]  # type: ignore[index]
        return {i: rows.get(i, []) for i in nodes}

    def part(self, name: str):  # type: ignore[no-untyped-def]
        if self.fresh is None:
            try:
                got = self.st.get_part(self.key, name)
                if got is not None:
                    return got
                raise DamagedEntry(f"{name} of the graph is missing")
            except DamagedEntry as e:
                self._rebuild(str(e))
        return self.fresh[1].get(name)  # type: ignore[index]

    def _rebuild(self, what: str) -> None:
        warn(f"cache entry ({what}) is damaged; rebuilding the graph")
        self.st.delete_graph(self.key)
        _core, rows, parts = self.rebuild()
        self.fresh = (rows, parts)


def build_graph(facts: list[FileFacts]) -> tuple[dict, dict, dict]:
    """Facts of a whole tree -> the packed graph (core, rows, parts): link, resolve, the reference
    stack's tables, pack."""
    prog = link.Program(facts)
    linked = resolve.build(prog)
    parts = tables.build_parts(prog, linked.flows)
    parts[attach.PART] = attach.features(prog)  # what attachability is predicted from (issue 11)
    linked = linked._replace(flows=None)  # the value flow and the program are not needed any more
    del prog
    return pack(linked, parts)


def from_facts(facts: list[FileFacts], meta: dict | None = None) -> CallGraph:
    """A CallGraph built in this process from facts (tests, fixtures)."""
    return CallGraph(*build_graph(facts), meta)


def _build(ix: index.Index, st: Store, key: str) -> tuple[dict, dict, dict]:
    core, rows, parts = build_graph(index.load_facts(ix, st))
    st.put_graph(key, core, rows, parts)
    return core, rows, parts


def open_graph(kernel: str | None, source: str | None, scope: tuple[str, ...], progress: Progress | None = None,
               jobs: int | None = None, store: Store | None = None, all_headers: bool = False) -> CallGraph:
    t0 = time.perf_counter()
    tree = sources.open_tree(kernel, source, scope, progress)
    st = store or Store()
    xkey = extractor_key()
    if tree.immutable:  # fast path: nothing can have changed under a tree we extracted
        got = st.get_manifest(index.manifest_id(tree, all_headers))
        if got is not None:
            key = graph_key(got[0]["digest"], xkey)
            core = st.get_graph(key)
            if core is not None:
                lazy = _Lazy(st, key, lambda: _build(index.build_index(tree, st, jobs, progress, all_headers), st, key))
                return CallGraph(core, lazy.rows, lazy.part, _meta(tree, got[0]["digest"], got[0]["version"],
                                                                   {"warm": True}))
    ix = index.build_index(tree, st, jobs, progress, all_headers)
    key = graph_key(ix.digest, ix.xkey)
    timings: dict = {"index_seconds": ix.stats.get("seconds")}
    meta = _meta(tree, ix.digest, tree.version, {"warm": False, "index": {
        k: v for k, v in ix.stats.items() if k != "unreadable"}, "unreadable": ix.stats.get("unreadable", [])})
    core = st.get_graph(key)
    if core is not None:
        lazy = _Lazy(st, key, lambda: _build(ix, st, key))
        timings["total_seconds"] = round(time.perf_counter() - t0, 3)
        return CallGraph(core, lazy.rows, lazy.part, {**meta, **timings})
    t1 = time.perf_counter()
    if progress is not None:
        progress("linking", 0, 1)
    core, rows, parts = _build(ix, st, key)
    if progress is not None:
        progress("linking", 1, 1)
    timings["link_seconds"] = round(time.perf_counter() - t1, 3)
    timings["total_seconds"] = round(time.perf_counter() - t0, 3)
    if store is None:
        st.close()
    return CallGraph(core, rows, parts, {**meta, **timings})

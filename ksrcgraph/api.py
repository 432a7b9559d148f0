"""The whole pipeline behind one call: ``open_graph(kernel, source, scope)`` → ``CallGraph``.

Steps (each a stage module, data flowing one way):
 1. sources.open_tree — find or extract the kernel tree;
 2. index.build_index — parse what the store does not know yet (process pool), record the manifest;
 3. the linked graph for that manifest is read from the store, or built by link.Program +
    resolve.build from every file's facts and stored;
 4. graph.CallGraph wraps it for queries.
A warm run on a tree we extracted ourselves reads the manifest and the linked graph, and parses and
links nothing.
"""

from __future__ import annotations

import time

from . import index, kdata, link, resolve, sources
from .extract import extractor_key
from .graph import CallGraph
from .store import Store

Progress = index.Progress


def graph_key(digest: str, xkey: str) -> str:
    return f"{digest}|{xkey}|L{resolve.LINKER_VERSION}-{kdata.code_digest('link', 'resolve', 'refstack/tables')}"


def _meta(tree: sources.SourceTree, digest: str, version: str | None, extra: dict | None = None) -> dict:
    m = {"label": tree.label, "version": version, "scope": list(tree.scope), "root": str(tree.root),
         "origin": tree.origin, "digest": digest}
    if extra:
        m.update(extra)
    return m


def open_graph(kernel: str | None, source: str | None, scope: tuple[str, ...], progress: Progress | None = None,
               jobs: int | None = None, store: Store | None = None) -> CallGraph:
    t0 = time.perf_counter()
    tree = sources.open_tree(kernel, source, scope, progress)
    own = store is None
    st = store or Store()
    try:
        xkey = extractor_key()
        if tree.immutable:  # fast path: nothing can have changed under a tree we extracted
            got = st.get_manifest(index.manifest_id(tree))
            if got is not None:
                lg = st.get_graph(graph_key(got[0]["digest"], xkey))
                if lg is not None:
                    return CallGraph(resolve.LinkedGraph(*lg), _meta(tree, got[0]["digest"], got[0]["version"],
                                                                     {"warm": True}))
        ix = index.build_index(tree, st, jobs, progress)
        gk = graph_key(ix.digest, ix.xkey)
        lg = st.get_graph(gk)
        timings = {"index_seconds": ix.stats.get("seconds")}
        if lg is None:
            t1 = time.perf_counter()
            if progress is not None:
                progress("linking", 0, 1)
            facts = index.load_facts(ix, st)
            prog = link.Program(facts)
            built = resolve.build(prog)
            del facts, prog
            st.put_graph(gk, tuple(built))
            lg = built
            timings["link_seconds"] = round(time.perf_counter() - t1, 3)
            if progress is not None:
                progress("linking", 1, 1)
        else:
            lg = resolve.LinkedGraph(*lg)
        timings["total_seconds"] = round(time.perf_counter() - t0, 3)
        return CallGraph(lg, _meta(tree, ix.digest, tree.version, {"warm": False, "index": {
            k: v for k, v in ix.stats.items() if k != "unreadable"}, "unreadable": ix.stats.get("unreadable", []),
            **timings}))
    finally:
        if own:
            st.close()

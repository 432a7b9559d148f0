"""``ksrcgraph matrix FROM TO --kernel A --kernel B ...``: one path over many kernel versions.

In: the query (as ``path`` and ``diff`` take it) and the versions, in the order given. Out: a row per
version — does a call path exist, does one resolve on the reference stack for the socket (the best
one that does is the row's path, as ``path --socket`` shows it first), its hops, and what changed from
the previous version: exactly what ``diff --from PREVIOUS --to THIS --socket S`` reports — rendered by
``report.versions``. Exit status 0 when every version has a resolving path, 3 when one has none.

Without --socket, every row is replayed for one configuration: the first that realises the first path
``path`` shows, in the first version that has one (the table says which).
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import KsrcError, SymbolError
from .commands import AvoidOpt, FromArg, MaxDepthOpt, ToArg, ViaOpt, _name, app
from .options import TreeOptions, tree_options, write
from .queries import Best, PathQuery, best, compare_given, endpoints
from .versions import KernelsOpt, kernel_specs

if TYPE_CHECKING:
    from ..graph import CallGraph


class MatrixFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


class _Graphs:
    """The versions' graphs, opened when first asked for; only the last two stay in memory (a row
    needs its version and the one before)."""

    def __init__(self, specs: list[tuple[str, str | None, str | None]], tree: TreeOptions) -> None:
        self.where = {spec: (kernel, source) for spec, kernel, source in specs}
        self.tree = tree
        self.open: dict[str, CallGraph] = {}

    def get(self, spec: str) -> CallGraph:
        if spec not in self.open:
            while len(self.open) >= 2:
                del self.open[next(iter(self.open))]
            kernel, source = self.where[spec]
            self.open[spec] = replace(self.tree, kernel=kernel, source=source).open()
        return self.open[spec]


def first_realising(cg: CallGraph, pq: PathQuery) -> str | None:
    """The first configuration realising the first path ``path`` shows on cg (None: none does)."""
    from ..refstack import socket_paths as rpaths

    ends = endpoints(cg, pq)
    if isinstance(ends, SymbolError):
        return None
    s, t, vias, avoids = ends
    res = rpaths.socket_paths(cg, s, t, k=pq.k, via=vias, avoid=avoids, max_depth=pq.max_depth)
    return str(res.realised[0][0]) if res.paths and res.realised[0] else None


def _has_path(cg: CallGraph, pq: PathQuery) -> bool:
    """Is there a call path at all (whatever the socket)?"""
    from .. import query

    ends = endpoints(cg, pq)
    if isinstance(ends, SymbolError):
        return False
    s, t, vias, avoids = ends
    return bool(query.find_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=pq.max_depth))


def _unknown(cg: CallGraph, pq: PathQuery) -> SymbolError | None:
    """The error naming a function of the query this version does not define (None: all defined)."""
    for name in (pq.src, pq.dst, *pq.via):
        try:
            cg.lookup(name)
        except SymbolError as e:
            return e
    return None


def matrix_rows(graphs: _Graphs, specs: list[str], pq: PathQuery) -> tuple[list[dict], list[KsrcError]]:
    """A row document per version (pq.socket: the configuration to replay for, or None), and the
    errors that would make the whole matrix meaningless when every version has one."""
    from ..report import versions

    rows: list[dict] = []
    unknown: list[KsrcError] = []
    bad_socket: list[KsrcError] = []
    prev: tuple[CallGraph, Best] | None = None
    for spec in specs:
        cg = graphs.get(spec)
        miss = _unknown(cg, pq)
        if miss is not None:
            unknown.append(miss)
        b = best(cg, pq)
        if b.bad_socket is not None:
            bad_socket.append(b.bad_socket)  # type: ignore[arg-type]
        d = compare_given(prev[0], cg, prev[1], b, pq.socket) if prev is not None else None
        exists = b.path is not None or (miss is None and _has_path(cg, pq))
        resolves = b.path is not None and pq.socket is not None
        why = b.why or ("no socket configuration realises a path" if b.path is not None else "no call path")
        rows.append(versions.row_doc(spec, cg, b.path, b.states, exists, resolves, why, d))
        prev = (cg, b)
    fatal = unknown if len(unknown) == len(specs) else bad_socket if len(bad_socket) == len(specs) else []
    return rows, fatal


@app.command()
@tree_options("scope")
def matrix(
    src: FromArg,
    dst: ToArg,
    kernel: KernelsOpt = None,
    socket: Annotated[str | None, typer.Option("--socket", callback=_name, help="Replay every version for this "
                                               "configuration, e.g. inet:dgram:udp [default: the first realising "
                                               "the first path in the first version that has one].")] = None,
    via: ViaOpt = None,
    avoid: AvoidOpt = None,
    max_depth: MaxDepthOpt = 40,
    tree: TreeOptions = TreeOptions(),
    fmt: Annotated[MatrixFormat, typer.Option("--format", "-f", help="markdown for a CI summary, html for a "
                                              "self-contained page.")] = MatrixFormat.text,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """One path over many kernel versions: a row per --kernel (in the order given) — does a call path
    FROM -> TO exist, does one resolve on the reference stack for the socket, its hops (the first path
    `path --socket` shows), and what changed from the previous version (diff's classes: renamed, added,
    removed, moved, resolution changed, condition changed, signature changed, path added/removed).
    Exit status: 0 when every version has a resolving path, 3 when one has none, 1 on error.

    Example: ksrcgraph matrix sendto dev_queue_xmit --kernel 5.10 --kernel 6.1 --kernel 6.12 --socket inet:dgram:udp
    """
    from ..report import versions

    specs = kernel_specs(kernel, "matrix")
    graphs = _Graphs(specs, tree)
    pq = PathQuery(src, dst, via=via or [], avoid=avoid or [], socket=socket, max_depth=max_depth)
    chosen_from = None
    if socket is None:
        for spec, _k, _s in specs:
            found = first_realising(graphs.get(spec), pq)
            if found is not None:
                pq, chosen_from = replace(pq, socket=found), spec
                break
    rows, fatal = matrix_rows(graphs, [s for s, _k, _s in specs], pq)
    if fatal:
        raise fatal[0]
    q = {"from": src, "to": dst, "via": pq.via, "avoid": pq.avoid, "max_depth": max_depth,
         "kernels": [s for s, _k, _s in specs]}
    doc = versions.matrix_doc(q, pq.socket, chosen_from, rows)
    render = {MatrixFormat.json: versions.matrix_json, MatrixFormat.markdown: versions.matrix_markdown,
              MatrixFormat.html: versions.matrix_html}.get(fmt, versions.matrix_text)
    write(render(doc), out)
    if not doc["all_resolve"]:
        raise typer.Exit(3)

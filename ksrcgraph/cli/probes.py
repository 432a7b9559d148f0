"""``ksrcgraph probes FROM TO --kernel A [--kernel B ...]``: which hops of a path can a kprobe attach to,
in each kernel version, under which symbol — and what to attach to instead of the others.

In: the query (as ``path`` takes it: ``--socket``, ``--via``, ``--avoid``), the versions in the order
given, and per version the symbol files of its built kernel (``--symbols 6.1=System.map``: a System.map,
a /proc/kallsyms dump, available_filter_functions; repeat to combine them). Out: per version the first
path ``path`` shows (with ``--socket``: the first that socket takes), each hop with the binary's word
when symbols are given, else the prediction from source (``attach``); rendered by ``report.probes`` as
text, JSON, or a bpftrace script (never loaded here).
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import KsrcError, SymbolError, UsageError
from .commands import AvoidOpt, FromArg, MaxDepthOpt, ToArg, ViaOpt, _name, app
from .options import TreeOptions, tree_options, write
from .queries import PathQuery, endpoints
from .versions import KernelsOpt, kernel_specs

if TYPE_CHECKING:
    from ..graph import CallGraph
    from ..query import Path
    from ..symbols import SymbolTable


class ProbesFormat(str, Enum):
    text = "text"
    json = "json"
    bpftrace = "bpftrace"


SymbolsOpt = Annotated[list[str] | None, typer.Option(
    "--symbols", help="The built kernel's symbols for one --kernel: VERSION=PATH (just PATH with one --kernel); "
    "a System.map, a copy of /proc/kallsyms or of available_filter_functions (.xz/.gz accepted); repeat to "
    "combine files or give other versions'. Without it, attachability is predicted from source.")]


def symbol_tables(given: list[str] | None, specs: list[str]) -> dict[str, SymbolTable]:
    """The --symbols files read, merged per version; a file for no listed version is a usage error."""
    from .. import symbols

    out: dict[str, SymbolTable] = {}
    for item in given or []:
        spec, sep, path = item.partition("=")
        if not sep or (spec not in specs and FilePath(item).exists()):
            if len(specs) != 1:
                raise UsageError(f"--symbols {item[:200]}: which kernel is it for?",
                                 f"write --symbols VERSION=PATH, VERSION one of the --kernel values ({', '.join(specs)})")
            spec, path = specs[0], item
        if spec not in specs:
            raise UsageError(f"--symbols {spec}=...: {spec} is not one of the --kernel values ({', '.join(specs)})",
                             "name the version exactly as --kernel gives it, e.g. --symbols 6.1=/boot/System.map-6.1.0-57-amd64")
        table = symbols.read(path)
        out[spec] = out[spec].merge(table) if spec in out else table
    return out


def first_path(cg: CallGraph, pq: PathQuery) -> tuple[Path | None, str, KsrcError | None]:
    """(the first path ``path`` shows, why there is none, and the error when this version cannot
    answer: a name it does not define, a socket configuration it does not have)."""
    from ..refstack import socket_paths as rpaths

    ends = endpoints(cg, pq)
    if isinstance(ends, SymbolError):  # missing in one version: a result; in every version: the error
        return None, ends.message, ends
    s, t, vias, avoids = ends
    try:
        res = rpaths.socket_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=pq.max_depth, socket=pq.socket)
    except UsageError as e:  # the configuration does not exist in this version
        return None, e.message, e
    if not res.paths:
        return None, f"no path a {pq.socket} socket takes" if pq.socket else "no call path", None
    return res.paths[0], "", None


@app.command()
@tree_options("scope")
def probes(
    src: FromArg,
    dst: ToArg,
    kernel: KernelsOpt = None,
    symbols_: SymbolsOpt = None,
    socket: Annotated[str | None, typer.Option("--socket", callback=_name, help="The path this socket configuration "
                                               "takes, e.g. inet:dgram:udp.")] = None,
    via: ViaOpt = None,
    avoid: AvoidOpt = None,
    max_depth: MaxDepthOpt = 40,
    tree: TreeOptions = TreeOptions(),
    fmt: Annotated[ProbesFormat, typer.Option("--format", "-f", help="bpftrace: a script with a kprobe on each hop "
                                              "attachable in every version.")] = ProbesFormat.text,
    out: Annotated[FilePath | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Where to attach along a path: for each --kernel, the first path FROM -> TO (the one `path`
    shows; with --socket, the first that socket takes), and for each hop whether a kprobe can attach
    to it in that kernel, under which symbol (gcc's copies: .isra.N, .constprop.N), and why — read from
    the built kernel's symbols (--symbols) or predicted from source (static inline, __always_inline,
    notrace, noinstr, __init, address taken, exported, callers, size). Then the hops attachable in every
    version, and for each other hop the nearest one on the path that is.

    Example: ksrcgraph probes sendto dev_queue_xmit --kernel 6.1 --kernel 6.12 --socket inet:dgram:udp
    --symbols 6.1=/boot/System.map-6.1.0-57-amd64
    """
    from ..report import probes as R

    specs = kernel_specs(kernel, "probes")
    tables = symbol_tables(symbols_, [s for s, _k, _s in specs])
    pq = PathQuery(src, dst, via=via or [], avoid=avoid or [], socket=socket, max_depth=max_depth)
    versions, errors = [], []
    for spec, k, s in specs:
        cg = replace(tree, kernel=k, source=s).open()
        path, why, err = first_path(cg, pq)
        if err is not None:
            errors.append(err)
        versions.append(R.version_doc(spec, cg, path, why, tables.get(spec)))
        del cg  # one graph in memory at a time
    if len(errors) == len(specs):  # no version can answer: say why, as path does
        raise errors[0]
    q = {"from": src, "to": dst, "socket": socket, "via": pq.via, "avoid": pq.avoid, "max_depth": max_depth,
         "kernels": [s for s, _k, _s in specs]}
    doc = R.probes_doc(q, versions)
    render = {ProbesFormat.json: R.probes_json, ProbesFormat.bpftrace: R.probes_bpftrace}.get(fmt, R.probes_text)
    write(render(doc), out)

"""The commands: each opens the graph (``TreeOptions.open``), asks a lower layer, and hands the
result to a ``report`` renderer.

In: the command line, parsed by typer. Out: results on stdout (or in a file); exit statuses — 0, 3 when
``replay`` finds a path that no longer resolves or ``diff`` finds a change; ``run.main`` turns errors into
an ``Error:`` and a ``Hint:`` line (1, 2 for usage errors).
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import __version__
from ..errors import UsageError
from .options import TreeOptions, tree_options, write
from .queries import PathQuery, compare_sockets, query_paths
from .saved import read_saved

if TYPE_CHECKING:
    from ..graph import CallGraph

app = typer.Typer(
    name="ksrcgraph",
    help="Call paths through Linux kernel sources, function-pointer tables included.\n\n"
    "Example: ksrcgraph path sendto dev_queue_xmit --kernel 6.1 --via udp_sendmsg",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Format(str, Enum):
    text = "text"
    json = "json"
    dot = "dot"


class ReportFormat(str, Enum):
    text = "text"
    json = "json"
    dot = "dot"
    svg = "svg"
    html = "html"


class DiffFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


MAX_NAME = 512  # a function (path::name), a socket configuration: longer is a usage error, not a search


def _name(value: str | list[str] | None) -> str | list[str] | None:
    """typer callback: a name (or the names of a repeated option) of a sane length."""
    for v in value if isinstance(value, list) else [value] if value is not None else []:
        if len(v) > MAX_NAME:
            raise typer.BadParameter(f"{v[:24]!r}... is {len(v)} characters long; names are at most {MAX_NAME}")
    return value


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
FromArg = Annotated[str, typer.Argument(callback=_name, metavar="FROM", help="Start: a function or system call (sendto, sys_sendto).")]
ToArg = Annotated[str, typer.Argument(callback=_name, metavar="TO", help="End function.")]
ViaOpt = Annotated[list[str] | None, typer.Option("--via", callback=_name, help="Function the path must pass through.")]
AvoidOpt = Annotated[list[str] | None, typer.Option("--avoid", callback=_name, help="Function the path must not pass through.")]
KOpt = Annotated[int, typer.Option("-k", min=1, max=100, help="How many paths.")]
MaxDepthOpt = Annotated[int, typer.Option("--max-depth", min=1, max=200, help="Longest path, in calls.")]


# -- commands --------------------------------------------------------------------------------------
@app.command()
@tree_options()
def path(
    src: FromArg,
    dst: ToArg,
    tree: TreeOptions,
    via: Annotated[list[str] | None, typer.Option("--via", callback=_name, help="Function the path must pass through "
                                                     "(repeatable, in order).")] = None,
    avoid: Annotated[list[str] | None, typer.Option("--avoid", callback=_name, help="Function the path must not pass through "
                                                       "(repeatable).")] = None,
    socket: Annotated[str | None, typer.Option("--socket", callback=_name, help="Only paths a socket of this configuration "
                                                  "takes: family:type[:protocol], e.g. inet:dgram:udp "
                                                  "(see `ksrcgraph sockets`).")] = None,
    k: KOpt = 5,
    max_depth: MaxDepthOpt = 40,
    unrealised: Annotated[bool, typer.Option("--unrealised", help="Also list, after the others, paths no "
                                             "socket configuration the model knows realises.")] = False,
    fmt: FormatOpt = Format.text,
) -> None:
    """The k best call paths from FROM to TO, each hop with file:line, each indirect hop with the
    table or assignment that resolves it. Every path is replayed on the reference stack: with
    --socket only paths that socket takes are kept; without it, the paths some socket configuration
    realises come first, grouped by those configurations (paths none realises only with
    --unrealised, or when nothing resolves). Paths are ranked by cost: one per call, plus a penalty
    per kind of indirect hop and per bit of ambiguity at its call site (none for a pointer --socket
    binds to one function), plus more for calls on branches the code marks rare (unlikely(), a flag
    test, after an early likely() return, after a label only gotos reach); ties go to the shorter
    path, then to the later call in the caller where two paths part (README: How paths are ranked).

    Example: ksrcgraph path sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp
    """
    from ..report import dot, paths

    cg = tree.open()
    pq = PathQuery(src, dst, via=via or [], avoid=avoid or [], socket=socket, k=k, max_depth=max_depth,
                   unrealised=unrealised)
    q, res = query_paths(cg, pq)
    if fmt == Format.json:
        write(paths.socket_paths_json(cg, q, res))
    elif fmt == Format.dot:
        write(dot.paths_dot(cg, q, res.paths, res.extras()))
    else:
        write(paths.socket_paths_text(cg, q, res))


def _tree(fn: str, depth: int, direction: str, tree: TreeOptions, fmt: Format) -> None:
    from .. import query
    from ..report import dot, graphs

    cg = tree.open()
    root = cg.lookup(fn)
    items = query.walk(cg, root, depth, direction)
    if fmt == Format.json:
        write(graphs.tree_json(cg, items, direction, {"function": fn, "id": root, "depth": depth}))
    elif fmt == Format.dot:
        write(dot.tree_dot(cg, items, f"{'callers' if direction == 'in' else 'callees'} of {fn}"))
    else:
        write(graphs.tree_text(cg, items, direction))


@app.command()
@tree_options()
def callers(
    fn: Annotated[str, typer.Argument(callback=_name, metavar="FUNCTION")],
    depth: Annotated[int, typer.Option("--depth", "-d", min=1, max=20, help="Levels of callers.")] = 1,
    tree: TreeOptions = TreeOptions(),
    fmt: FormatOpt = Format.text,
) -> None:
    """Functions that call FUNCTION (directly or through a resolved pointer), DEPTH levels up.

    Example: ksrcgraph callers dev_queue_xmit --depth 2 --kernel 6.1
    """
    _tree(fn, depth, "in", tree=tree, fmt=fmt)


@app.command()
@tree_options()
def callees(
    fn: Annotated[str, typer.Argument(callback=_name, metavar="FUNCTION")],
    depth: Annotated[int, typer.Option("--depth", "-d", min=1, max=20, help="Levels of callees.")] = 1,
    tree: TreeOptions = TreeOptions(),
    fmt: FormatOpt = Format.text,
) -> None:
    """Functions FUNCTION calls (directly or through a resolved pointer), DEPTH levels down.

    Example: ksrcgraph callees __sys_sendto --kernel 6.1
    """
    _tree(fn, depth, "out", tree=tree, fmt=fmt)


@app.command()
@tree_options()
def graph(
    around: Annotated[str | None, typer.Option("--around", callback=_name, help="Only the neighbourhood of this function.")] = None,
    depth: Annotated[int, typer.Option("--depth", "-d", min=0, max=20, help="Neighbourhood radius, in calls.")] = 1,
    tree: TreeOptions = TreeOptions(),
    fmt: FormatOpt = Format.json,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export the call graph (or the part --around a function) as JSON, DOT or text edges.

    Example: ksrcgraph graph --around ip_output --depth 2 --format dot --kernel 6.1 > ip_output.dot
    """
    from .. import query
    from ..report import dot, graphs

    cg = tree.open()
    nodes = None
    title = f"call graph ({cg.meta.get('label')})"
    if around is not None:
        nodes = query.around(cg, cg.lookup(around), depth)
        title = f"{depth} calls around {around} ({cg.meta.get('label')})"
    if fmt == Format.json:
        write(graphs.graph_json(cg, nodes), out)
    elif fmt == Format.dot:
        write(dot.graph_dot(cg, nodes, title), out)
    else:
        write(graphs.graph_text(cg, nodes), out)


@app.command()
@tree_options()
def stats(tree: TreeOptions = TreeOptions(), fmt: FormatOpt = Format.text) -> None:
    """Index the tree (if needed) and report what was extracted and resolved.

    Example: ksrcgraph stats --kernel 6.1
    """
    from ..report import tables

    cg = tree.open()
    write(tables.stats_json(cg) if fmt == Format.json else tables.stats_text(cg))


@app.command()
@tree_options()
def report(
    src: Annotated[str, typer.Argument(callback=_name, metavar="FROM")],
    dst: Annotated[str, typer.Argument(callback=_name, metavar="TO")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (e.g. reports/sendto.svg).")] = ...,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="svg and html need Graphviz's dot.")] = ReportFormat.html,
    tree: TreeOptions = TreeOptions(),
    socket: Annotated[str | None, typer.Option("--socket", callback=_name, help="Only paths this socket takes.")] = None,
    via: ViaOpt = None,
    k: KOpt = 5,
) -> None:
    """Write the paths FROM -> TO to a file: text, JSON, DOT, SVG, or an HTML page holding the text
    report and the SVG drawing (SVG and HTML need Graphviz).

    Example: ksrcgraph report sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp -o reports/udp.html
    """
    from ..report import dot

    cg = tree.open()
    q, res = query_paths(cg, PathQuery(src, dst, via=via or [], socket=socket, k=k))
    write(dot.paths_file(cg, q, res, fmt.value), out)


@app.command()
@tree_options()
def sockets(tree: TreeOptions = TreeOptions(), fmt: FormatOpt = Format.text) -> None:
    """The socket configurations the reference stack finds in this kernel, with the create function,
    proto_ops table and proto each one gets — read from the kernel's own tables.

    Example: ksrcgraph sockets --kernel 6.1
    """
    from ..report import tables

    cg = tree.open()
    rows = tables.socket_rows(cg)
    write(tables.sockets_json(cg, rows) if fmt == Format.json else tables.sockets_text(rows))


def _saved_tree(tree: TreeOptions, label: str | None, scope: str | None) -> TreeOptions:
    """The tree to replay on: the one given, else the one the paths were saved from."""
    if tree.kernel is None and tree.source is None and label:
        tree = replace(tree, kernel=label) if label[:1].isdigit() else replace(tree, source=label)
    return replace(tree, scope=tree.scope or scope)


@app.command("replay")
@tree_options()
def replay_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE.json", help="Output of `ksrcgraph path --format json` "
                                         "(at most 16 MiB).")],
    tree: TreeOptions = TreeOptions(),
    socket: Annotated[str | None, typer.Option("--socket", callback=_name, help="Replay for this configuration instead of "
                                                  "the one saved with each path.")] = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Replay saved paths on the reference stack — of the kernel they came from, or of another one
    (--kernel / --source): does each path still resolve, and which hop breaks?
    Exit status: 0 when every path resolves, 3 when one does not, 1 on error.

    Example: ksrcgraph path sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp --format json > p.json;
    ksrcgraph replay p.json --kernel 6.12
    """
    from ..refstack import socket_paths as rpaths
    from ..refstack.model import Model
    from ..report import paths

    saved, label, scope = read_saved(file)
    cg = _saved_tree(tree, label, scope).open()
    if socket:
        Model(cg).parse(socket)  # a malformed or unknown --socket is a usage error (exit 2), not a verdict
    results = rpaths.replay_saved(cg, saved, socket)
    render = paths.replay_json if fmt == Format.json else paths.replay_text
    write(render(cg, str(file), results))
    if not all(r["replay"]["resolves"] for r in results):
        raise typer.Exit(3)


@app.command()
@tree_options("scope")
def diff(
    src: Annotated[str | None, typer.Argument(callback=_name, metavar="FROM", help="Start of the path (not with --graph).")] = None,
    dst: Annotated[str | None, typer.Argument(callback=_name, metavar="TO", help="End of the path (not with --graph).")] = None,
    from_: Annotated[str, typer.Option("--from", help="Old version: 6.1, a directory, a tarball, or repo@tag.")] = ...,
    to: Annotated[str, typer.Option("--to", help="New version, same forms.")] = ...,
    socket: Annotated[str | None, typer.Option("--socket", callback=_name, help="Compare the paths this socket takes "
                                               "(e.g. inet:dgram:udp).")] = None,
    via: ViaOpt = None,
    avoid: AvoidOpt = None,
    graph_: Annotated[bool, typer.Option("--graph", help="Summarise whole-graph changes instead of one path.")] = False,
    tree: TreeOptions = TreeOptions(),
    max_depth: MaxDepthOpt = 40,
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format (markdown for a pull-request "
                                            "comment).")] = DiffFormat.text,
) -> None:
    """How the best path FROM -> TO changed between two kernels, per socket configuration (--socket,
    or each one realising the first path `path` shows in either version), hop by hop: hops added,
    removed, renamed, moved (e.g. to a header inline), the socket's binding (resolution), #if
    condition or signature changed; notes for what is not a change of the path (another route both
    versions can take, other families' tables). Exit status: 0 when nothing changed, 3 when a path
    changed, 1 on error.

    Example: ksrcgraph diff sendto dev_queue_xmit --from 6.1 --to 6.12 --socket inet:dgram:udp
    """
    from ..report import changes

    if graph_:
        _diff_graphs(tree.open_spec(from_), tree.open_spec(to), fmt)
        return
    if src is None or dst is None:
        raise UsageError("diff needs FROM and TO functions (or --graph)",
                         "e.g. ksrcgraph diff sendto dev_queue_xmit --from 6.1 --to 6.12")
    a = tree.open_spec(from_)
    b = a if to == from_ else tree.open_spec(to)
    pq = PathQuery(src, dst, via=via or [], avoid=avoid or [], socket=socket, max_depth=max_depth)
    ds = compare_sockets(a, b, pq)
    q = {"from": pq.src, "to": pq.dst, "socket": pq.socket, "via": pq.via, "avoid": pq.avoid, "max_depth": max_depth}
    render = {DiffFormat.json: changes.diff_json, DiffFormat.markdown: changes.diff_markdown}.get(fmt, changes.diff_text)
    write(render(ds, q))
    if any(d.changed for d in ds):
        raise typer.Exit(3)


def _diff_graphs(a: CallGraph, b: CallGraph, fmt: DiffFormat) -> None:
    """diff --graph (exit status 3 when the graph changed)."""
    from .. import diff as D
    from ..refstack import tables as rtables
    from ..report import changes

    g = D.graph_diff(a, b, rtables.ops_entries(a), rtables.ops_entries(b))
    if fmt == DiffFormat.json:
        write(changes.graph_diff_json(a, b, g, D.graph_changed(g)))
    else:
        write(changes.graph_diff_text(a, b, g, markdown=fmt == DiffFormat.markdown))
    if D.graph_changed(g):
        raise typer.Exit(3)


@app.command("sources")
def sources_cmd(fmt: FormatOpt = Format.text) -> None:
    """Kernel sources available on this machine (the cache, /usr/src, downloads) and what is indexed.

    Example: ksrcgraph sources
    """
    from .. import cachedir, sources
    from ..report import tables
    from ..store import Store

    avail = [{"version": v, "where": w} for v, w in sources.available_versions()]
    with Store() as st:
        indexed = [{k: m[k] for k in ("label", "version", "scope", "root")} for m in st.manifests()]
    render = tables.sources_json if fmt == Format.json else tables.sources_text
    write(render(str(cachedir.cache_dir()), avail, indexed))


@app.command()
@tree_options("source", "scope")
def fetch(
    version_: Annotated[str, typer.Argument(metavar="VERSION", help="Kernel version, e.g. 6.12.")],
    tree: TreeOptions = TreeOptions(),
) -> None:
    """Prepare a kernel version ahead of time: find (or download) its sources, extract the scope,
    index and link it, so that later queries start warm.

    Example: ksrcgraph fetch 6.12 --scope net,include,fs
    """
    cg = replace(tree, kernel=version_).open()
    st = cg.stats
    print(f"kernel {cg.meta.get('label')} ({cg.meta.get('version') or '?'}) ready: {st.get('files')} files, "
          f"{st.get('functions')} functions, {st.get('edges')} edges")


cache_app = typer.Typer(help="Inspect or trim the cache.", no_args_is_help=True, add_completion=False,
                        rich_markup_mode=None)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info(fmt: FormatOpt = Format.text) -> None:
    """What the cache holds: facts per distinct file content, manifests per tree, linked graphs.

    Example: ksrcgraph cache info
    """
    from .. import cachedir
    from ..report import tables
    from ..store import Store

    with Store() as st:
        info = st.info()
    info["trees"] = _dir_sizes(cachedir.trees_dir())
    info["downloads"] = _dir_sizes(cachedir.cache_dir() / "downloads")
    if fmt == Format.json:
        write(tables.cache_info_json(info))
    else:
        write(tables.cache_info_text(str(cachedir.cache_dir()), info))


def _dir_sizes(d: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    if d.is_dir():
        for sub in sorted(d.iterdir()):
            if sub.name.startswith("."):
                continue
            out[sub.name] = sum(f.stat().st_size for f in sub.rglob("*") if f.is_file()) if sub.is_dir() \
                else sub.stat().st_size
    return out


@cache_app.command("prune")
def cache_prune(
    all_: Annotated[bool, typer.Option("--all", help="Also delete extracted trees and downloaded tarballs.")] = False,
) -> None:
    """Drop what no manifest needs: facts of contents no indexed tree has any more, graphs of
    old manifests, manifests of trees that are gone. With --all, extracted trees and downloads too.

    Example: ksrcgraph cache prune
    """
    import shutil

    from .. import cachedir
    from ..store import Store

    with Store() as st:
        r = st.prune()
    print(f"removed {r['manifests']} manifests, {r['blobs']} file facts, {r['graphs']} graphs; "
          f"database {r['before'] / 1e6:.1f} MB → {r['after'] / 1e6:.1f} MB")
    if all_:
        for d in (cachedir.trees_dir(), cachedir.cache_dir() / "downloads"):
            if d.is_dir():
                shutil.rmtree(d)
        print(f"removed extracted trees and downloads under {cachedir.cache_dir()}")


@app.command()
def version() -> None:
    """Print the ksrcgraph version."""
    print(__version__)

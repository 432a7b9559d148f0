"""Stage 10 — cli: the ``ksrcgraph`` command (typer).

stdout carries results only; progress, warnings and errors go to stderr, so ``| jq`` always works.
Errors are one ``Error: ...`` line and a ``Hint: ...`` line, exit status 1 (2 for usage errors);
never a traceback (set KSRCGRAPH_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import click
import typer

from . import __version__
from .errors import KsrcError, UsageError

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


KernelOpt = Annotated[str | None, typer.Option("--kernel", "-K", help="Kernel version, e.g. 6.1 (Debian's "
                                                  "/usr/src/linux-source-6.1.tar.xz, or an earlier extraction in the cache).")]
SourceOpt = Annotated[str | None, typer.Option("--source", "-s", help="Kernel directory or tarball "
                                                  "(.tar, .tar.xz, .tar.gz).")]
ScopeOpt = Annotated[str | None, typer.Option("--scope", help="Top-level directories to index, comma-separated "
                                                 "[default: net,include]; add fs for read/write/ioctl.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
JobsOpt = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Parser processes [default: CPUs].")]
AllHeadersOpt = Annotated[bool, typer.Option("--all-headers", help="Index every header in scope, not only those "
                                             "the scope's .c files include (directly or not).")]


class _Progress:
    """rich progress bars on stderr, only on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True)
        self.tasks: dict[str, int] = {}
        self.started = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if not self.started:
            self.p.start()
            self.started = True
        tid = self.tasks.get(what)
        if tid is None:
            tid = self.tasks[what] = self.p.add_task(what, total=total or 1)
        self.p.update(tid, completed=done, total=total or 1)

    def stop(self) -> None:
        if self.started:
            self.p.stop()


def _progress(quiet: bool) -> _Progress | None:
    if quiet or not sys.stderr.isatty() or os.environ.get("KSRCGRAPH_NO_PROGRESS"):
        return None
    return _Progress()


def _open(kernel: str | None, source: str | None, scope: str | None, quiet: bool, jobs: int | None = None,  # type: ignore[no-untyped-def]
          all_headers: bool = False):
    from . import pipeline, sources

    if kernel is None and source is None:
        kernel, source = _default_kernel(quiet)
    prog = _progress(quiet)
    try:
        return pipeline.open_graph(kernel, source, sources.parse_scope(scope), prog, jobs, all_headers=all_headers)
    finally:
        if prog is not None:
            prog.stop()


def _default_kernel(quiet: bool) -> tuple[str | None, str | None]:
    """Neither --kernel nor --source: the newest kernel available locally, else the bundled fixture."""
    from . import sources

    have = sources.available_versions()
    if have:
        v = have[-1][0]
        if not quiet:
            print(f"Note: no --kernel given; using kernel {v} ({have[-1][1]})", file=sys.stderr)
        return v, None
    fixture = sources.bundled_fixture()
    if fixture is not None:
        print(f"Note: no kernel sources found locally; running on ksrcgraph's bundled example tree {fixture} "
              "(install Debian's linux-source-6.1 and pass --kernel 6.1, or pass --source PATH)", file=sys.stderr)
        return None, str(fixture)
    raise UsageError("no kernel given and none found locally",
                     "pass --kernel VERSION (with Debian's linux-source-VERSION installed) or --source PATH")


def _write(text: str, out: Path | None = None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    try:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    except OSError as e:
        raise KsrcError(f"cannot write {out}: {e.strerror}", "check the directory exists and is writable") from e


# -- commands --------------------------------------------------------------------------------------
@app.command()
def path(
    src: Annotated[str, typer.Argument(metavar="FROM", help="Start: a function or system call (sendto, sys_sendto).")],
    dst: Annotated[str, typer.Argument(metavar="TO", help="End function.")],
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    via: Annotated[list[str] | None, typer.Option("--via", help="Function the path must pass through "
                                                     "(repeatable, in order).")] = None,
    avoid: Annotated[list[str] | None, typer.Option("--avoid", help="Function the path must not pass through "
                                                       "(repeatable).")] = None,
    socket: Annotated[str | None, typer.Option("--socket", help="Only paths a socket of this configuration "
                                                  "takes: family:type[:protocol], e.g. inet:dgram:udp "
                                                  "(see `ksrcgraph sockets`).")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many paths.")] = 5,
    max_depth: Annotated[int, typer.Option("--max-depth", min=1, max=200, help="Longest path, in calls.")] = 40,
    fmt: FormatOpt = Format.text,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """The k best call paths from FROM to TO, each hop with file:line, each indirect hop with the
    table or assignment that resolves it. Every path is replayed on the reference stack: with
    --socket only paths that socket takes are kept; without it, paths are grouped by the socket
    configurations that realise them.

    Example: ksrcgraph path sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp
    """
    from . import report

    cg = _open(kernel, source, scope, quiet, jobs, all_headers)
    q, result = _query_paths(cg, src, dst, via, avoid, k, max_depth, socket)
    if fmt == Format.json:
        _write(report.paths_json(cg, q, result.paths, result.extras(), result.summary()))
    elif fmt == Format.dot:
        _write(report.paths_dot(cg, q, result.paths, result.extras()))
    else:
        _write(report.paths_text(cg, q, result.paths, result.extras(), None if socket else result.groups()))


def _query_paths(cg, src: str, dst: str, via: list[str] | None, avoid: list[str] | None, k: int,  # type: ignore[no-untyped-def]
                 max_depth: int, socket: str | None):
    """(query document, refstack.paths.SocketPaths) of a path query on cg."""
    from .refstack import paths as rpaths

    s, t = cg.lookup(src), cg.lookup(dst)
    vias = [cg.lookup(v) for v in (via or [])]
    avoids = [cg.lookup(a) for a in (avoid or [])]
    q = {"from": src, "to": dst, "from_id": s, "to_id": t, "via": vias, "avoid": avoids, "k": k,
         "max_depth": max_depth, "socket": socket}
    return q, rpaths.socket_paths(cg, s, t, k=k, via=vias, avoid=avoids, max_depth=max_depth, socket=socket)


def _tree(fn: str, depth: int, direction: str, kernel, source, scope, fmt, quiet, jobs, all_headers) -> None:  # type: ignore[no-untyped-def]
    from . import query, report

    cg = _open(kernel, source, scope, quiet, jobs, all_headers)
    root = cg.lookup(fn)
    items = query.walk(cg, root, depth, direction)
    q = {"function": fn, "id": root, "depth": depth}
    if fmt == Format.json:
        _write(report.tree_json(cg, items, direction, q))
    elif fmt == Format.dot:
        _write(report.tree_dot(cg, items, f"{'callers' if direction == 'in' else 'callees'} of {fn}"))
    else:
        _write(report.tree_text(cg, items, direction))


@app.command()
def callers(
    fn: Annotated[str, typer.Argument(metavar="FUNCTION")],
    depth: Annotated[int, typer.Option("--depth", "-d", min=1, max=20, help="Levels of callers.")] = 1,
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    fmt: FormatOpt = Format.text,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """Functions that call FUNCTION (directly or through a resolved pointer), DEPTH levels up.

    Example: ksrcgraph callers dev_queue_xmit --depth 2 --kernel 6.1
    """
    _tree(fn, depth, "in", kernel, source, scope, fmt, quiet, jobs, all_headers)


@app.command()
def callees(
    fn: Annotated[str, typer.Argument(metavar="FUNCTION")],
    depth: Annotated[int, typer.Option("--depth", "-d", min=1, max=20, help="Levels of callees.")] = 1,
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    fmt: FormatOpt = Format.text,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """Functions FUNCTION calls (directly or through a resolved pointer), DEPTH levels down.

    Example: ksrcgraph callees __sys_sendto --kernel 6.1
    """
    _tree(fn, depth, "out", kernel, source, scope, fmt, quiet, jobs, all_headers)


@app.command()
def graph(
    around: Annotated[str | None, typer.Option("--around", help="Only the neighbourhood of this function.")] = None,
    depth: Annotated[int, typer.Option("--depth", "-d", min=0, max=20, help="Neighbourhood radius, in calls.")] = 1,
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    fmt: FormatOpt = Format.json,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """Export the call graph (or the part --around a function) as JSON, DOT or text edges.

    Example: ksrcgraph graph --around ip_output --depth 2 --format dot --kernel 6.1 > ip_output.dot
    """
    from . import query, report

    cg = _open(kernel, source, scope, quiet, jobs, all_headers)
    nodes = None
    title = f"call graph ({cg.meta.get('label')})"
    if around is not None:
        root = cg.lookup(around)
        nodes = query.around(cg, root, depth)
        title = f"{depth} calls around {around} ({cg.meta.get('label')})"
    if fmt == Format.json:
        _write(report.graph_json(cg, nodes), out)
    elif fmt == Format.dot:
        _write(report.graph_dot(cg, nodes, title), out)
    else:
        _write(report.graph_text(cg, nodes), out)


@app.command()
def stats(
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    fmt: FormatOpt = Format.text,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """Index the tree (if needed) and report what was extracted and resolved.

    Example: ksrcgraph stats --kernel 6.1
    """
    import json

    from . import report

    cg = _open(kernel, source, scope, quiet, jobs, all_headers)
    st = dict(cg.stats)
    if fmt == Format.json:
        doc = {"schema_version": report.SCHEMA_VERSION, "kernel": report.kernel_doc(cg), "stats": st,
               "run": {k: cg.meta.get(k) for k in ("warm", "index", "index_seconds", "link_seconds", "total_seconds")
                       if k in cg.meta}}
        _write(json.dumps(doc, indent=2) + "\n")
        return
    _write(stats_text(cg, st))


def stats_text(cg, st: dict) -> str:  # type: ignore[no-untyped-def]
    ind = st.get("indirect_sites", 0)
    resolved = {k[9:]: v for k, v in st.items() if k.startswith("resolved_") and k != "resolved_targets"}
    nres = sum(resolved.values())
    lines = [
        f"kernel {cg.meta.get('label')} ({cg.meta.get('version') or '?'}), scope {','.join(cg.meta.get('scope', []))}",
        f"files {st.get('files')}, {st.get('bytes', 0) / 1e6:.1f} MB; with parse errors after cleaning: "
        f"{st.get('files_with_errors')} files, {st.get('error_nodes')} error nodes, "
        f"{st.get('error_bytes')} bytes no construct could absorb",
        f"functions {st.get('functions')}, external callees {st.get('externals')}",
        f"call sites {st.get('call_sites')}: direct {st.get('direct_sites', 0)}, through macros "
        f"{st.get('macro_sites', 0)}, to functions outside scope {st.get('external_sites', 0)}, indirect {ind}",
        f"indirect sites resolved {nres} ({100 * nres / max(ind, 1):.1f}%): "
        + ", ".join(f"{k} {v}" for k, v in sorted(resolved.items(), key=lambda x: -x[1])),
        f"mean targets per resolved site (edges): {st.get('resolved_targets', 0) / max(nres - resolved.get('param_call', 0), 1):.2f}",
        "unresolved: " + (", ".join(f"{v} {k}" for k, v in sorted(st.get("unresolved", {}).items(), key=lambda x: -x[1]))
                          or "none"),
        "edges: " + ", ".join(f"{k} {v}" for k, v in st.get("edges_by_kind", {}).items()),
    ]
    for k in ("index_seconds", "link_seconds", "total_seconds"):
        if cg.meta.get(k) is not None:
            lines.append(f"{k.replace('_', ' ')}: {cg.meta[k]}")
    return "\n".join(lines) + "\n"


class ReportFormat(str, Enum):
    text = "text"
    json = "json"
    dot = "dot"
    svg = "svg"
    html = "html"


@app.command()
def report(
    src: Annotated[str, typer.Argument(metavar="FROM")],
    dst: Annotated[str, typer.Argument(metavar="TO")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (e.g. reports/sendto.svg).")] = ...,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="svg and html need Graphviz's dot.")] = ReportFormat.html,
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    socket: Annotated[str | None, typer.Option("--socket", help="Only paths this socket takes.")] = None,
    via: Annotated[list[str] | None, typer.Option("--via", help="Function the path must pass through.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many paths.")] = 5,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """Write the paths FROM -> TO to a file: text, JSON, DOT, SVG, or an HTML page holding the text
    report and the SVG drawing (SVG and HTML need Graphviz).

    Example: ksrcgraph report sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp -o reports/udp.html
    """
    import html
    import shutil
    import subprocess

    from . import report as rep

    cg = _open(kernel, source, scope, quiet, jobs, all_headers)
    q, res = _query_paths(cg, src, dst, via, None, k, 40, socket)
    text = rep.paths_text(cg, q, res.paths, res.extras(), None if socket else res.groups())
    if fmt == ReportFormat.text:
        _write(text, out)
        return
    if fmt == ReportFormat.json:
        _write(rep.paths_json(cg, q, res.paths, res.extras(), res.summary()), out)
        return
    dot = rep.paths_dot(cg, q, res.paths, res.extras())
    if fmt == ReportFormat.dot:
        _write(dot, out)
        return
    exe = shutil.which("dot")
    if exe is None:
        raise KsrcError(f"--format {fmt.value} needs Graphviz's dot, which is not installed",
                        "install graphviz (apt-get install graphviz), or use --format dot or text")
    r = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True)
    if r.returncode != 0:
        raise KsrcError(f"dot failed: {r.stderr.strip()[:200]}", "write --format dot and render it yourself")
    svg = r.stdout
    if fmt == ReportFormat.svg:
        _write(svg, out)
        return
    title = html.escape(f"{src} → {dst} ({cg.meta.get('label')})")
    page = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\n"
            f"<h1>{title}</h1>\n{svg[svg.find('<svg'):]}\n<pre>{html.escape(text)}</pre>\n</body></html>\n")
    _write(page, out)


@app.command()
def sockets(
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    fmt: FormatOpt = Format.text,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """The socket configurations the reference stack finds in this kernel, with the create function,
    proto_ops table and proto each one gets — read from the kernel's own tables.

    Example: ksrcgraph sockets --kernel 6.1
    """
    from . import report
    from .refstack.model import Model

    cg = _open(kernel, source, scope, quiet, jobs, all_headers)
    m = Model(cg)
    rows = []
    for c in m.configs():
        st = m.state(c)
        lab = m.label
        rows.append({"socket": str(c), "create": [cg.name(f) for f in st.create],
                     "entry": lab(st.entry) if st.entry else None, "ops": [lab(x) for x in st.ops],
                     "proto": [lab(x) for x in st.prot], "protocol_handler": [lab(x) for x in st.protocol_tables],
                     "packet_type": [lab(x) for x in st.ptype_tables], "af_ops": [lab(x) for x in st.af_ops],
                     "where": {lab(x): m.where(x) for x in [*st.ops, *st.prot] if x in m.tables}})
    if fmt == Format.json:
        import json

        _write(json.dumps({"schema_version": report.SCHEMA_VERSION, "kernel": report.kernel_doc(cg),
                           "sockets": rows}, indent=2) + "\n")
        return
    w1 = max((len(r["socket"]) for r in rows), default=6) + 2
    w2 = max((len(", ".join(r["create"])) for r in rows), default=6) + 2
    w3 = max((len(", ".join(r["ops"])) for r in rows), default=9) + 2
    lines = [f"{'socket'.ljust(w1)}{'create'.ljust(w2)}{'proto_ops'.ljust(w3)}proto"]
    for r in rows:
        lines.append(f"{r['socket'].ljust(w1)}{', '.join(r['create']).ljust(w2)}{', '.join(r['ops']).ljust(w3)}"
                     f"{', '.join(r['proto'])}".rstrip())
    if not rows:
        lines.append("(no socket family registered with sock_register in this scope)")
    _write("\n".join(lines) + "\n")


@app.command("replay")
def replay_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE.json", help="Output of `ksrcgraph path --format json`.")],
    kernel: KernelOpt = None,
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    socket: Annotated[str | None, typer.Option("--socket", help="Replay for this configuration instead of "
                                                  "the one saved with each path.")] = None,
    fmt: FormatOpt = Format.text,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """Replay saved paths on the reference stack — of the kernel they came from, or of another one
    (--kernel / --source): does each path still resolve, and which hop breaks?
    Exit status: 0 when every path resolves, 3 when one does not, 1 on error.

    Example: ksrcgraph path sendto dev_queue_xmit --kernel 6.1 --socket inet:dgram:udp --format json > p.json;
    ksrcgraph replay p.json --kernel 6.12
    """
    import json

    from . import report
    from .refstack import paths as rpaths

    try:
        doc = json.loads(file.read_text())
        saved = doc["paths"]
        label = doc.get("kernel", {}).get("label")
        scope_saved = ",".join(doc.get("kernel", {}).get("scope", [])) or None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KsrcError(f"cannot read paths from {file}: {e}",
                        "give a file written by `ksrcgraph path --format json`") from e
    if kernel is None and source is None:
        if label and label[:1].isdigit():
            kernel = label
        elif label:
            source = label
    cg = _open(kernel, source, scope or scope_saved, quiet, jobs, all_headers)
    results = rpaths.replay_saved(cg, saved, socket)
    if fmt == Format.json:
        _write(json.dumps({"schema_version": report.SCHEMA_VERSION, "kernel": report.kernel_doc(cg),
                           "source": str(file), "paths": results}, indent=2) + "\n")
    else:
        _write(report.replay_text(cg, str(file), results))
    if not all(r["replay"]["resolves"] for r in results):
        raise typer.Exit(3)


class DiffFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


def _open_spec(spec: str, scope: str | None, quiet: bool, jobs: int | None, all_headers: bool = False):  # type: ignore[no-untyped-def]
    """A version (6.1), a directory or tarball, or repo@tag."""
    from . import sources

    kernel, source = sources.parse_spec(spec)
    return _open(kernel, source, scope, quiet, jobs, all_headers)


@app.command()
def diff(
    src: Annotated[str | None, typer.Argument(metavar="FROM", help="Start of the path (not with --graph).")] = None,
    dst: Annotated[str | None, typer.Argument(metavar="TO", help="End of the path (not with --graph).")] = None,
    from_: Annotated[str, typer.Option("--from", help="Old version: 6.1, a directory, a tarball, or repo@tag.")] = ...,
    to: Annotated[str, typer.Option("--to", help="New version, same forms.")] = ...,
    socket: Annotated[str | None, typer.Option("--socket", help="Compare the paths this socket takes "
                                               "(e.g. inet:dgram:udp).")] = None,
    via: Annotated[list[str] | None, typer.Option("--via", help="Function the path must pass through.")] = None,
    avoid: Annotated[list[str] | None, typer.Option("--avoid", help="Function the path must not pass through.")] = None,
    graph_: Annotated[bool, typer.Option("--graph", help="Summarise whole-graph changes instead of one path.")] = False,
    scope: ScopeOpt = None,
    max_depth: Annotated[int, typer.Option("--max-depth", min=1, max=200, help="Longest path, in calls.")] = 40,
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format (markdown for a pull-request "
                                            "comment).")] = DiffFormat.text,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """How the best path FROM -> TO changed between two kernels, hop by hop: hops added, removed,
    renamed, moved (e.g. to a header inline), resolution, #if condition or signature changed.
    Exit status: 0 when nothing changed, 3 when the path changed, 1 on error.

    Example: ksrcgraph diff sendto dev_queue_xmit --from 6.1 --to 6.12 --socket inet:dgram:udp
    """
    import json

    from . import diff as D
    from . import report

    if not graph_ and (src is None or dst is None):
        raise UsageError("diff needs FROM and TO functions (or --graph)",
                         "e.g. ksrcgraph diff sendto dev_queue_xmit --from 6.1 --to 6.12")
    a = _open_spec(from_, scope, quiet, jobs, all_headers)
    b = _open_spec(to, scope, quiet, jobs, all_headers)
    if graph_:
        g = D.graph_diff(a, b)
        if fmt == DiffFormat.json:
            _write(json.dumps({"schema_version": report.SCHEMA_VERSION, "from": report.kernel_doc(a),
                               "to": report.kernel_doc(b), "changed": D.graph_changed(g), **g}, indent=2) + "\n")
        else:
            _write(report.graph_diff_text(a, b, g, markdown=fmt == DiffFormat.markdown))
        if D.graph_changed(g):
            raise typer.Exit(3)
        return
    q = {"from": src, "to": dst, "socket": socket, "via": via or [], "avoid": avoid or [], "max_depth": max_depth}
    d = D.diff_paths(a, b, src, dst, socket, via, avoid, max_depth)  # type: ignore[arg-type]
    if fmt == DiffFormat.json:
        _write(report.diff_json(d, q))
    elif fmt == DiffFormat.markdown:
        _write(report.diff_markdown(d, q))
    else:
        _write(report.diff_text(d, q))
    if d.changed:
        raise typer.Exit(3)


@app.command("sources")
def sources_cmd(fmt: FormatOpt = Format.text) -> None:
    """Kernel sources available on this machine (the cache, /usr/src, downloads) and what is indexed.

    Example: ksrcgraph sources
    """
    import json

    from . import cachedir, sources
    from .store import Store

    avail = [{"version": v, "where": w} for v, w in sources.available_versions()]
    with Store() as st:
        indexed = [{k: m[k] for k in ("label", "version", "scope", "root")} for m in st.manifests()]
    if fmt == Format.json:
        _write(json.dumps({"cache": str(cachedir.cache_dir()), "available": avail, "indexed": indexed}, indent=2) + "\n")
        return
    lines = [f"cache: {cachedir.cache_dir()}", "available:"]
    lines += [f"  {a['version']:<10} {a['where']}" for a in avail] or ["  (none: apt-get install linux-source-6.1, "
                                                                      "or ksrcgraph fetch VERSION)"]
    lines.append("indexed:")
    lines += [f"  {m['label']:<10} {m['version'] or '':<10} {m['scope']:<20} {m['root']}" for m in indexed] or ["  (none)"]
    _write("\n".join(lines) + "\n")


@app.command()
def fetch(
    version_: Annotated[str, typer.Argument(metavar="VERSION", help="Kernel version, e.g. 6.12.")],
    source: SourceOpt = None,
    scope: ScopeOpt = None,
    quiet: QuietOpt = False,
    jobs: JobsOpt = None,
    all_headers: AllHeadersOpt = False,
) -> None:
    """Prepare a kernel version ahead of time: find (or download) its sources, extract the scope,
    index and link it, so that later queries start warm.

    Example: ksrcgraph fetch 6.12 --scope net,include,fs
    """
    cg = _open(version_, source, scope, quiet, jobs, all_headers)
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
    import json

    from . import cachedir
    from .store import Store

    with Store() as st:
        info = st.info()
    info["trees"] = _dir_sizes(cachedir.trees_dir())
    info["downloads"] = _dir_sizes(cachedir.cache_dir() / "downloads")
    if fmt == Format.json:
        _write(json.dumps(info, indent=2) + "\n")
        return
    lines = [f"cache {cachedir.cache_dir()}",
             f"  database {info['path']}: {info['file_bytes'] / 1e6:.1f} MB",
             f"  facts: {info['blobs']} distinct file contents, {info['blob_bytes'] / 1e6:.1f} MB",
             f"  linked graphs: {info['graphs']}, {info['graph_bytes'] / 1e6:.1f} MB",
             f"  manifests: {len(info['manifests'])}"]
    lines += [f"    {m['label']:<10} {m['version'] or '':<10} {m['scope']:<20} {m['root']}" for m in info["manifests"]]
    lines.append(f"  extracted trees: {', '.join(f'{k} ({v / 1e6:.0f} MB)' for k, v in info['trees'].items()) or 'none'}")
    lines.append(f"  downloads: {', '.join(f'{k} ({v / 1e6:.0f} MB)' for k, v in info['downloads'].items()) or 'none'}")
    _write("\n".join(lines) + "\n")


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

    from . import cachedir
    from .store import Store

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


def main(argv: list[str] | None = None) -> None:
    debug = bool(os.environ.get("KSRCGRAPH_DEBUG"))
    try:
        rv = app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("Error: interrupted", file=sys.stderr)
        sys.exit(130)
    except KsrcError as e:
        if debug:
            raise
        print(f"Error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"Hint: {e.hint}", file=sys.stderr)
        sys.exit(e.status)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        finally:
            sys.exit(0)
    except ImportError as e:  # tree-sitter, tree-sitter-c or networkx missing or broken
        if debug:
            raise
        print(f"Error: missing dependency: {e.name or e}", file=sys.stderr)
        print("Hint: reinstall ksrcgraph (pip install ksrcgraph) so that its dependencies are installed",
              file=sys.stderr)
        sys.exit(1)
    except MemoryError:
        print("Error: out of memory", file=sys.stderr)
        print("Hint: narrow --scope or use a machine with more memory", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 — the last line of defence: no traceback for users
        if debug:
            raise
        print(f"Error: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        print("Hint: re-run with KSRCGRAPH_DEBUG=1 for a traceback and report it", file=sys.stderr)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()

"""``ksrcgraph index --kernel A --kernel B ...``: several kernel versions indexed in one run.

In: the versions (each as ``diff --from`` takes it: 6.1, a directory, a tarball, repo@tag), the scope.
Out: every version's tree found (extracted once), its files parsed — the store keeps facts per file
content, so each distinct content is parsed once over all the versions and a content already in the
cache not at all — and its graph linked; a table of what each stage did on stdout, a line per stage
and version on stderr (unless --quiet).

Stages, each over every version before the next: sources (find, extract), parse (``index.build_index``),
link (``pipeline.open_graph``, which finds the manifest just recorded). Interrupted, a run resumes where it
stopped: extractions are per scope directory, parsed facts are stored in batches, graphs per version.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from .commands import app
from .options import TreeOptions, _progress, tree_options, write

if TYPE_CHECKING:
    from ..progress import Progress
    from ..sources import SourceTree
    from ..store import Store

KernelsOpt = Annotated[list[str] | None, typer.Option(
    "--kernel", "-K", help="A kernel version (6.1), a directory, a tarball or repo@tag; repeat it for each version.")]


class IndexFormat(str, Enum):
    text = "text"
    json = "json"


@dataclass
class Version:
    """One version of the run, as the stages fill it in."""

    spec: str
    kernel: str | None
    source: str | None
    tree: SourceTree | None = None
    hashes: list[str] = field(default_factory=list)  # content hash of every indexed file
    row: dict = field(default_factory=dict)


def kernel_specs(kernel: list[str] | None, command: str) -> list[tuple[str, str | None, str | None]]:
    """(spec, kernel, source) of each --kernel, in the order given (at least one)."""
    from .. import sources

    if not kernel:
        raise UsageError(f"{command} needs at least one --kernel",
                         f"e.g. ksrcgraph {command} {'FROM TO ' if command == 'matrix' else ''}--kernel 6.1 --kernel 6.12")
    return [(spec, *sources.parse_spec(spec)) for spec in kernel]


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _labelled(prog: Progress | None, label: str) -> Progress | None:
    """The progress bars of one version's work, named after it."""
    if prog is None:
        return None
    return lambda what, done, total: prog(f"{label}: {what}", done, total)


def _stage_sources(vs: list[Version], scope: tuple[str, ...], prog: Progress | None, quiet: bool) -> None:
    from .. import sources

    for i, v in enumerate(vs, 1):
        t0 = time.perf_counter()
        v.tree = sources.open_tree(v.kernel, v.source, scope, _labelled(prog, v.spec))
        v.row.update(spec=v.spec, label=v.tree.label, version=v.tree.version, root=str(v.tree.root),
                     sources_seconds=round(time.perf_counter() - t0, 3))
        _say(quiet, f"sources {i}/{len(vs)}: {v.spec} ({v.tree.version or '?'}) at {v.tree.root} "
                    f"({v.row['sources_seconds']:.1f} s)")


def _stage_parse(vs: list[Version], st: Store, tree: TreeOptions, prog: Progress | None) -> None:
    from .. import index

    for i, v in enumerate(vs, 1):
        assert v.tree is not None
        ix = index.build_index(v.tree, st, tree.jobs, _labelled(prog, v.spec), tree.all_headers)
        v.hashes = [h for _, h in ix.files]
        v.row.update(files=len(ix.files), parsed=ix.stats.get("parsed", 0), reused=ix.stats.get("reused", 0),
                     parse_seconds=ix.stats.get("seconds"), unreadable=len(ix.stats.get("unreadable") or []))
        _say(tree.quiet, f"parse {i}/{len(vs)}: {v.spec}: {v.row['files']} files, {v.row['parsed']} parsed, "
                         f"{v.row['reused']} known already ({v.row['parse_seconds'] or 0:.1f} s)")


def _stage_link(vs: list[Version], st: Store, tree: TreeOptions, scope: tuple[str, ...], prog: Progress | None) -> None:
    from .. import pipeline

    for i, v in enumerate(vs, 1):
        t0 = time.perf_counter()
        cg = pipeline.open_graph(v.kernel, v.source, scope, _labelled(prog, v.spec), tree.jobs, store=st,
                                 all_headers=tree.all_headers)
        v.row.update(linked=cg.meta.get("link_seconds") is not None,
                     link_seconds=round(time.perf_counter() - t0, 3), functions=cg.stats.get("functions"),
                     edges=cg.stats.get("edges"))
        del cg  # one graph in memory at a time
        _say(tree.quiet, f"link {i}/{len(vs)}: {v.spec}: {v.row['functions']} functions, {v.row['edges']} edges, "
                         f"{'linked' if v.row['linked'] else 'in the cache'} ({v.row['link_seconds']:.1f} s)")


def index_versions(specs: list[tuple[str, str | None, str | None]], tree: TreeOptions) -> dict:
    """Run the three stages over the versions; the run's document (a row per version, totals)."""
    from .. import sources
    from ..store import Store

    t0 = time.perf_counter()
    scope = sources.parse_scope(tree.scope)
    vs = [Version(spec, kernel, source) for spec, kernel, source in dict.fromkeys(specs)]  # each version once
    prog = _progress(tree.quiet)
    try:
        with Store() as st:
            _stage_sources(vs, scope, prog, tree.quiet)
            _stage_parse(vs, st, tree, prog)
            _stage_link(vs, st, tree, scope, prog)
    finally:
        if prog is not None:
            prog.stop()
    rows = [v.row for v in vs]
    total = {"versions": len(vs), "files": sum(r["files"] for r in rows),
             "distinct_contents": len({h for v in vs for h in v.hashes}),
             "parsed": sum(r["parsed"] for r in rows), "seconds": round(time.perf_counter() - t0, 3)}
    return {"scope": list(scope), "versions": rows, "total": total}


@app.command("index")
@tree_options("scope")
def index_cmd(
    kernel: KernelsOpt = None,
    tree: TreeOptions = TreeOptions(),
    fmt: Annotated[IndexFormat, typer.Option("--format", "-f", help="Output format.")] = IndexFormat.text,
) -> None:
    """Index several kernel versions in one run, so that later queries on any of them start warm:
    find (or extract) each tree, parse its files — each distinct file content once over all the
    versions, none the cache already holds — then link each version. A run interrupted resumes where
    it stopped. Prints what each version took, and the files against the distinct contents.

    Example: ksrcgraph index --kernel 5.10 --kernel 6.1 --kernel 6.12 --kernel 7.2
    """
    from ..report import versions

    doc = index_versions(kernel_specs(kernel, "index"), tree)
    write(versions.index_json(doc) if fmt == IndexFormat.json else versions.index_text(doc))

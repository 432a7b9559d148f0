"""The options every command that opens a tree shares, declared once; opening the tree; writing out.

In: ``--kernel``, ``--source``, ``--scope``, ``--quiet``, ``--jobs``, ``--all-headers`` (declared once in
``_TREE_OPTIONS``). Out: ``TreeOptions`` (``open()``: the ``CallGraph`` of that tree, with rich progress
bars on stderr on a terminal) and ``@tree_options``, which puts those options in a command's signature
for typer and hands them back to the command as one ``TreeOptions``; ``write``: results to stdout or a file.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import env
from ..errors import KsrcError, UsageError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from ..graph import CallGraph

# -- the tree options, declared once ------------------------------------------------------------------
_TREE_OPTIONS = {
    "kernel": (Annotated[str | None, typer.Option("--kernel", "-K", help="Kernel version, e.g. 6.1 (Debian's "
               "/usr/src/linux-source-6.1.tar.xz, or an earlier extraction in the cache).")], None),
    "source": (Annotated[str | None, typer.Option("--source", "-s", help="Kernel directory or tarball "
               "(.tar, .tar.xz, .tar.gz).")], None),
    "scope": (Annotated[str | None, typer.Option("--scope", help="Top-level directories to index, comma-separated "
              "[default: net,include]; add fs for read/write/ioctl.")], None),
    "quiet": (Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")], False),
    "jobs": (Annotated[int | None, typer.Option("--jobs", "-j", min=1, max=env.max_jobs(), help="Parser processes "
             f"[default: CPUs; at most 4 per CPU and at most {env.MAX_JOBS}: {env.max_jobs()} here; more is a usage "
             "error]. KSRCGRAPH_JOBS sets the default.")], None),
    "all_headers": (Annotated[bool, typer.Option("--all-headers", help="Index every header in scope, not only those "
                    "the scope's .c files include (directly or not).")], False),
}
_WHERE = ("kernel", "source", "scope")  # in a command's signature where its TreeOptions parameter is
_HOW = ("quiet", "jobs", "all_headers")  # always last


@dataclass(frozen=True)
class TreeOptions:
    """Which kernel tree to read and how: what every command that opens a graph is given."""

    kernel: str | None = None
    source: str | None = None
    scope: str | None = None
    quiet: bool = False
    jobs: int | None = None
    all_headers: bool = False

    def open(self) -> CallGraph:
        """The call graph of the tree (indexed and linked first when needed); with neither --kernel
        nor --source, of the newest kernel found locally, else of the bundled example tree."""
        from .. import pipeline, sources

        kernel, source, scope = self.kernel, self.source, sources.parse_scope(self.scope)
        if kernel is None and source is None:
            kernel, source = _default_kernel(self.quiet)
        prog = _progress(self.quiet)
        try:
            cg = pipeline.open_graph(kernel, source, scope, prog, self.jobs, all_headers=self.all_headers)
        finally:
            if prog is not None:
                prog.stop()
        _warn_unreadable(cg.meta.get("unreadable") or [])
        return cg

    def open_spec(self, spec: str) -> CallGraph:
        """--from/--to of diff: a version (6.1), a directory or tarball, or repo@tag."""
        from .. import sources

        kernel, source = sources.parse_spec(spec)
        return replace(self, kernel=kernel, source=source).open()


def _warn_unreadable(files: list[str]) -> None:
    """Files in scope that could not be read: the answer is about the others, and says so."""
    if files:
        n = len(files)
        print(f"Warning: {n} file{'' if n == 1 else 's'} could not be read and {'is' if n == 1 else 'are'} not "
              f"indexed: {'; '.join(files[:5])}{'; ...' if n > 5 else ''} (check the permissions)", file=sys.stderr)


def tree_options(*where: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the tree options: its parameter ``tree: TreeOptions`` becomes the options
    named in where (default --kernel, --source, --scope), at that place in the signature (so in
    --help), and --quiet, --jobs, --all-headers are added last; typer sees those options, the
    command gets them back as one TreeOptions."""
    shown = where or _WHERE

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(command, eval_str=True)
        params: list[inspect.Parameter] = []
        for p in sig.parameters.values():
            params += [_tree_param(n) for n in shown] if p.name == "tree" else [p.replace(kind=p.KEYWORD_ONLY)]
        params += [_tree_param(n) for n in _HOW]

        @functools.wraps(command)
        def run(**kw: Any) -> Any:
            tree = TreeOptions(**{n: kw.pop(n) for n in (*shown, *_HOW)})
            return command(tree=tree, **kw)

        run.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": sig.return_annotation}
        return run

    return decorate


def _tree_param(name: str) -> inspect.Parameter:
    annotation, default = _TREE_OPTIONS[name]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


class _Progress:
    """rich progress bars on stderr, only on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True)
        self.tasks: dict[str, TaskID] = {}
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
    if quiet or not sys.stderr.isatty() or env.flag("KSRCGRAPH_NO_PROGRESS"):
        return None
    return _Progress()


def _default_kernel(quiet: bool) -> tuple[str | None, str | None]:
    """Neither --kernel nor --source: the newest kernel available locally, else the bundled fixture."""
    from .. import sources

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


def write(text: str, out: Path | None = None) -> None:
    """Results to stdout, or to the file out: a regular file is replaced atomically (temporary file and
    rename, keeping its mode; a symlink is followed), anything else is refused."""
    if out is None:
        sys.stdout.write(text)
        return
    try:
        _write_file(text, out)
    except OSError as e:
        raise KsrcError(f"cannot write {str(out)[:200]}: {e.strerror}",
                        "check the directory exists and is writable, and that the disk has room") from e


def _write_file(text: str, out: Path) -> None:
    target = out.resolve() if out.is_symlink() else out  # a link: write what it points at, keep the link
    if target.exists() and not target.is_file():
        raise KsrcError(f"refusing to write {out}: it is not a regular file", "give -o a file path")
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:100]}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)  # a private file stays private; a new one gets the usual mode
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # gone once renamed; else a failed write leaves nothing behind


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

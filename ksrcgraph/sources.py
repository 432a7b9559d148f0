"""Stage 1 — sources: find a kernel tree and list the files in scope.

In: ``--kernel V`` and/or ``--source PATH`` (a kernel directory or a .tar/.tar.xz/.tar.gz/.tar.bz2),
and the scope (top-level directories, default ``net,include``).
Out: a ``SourceTree`` (a directory holding the scope directories) and, from ``list_files``, the
sorted (relative path, absolute path, size, mtime) of its ``.c`` and ``.h`` files.

``--kernel V`` looks, in order, at the user cache (``trees/V``, extracted earlier) and at Debian's
``/usr/src/linux-source-V.tar.xz``. Tarballs are extracted once, scope directory by scope directory,
by ``archive`` (safely, and completely or not at all), into a temporary directory renamed into place,
so an interrupted run leaves nothing half-written. A write that fails (full disk, read-only cache) is
a ``CacheError`` saying so. ``list_files`` warns, with a count, about directories it cannot read.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import cachedir, env
from .archive import SOURCE_SUFFIXES, extract_stream, extract_tarball
from .errors import SourceError, UsageError
from .progress import Progress

DEFAULT_SCOPE = ("net", "include")
TARBALL_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")
_SCOPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*(-rc[0-9]+)?$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+/-]*$")


def system_src_dirs() -> tuple[Path, ...]:
    """Where distribution kernel tarballs live (Debian: /usr/src); $KSRCGRAPH_SRC_DIRS overrides."""
    chosen = env.directories("KSRCGRAPH_SRC_DIRS")
    return chosen if chosen is not None else (Path("/usr/src"),)


@dataclass(frozen=True)
class SourceTree:
    root: Path  # directory that holds the scope directories
    label: str  # what the user named: "6.1", or the path
    scope: tuple[str, ...]
    origin: str  # "cache", "tarball <path>", "directory"
    immutable: bool  # extracted by us: files never change, stat checks can be skipped

    @property
    def version(self) -> str | None:
        return read_version(self.root)


def parse_scope(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_SCOPE
    parts = [p.strip().strip("/") for p in text.split(",") if p.strip()]
    for p in parts:
        if not _SCOPE_RE.match(p) or p in (".", "..") or len(p) > 255:
            raise UsageError(f"invalid scope directory {p[:60]!r}", "give top-level kernel directories, e.g. --scope net,include,fs")
    return tuple(dict.fromkeys(parts))


def parse_spec(spec: str) -> tuple[str | None, str | None]:
    """--from/--to: '6.1' -> (kernel, None); a directory or tarball -> (None, path);
    'repo@tag' -> (tag, repo)."""
    if not spec.strip():
        raise UsageError("--from or --to is empty", "use e.g. 6.1, /usr/src/linux-source-6.1.tar.xz, ~/linux or ~/linux@v6.12")
    if "@" in spec:
        repo, _, tag = spec.rpartition("@")
        with _looking_at(repo):
            if repo and Path(repo).expanduser().is_dir():
                return tag, repo
    with _looking_at(spec):
        if Path(spec).expanduser().exists():
            return None, spec
    if _VERSION_RE.match(spec) and len(spec) <= 128:
        return spec, None
    raise UsageError(f"{spec!r} is neither a kernel version, a directory, a tarball nor repo@tag",
                     "use e.g. 6.1, /usr/src/linux-source-6.1.tar.xz, ~/linux or ~/linux@v6.12")


def read_version(root: Path) -> str | None:
    """VERSION.PATCHLEVEL.SUBLEVEL from the tree's top Makefile, when there is one."""
    try:
        head = (root / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        return None
    vals = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)", head, re.M))
    if "VERSION" in vals and "PATCHLEVEL" in vals:
        return ".".join(vals[k] for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL") if k in vals)
    return None


def is_tarball(p: Path) -> bool:
    return p.name.endswith(TARBALL_SUFFIXES)


def system_tarball(version: str) -> Path | None:
    for d in system_src_dirs():
        for suffix in (".tar.xz", ".tar.gz", ".tar.bz2", ".tar"):
            p = d / f"linux-source-{version}{suffix}"
            if p.is_file():
                return p
    return None


def available_versions() -> list[tuple[str, str]]:
    """(version, where) for every kernel found locally: cache first, then /usr/src."""
    out: dict[str, str] = {}
    tdir = cachedir.trees_dir()
    if tdir.is_dir():
        for d in sorted(tdir.iterdir()):
            if d.is_dir() and _VERSION_RE.match(d.name) and any(d.glob(".done-*")):
                out.setdefault(d.name, f"cache {d}")
    for sd in system_src_dirs():
        if sd.is_dir():
            for p in sorted(sd.glob("linux-source-*.tar*")):
                m = re.match(r"linux-source-(.+?)\.tar", p.name)
                if m and _VERSION_RE.match(m.group(1)):
                    out.setdefault(m.group(1), str(p))
    return sorted(out.items(), key=lambda kv: _version_key(kv[0]))


def _version_key(v: str) -> tuple:
    return tuple(int(x) if x.isdigit() else -1 for x in re.split(r"[.-]", v.replace("rc", "")))


def open_tree(kernel: str | None, source: str | None, scope: tuple[str, ...],
              progress: Progress | None = None) -> SourceTree:
    """Resolve --kernel/--source to a directory holding every scope directory."""
    if kernel is not None and (len(kernel) > 128 or not _VERSION_RE.match(kernel)
                               and not (source and _TAG_RE.match(kernel))):
        raise UsageError(f"invalid kernel version {kernel[:60]!r}", "use a version like 6.1 or 6.12")
    if source is not None:
        if not source.strip():
            raise UsageError("--source is empty", "give a kernel directory or tarball (an unset shell variable?)")
        with _looking_at(source):
            return _source_tree(kernel, Path(source).expanduser(), scope, progress)
    if kernel is None:
        raise UsageError("no kernel given", "pass --kernel VERSION (e.g. 6.1) or --source PATH")
    return _kernel_tree(kernel, scope, progress)


@contextmanager
def _looking_at(spec: str) -> Iterator[None]:
    """Looking at a path the user gave: a name too long is a usage error, another failure (a
    directory on the way that may not be searched) a SourceError; never an internal error."""
    try:
        yield
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise UsageError(f"path {spec[:60]!r}... is too long for this system", "give the path of an existing "
                             "kernel directory or tarball") from e
        raise SourceError(f"cannot read {spec}: {e.strerror}", "check the path and its permissions") from e


def _source_tree(kernel: str | None, p: Path, scope: tuple[str, ...], progress: Progress | None) -> SourceTree:
    """--source: a kernel directory, a git repository (--kernel names the tag) or a tarball."""
    if not p.exists():
        raise SourceError(f"source {p} does not exist", "pass a kernel directory or a linux-*.tar.xz tarball")
    if p.is_dir() and kernel is not None and is_git_repo(p):
        gt = git_tag(p, kernel)
        key = f"git-{gt.commit[:16]}"
        root = _extract_scopes(gt, cachedir.trees_dir() / key, scope, progress)
        return SourceTree(root, kernel, scope, f"git {gt}", True)
    if p.is_dir():
        return _directory_tree(p, scope, label=kernel or str(p))
    if p.is_file() and is_tarball(p):
        # keyed by the tarball, never by the label: a label is not a path (it may hold "/" or ".."),
        # and another tarball given the same label, or Debian's tree of that version, stays apart
        root = _extract_scopes(p, cachedir.trees_dir() / ("tar-" + _file_key(p)), scope, progress)
        return SourceTree(root, kernel or str(p), scope, f"tarball {p}", True)
    raise SourceError(f"source {p} is neither a directory nor a tarball",
                      "pass a kernel directory or a .tar/.tar.xz/.tar.gz file")


def _kernel_tree(kernel: str, scope: tuple[str, ...], progress: Progress | None) -> SourceTree:
    """--kernel V alone: the cache, Debian's tarball, a download."""
    cached = cachedir.trees_dir() / kernel
    if cached.is_dir() and all((cached / f".done-{s}").exists() for s in scope):
        return SourceTree(cached, kernel, scope, "cache", True)
    tb = system_tarball(kernel) or downloaded_tarball(kernel)
    if tb is None:
        if env.flag("KSRCGRAPH_OFFLINE"):
            have = ", ".join(v for v, _ in available_versions()) or "none"
            raise SourceError(
                f"no sources for kernel {kernel} (looked in {cachedir.trees_dir()} and {_src_dirs_text()}; "
                "KSRCGRAPH_OFFLINE forbids downloading)",
                f"install Debian's linux-source-{kernel} (apt-get install linux-source-{kernel}) or pass --source PATH; "
                f"available here: {have}",
            )
        from .download import fetch_tarball

        tb = fetch_tarball(kernel, progress)
    root = _extract_scopes(tb, cached, scope, progress)
    return SourceTree(root, kernel, scope, f"tarball {tb}", True)


def _src_dirs_text() -> str:
    return ", ".join(str(d) for d in system_src_dirs()) or "no system directory"


def downloaded_tarball(version: str) -> Path | None:
    p = cachedir.cache_dir() / "downloads" / f"linux-{version}.tar.xz"
    return p if p.is_file() else None


def _file_key(p: Path) -> str:
    import hashlib

    st = p.stat()
    return hashlib.sha1(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]


def _directory_tree(p: Path, scope: tuple[str, ...], label: str) -> SourceTree:
    if not os.access(p, os.R_OK | os.X_OK):
        raise SourceError(f"cannot read directory {p}", "check its permissions")
    missing = [s for s in scope if not (p / s).is_dir()]
    if len(missing) == len(scope):
        raise SourceError(f"{p} has none of the scope directories {', '.join(scope)}",
                          "point --source at the top of a kernel tree (the directory holding net/ and include/)")
    if missing:
        raise SourceError(f"{p} lacks scope director{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}",
                          "drop them from --scope or use a complete kernel tree")
    return SourceTree(p.resolve(), label, scope, "directory", False)


@contextmanager
def _locked(dirpath: Path) -> Iterator[None]:
    dirpath.mkdir(parents=True, exist_ok=True)
    with open(dirpath / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _extract_scopes(tarball: Path | GitTag, dest: Path, scope: tuple[str, ...], progress: Progress | None) -> Path:
    """Extract the scope directories (and the top Makefile) of a tarball (or a git tag) into dest,
    once. A write that fails is a CacheError (full disk, read-only cache), never a damaged tarball."""
    if all((dest / f".done-{s}").exists() for s in scope):
        return dest  # complete already: nothing to write (a read-only cache still serves it)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _locked(dest):
            for stale in dest.glob(".tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run (we hold the lock)
            todo = [s for s in scope if not (dest / f".done-{s}").exists()]
            if todo:
                tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest))
                try:
                    _install(tarball, tmp, dest, todo, progress)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    except OSError as e:
        raise cachedir.write_error(e, dest) from e
    return dest


def _install(tarball: Path | GitTag, tmp: Path, dest: Path, todo: list[str], progress: Progress | None) -> None:
    """Extract the scope directories todo into tmp, then move each into dest with its marker."""
    if isinstance(tarball, GitTag):
        found = tarball.extract(tmp, set(todo), progress)
    else:
        found = extract_tarball(tarball, tmp, set(todo), progress)
    absent = [s for s in todo if s not in found]
    if absent:
        raise SourceError(f"{tarball.name} has no {', '.join(d + '/' for d in absent)} directory",
                          "check --scope (top-level kernel directories such as net, include, fs)")
    if (tmp / "Makefile").is_file() and not (dest / "Makefile").exists():
        os.replace(tmp / "Makefile", dest / "Makefile")
    for s in todo:
        if (dest / s).exists():
            shutil.rmtree(dest / s)  # an earlier partial copy without its marker
        os.replace(tmp / s, dest / s)
        (dest / f".done-{s}").write_text(str(tarball) + "\n")
    (dest / ".origin").write_text(str(tarball) + "\n")


@dataclass(frozen=True)
class GitTag:
    """A tag (or any commit) of a git repository, read without a checkout (``git archive``)."""

    repo: Path
    tag: str
    commit: str

    @property
    def name(self) -> str:
        return f"{self.repo.name}@{self.tag}"

    def __str__(self) -> str:
        return f"{self.repo}@{self.tag} ({self.commit[:12]})"

    def extract(self, tmp: Path, want: set[str], progress: Progress | None) -> set[str]:
        import subprocess

        paths = [w for w in sorted(want) if _git(self.repo, "cat-file", "-t", f"{self.commit}:{w}", check=False)]
        if not paths:
            return set()
        has_makefile = bool(_git(self.repo, "cat-file", "-t", f"{self.commit}:Makefile", check=False))
        cmd = ["git", "-C", str(self.repo), "archive", "--format=tar", self.commit, "--", *paths,
               *(["Makefile"] if has_makefile else [])]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            found = extract_stream(self.name, proc.stdout, None, 0, tmp, want, progress)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            rc = proc.wait()
        if rc != 0:
            raise SourceError(f"git archive of {self} failed: {err.strip()}", "check the repository and the tag")
        return found


def _git(repo: Path, *args: str, check: bool = True) -> str:
    import subprocess

    try:
        r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError as e:
        raise SourceError("git is not installed", "install git to read a repository's tags") from e
    if r.returncode != 0:
        if check:
            raise SourceError(f"git {' '.join(args[:2])} in {repo} failed: {r.stderr.strip()}",
                              "check the repository path and the tag name")
        return ""
    return r.stdout.strip()


def is_git_repo(p: Path) -> bool:
    return (p / ".git").exists() or (p / "HEAD").is_file() and (p / "objects").is_dir()


def git_tag(repo: Path, tag: str) -> GitTag:
    """The commit a tag names; tries the name as given, then with a leading v (6.1 -> v6.1)."""
    for cand in (tag, f"v{tag}") if not tag.startswith("v") else (tag,):
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{cand}^{{commit}}", check=False)
        if commit:
            return GitTag(repo.resolve(), cand, commit)
    tags = _git(repo, "tag", "--list", check=False).split()
    raise SourceError(f"no tag {tag!r} in {repo}", f"tags there: {', '.join(tags[-8:]) or 'none'}")


def list_files(tree: SourceTree) -> list[tuple[str, str, int, int]]:
    """(relative path, absolute path, size, mtime_ns) of every .c/.h file in scope, sorted; a warning
    (with a count) for the directories and files it cannot read: their files are not indexed."""
    out: list[tuple[str, str, int, int]] = []
    unreadable: list[str] = []
    root = str(tree.root)
    for s in tree.scope:
        walk = os.walk(os.path.join(root, s), onerror=lambda e: unreadable.append(f"{e.filename}: {e.strerror}"))
        for dirpath, dirnames, filenames in walk:
            dirnames.sort()
            for fn in filenames:
                if fn.endswith(SOURCE_SUFFIXES):
                    _list_file(os.path.join(dirpath, fn), root, out, unreadable)
    if unreadable:
        print(f"Warning: cannot read {len(unreadable)} entr{'y' if len(unreadable) == 1 else 'ies'} under {root}; "
              f"the sources there are not indexed: {'; '.join(unreadable[:5])}{'; ...' if len(unreadable) > 5 else ''}",
              file=sys.stderr)
    out.sort()
    return out


def _list_file(ap: str, root: str, out: list, unreadable: list[str]) -> None:
    try:
        st = os.lstat(ap)
    except OSError as e:
        unreadable.append(f"{os.path.relpath(ap, root)}: {e.strerror}")
        return
    if os.path.isfile(ap) and not os.path.islink(ap):
        out.append((os.path.relpath(ap, root), ap, st.st_size, st.st_mtime_ns))


def bundled_fixture() -> Path | None:
    """The kernel-shaped fixture shipped with ksrcgraph (fixtures/minikernel)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "minikernel", here.parent / "fixtures" / "minikernel"):
        if (cand / "net").is_dir() and (cand / "include").is_dir():
            return cand
    return None

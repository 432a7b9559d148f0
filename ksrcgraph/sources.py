"""Stage 1 — sources: find a kernel tree and list the files in scope.

In: ``--kernel V`` and/or ``--source PATH`` (a kernel directory or a .tar/.tar.xz/.tar.gz/.tar.bz2),
and the scope (top-level directories, default ``net,include``).
Out: a ``SourceTree`` (a directory holding the scope directories) and, from ``list_files``, the
sorted (relative path, absolute path, size, mtime) of its ``.c`` and ``.h`` files.

``--kernel V`` looks, in order, at the user cache (``trees/V``, extracted earlier) and at Debian's
``/usr/src/linux-source-V.tar.xz``. Tarballs are extracted once, scope directory by scope directory,
through ``tarfile.data_filter``: absolute names, ``..``, links leading out and device nodes make the
whole archive refused; links are never materialised; a size limit stops archive bombs. Extraction
goes to a temporary directory renamed into place, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import cachedir
from .errors import ArchiveError, SourceError, UsageError
from .progress import Progress

DEFAULT_SCOPE = ("net", "include")
def system_src_dirs() -> tuple[Path, ...]:
    """Where distribution kernel tarballs live (Debian: /usr/src); $KSRCGRAPH_SRC_DIRS overrides."""
    env = os.environ.get("KSRCGRAPH_SRC_DIRS")
    if env is not None:
        return tuple(Path(p) for p in env.split(":") if p)
    return (Path("/usr/src"),)
TARBALL_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")
SOURCE_SUFFIXES = (".c", ".h")
MAX_MEMBER_BYTES = 64 << 20
_SCOPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*(-rc[0-9]+)?$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+/-]*$")
# top-level names of a kernel tree: a tarball whose first component is one of these has no prefix
_KERNEL_TOP = frozenset(
    "arch block certs crypto drivers fs include init io_uring ipc kernel lib mm net rust samples scripts "
    "security sound tools usr virt Documentation LICENSES Makefile Kconfig COPYING CREDITS MAINTAINERS README".split()
)



def max_extract_bytes() -> int:
    return int(os.environ.get("KSRCGRAPH_MAX_EXTRACT_BYTES", str(4 << 30)))


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
        if not _SCOPE_RE.match(p) or p in (".", ".."):
            raise UsageError(f"invalid scope directory {p!r}", "give top-level kernel directories, e.g. --scope net,include,fs")
    return tuple(dict.fromkeys(parts))


def parse_spec(spec: str) -> tuple[str | None, str | None]:
    """--from/--to: '6.1' -> (kernel, None); a directory or tarball -> (None, path);
    'repo@tag' -> (tag, repo)."""
    if "@" in spec:
        repo, _, tag = spec.rpartition("@")
        if repo and Path(repo).expanduser().is_dir():
            return tag, repo
    p = Path(spec).expanduser()
    if p.exists():
        return None, spec
    if _VERSION_RE.match(spec):
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
    if kernel is not None and not _VERSION_RE.match(kernel) and not (source and _TAG_RE.match(kernel)):
        raise UsageError(f"invalid kernel version {kernel!r}", "use a version like 6.1 or 6.12")
    if source is not None:
        p = Path(source).expanduser()
        if not p.exists():
            raise SourceError(f"source {source} does not exist", "pass a kernel directory or a linux-*.tar.xz tarball")
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
        raise SourceError(f"source {source} is neither a directory nor a tarball",
                          "pass a kernel directory or a .tar/.tar.xz/.tar.gz file")
    if kernel is None:
        raise UsageError("no kernel given", "pass --kernel VERSION (e.g. 6.1) or --source PATH")
    cached = cachedir.trees_dir() / kernel
    if cached.is_dir() and all((cached / f".done-{s}").exists() for s in scope):
        return SourceTree(cached, kernel, scope, "cache", True)
    tb = system_tarball(kernel) or downloaded_tarball(kernel)
    if tb is None:
        if os.environ.get("KSRCGRAPH_OFFLINE"):
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
    once."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SourceError(f"cannot create cache directory {dest.parent}: {e.strerror}",
                          "set KSRCGRAPH_CACHE_DIR to a writable directory") from e
    with _locked(dest):
        for stale in dest.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted run (we hold the lock)
        todo = [s for s in scope if not (dest / f".done-{s}").exists()]
        if not todo:
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest))
        try:
            if isinstance(tarball, GitTag):
                found = tarball.extract(tmp, set(todo), progress)
            else:
                found = _extract_members(tarball, tmp, set(todo), progress)
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
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _decompressed(raw):  # type: ignore[no-untyped-def]
    """The tarball's bytes as a stream; gzip/xz/bz2 readers raise EOFError on truncation."""
    import bz2
    import gzip
    import lzma

    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"\xfd7zXZ"):
        return lzma.LZMAFile(raw, "rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    return raw


def _refuse(tarball: Path, name: str, why: str) -> ArchiveError:
    return ArchiveError(f"refusing {tarball.name}: member {name!r} {why}",
                        "the archive is damaged or hostile; use an official kernel tarball")


def _extract_members(tarball: Path, tmp: Path, want: set[str], progress: Progress | None) -> set[str]:
    size = tarball.stat().st_size
    with open(tarball, "rb") as raw, _decompressed(raw) as stream:
        return _extract_stream(tarball.name, stream, raw, size, tmp, want, progress)


def _check_member(tarball: Path, tmp: Path, member: tarfile.TarInfo) -> bool:
    """Refuse the archive for an unsafe member; False when tarfile's data filter drops it."""
    name = member.name
    if name.startswith("/") or ".." in name.split("/"):
        raise _refuse(tarball, name, "has an absolute or parent-relative name")
    if (member.issym() or member.islnk()) and (
            member.linkname.startswith("/") or ".." in member.linkname.split("/")
            and not _link_inside(name, member.linkname, member.islnk())):
        raise _refuse(tarball, name, f"links outside the tree ({member.linkname})")
    try:
        return tarfile.data_filter(member, str(tmp)) is not None
    except tarfile.FilterError as e:
        raise _refuse(tarball, name, f"is unsafe: {e}") from e


def _kept(member: tarfile.TarInfo, rel: list[str], want: set[str]) -> bool:
    """A regular file we extract: a source file under a wanted top directory, or the top Makefile."""
    if not member.isfile():
        return False  # directories are implied; links are never materialised
    if len(rel) == 1 and rel[0] == "Makefile":
        return True
    return rel[0] in want and rel[-1].endswith(SOURCE_SUFFIXES)


class _Budget:
    """Bytes extracted so far, against the per-member and whole-archive limits."""

    def __init__(self, tarball: Path) -> None:
        self.tarball, self.total, self.limit = tarball, 0, max_extract_bytes()

    def take(self, member: tarfile.TarInfo) -> None:
        if member.size > MAX_MEMBER_BYTES:
            raise ArchiveError(f"refusing {self.tarball.name}: member {member.name!r} is {member.size} bytes",
                               f"members over {MAX_MEMBER_BYTES} bytes are not kernel sources")
        self.total += member.size
        if self.total > self.limit:
            raise ArchiveError(f"refusing {self.tarball.name}: more than {self.limit} bytes to extract",
                               "raise KSRCGRAPH_MAX_EXTRACT_BYTES if this is really a kernel tree")


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, tarball: Path, tmp: Path, rel: list[str]) -> bool:
    target = tmp.joinpath(*rel)
    if tmp not in target.parents:
        raise _refuse(tarball, member.name, "escapes the destination")
    src = tar.extractfile(member)
    if src is None:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return True


def _extract_stream(label: str, stream, raw, size: int, tmp: Path, want: set[str],  # type: ignore[no-untyped-def]
                    progress: Progress | None) -> set[str]:
    """Extract the wanted top directories' sources from an uncompressed tar stream, safely."""
    tarball = Path(label)
    found: set[str] = set()
    budget = _Budget(tarball)
    prefix: str | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for n, member in enumerate(tar):
                name = member.name
                if not _check_member(tarball, tmp, member):
                    continue
                parts = name.lstrip("./").split("/")
                if prefix is None:
                    prefix = parts[0] if (len(parts) > 1 or member.isdir()) and parts[0] not in _KERNEL_TOP else ""
                rel = parts[1:] if prefix and parts[0] == prefix else parts
                if not rel or not rel[0]:
                    continue
                if n % 2000 == 0 and progress is not None and raw is not None:
                    progress(f"extracting {tarball.name}", raw.tell(), size)
                if not _kept(member, rel, want):
                    continue
                budget.take(member)
                if _copy_member(tar, member, tarball, tmp, rel) and rel != ["Makefile"]:
                    found.add(rel[0])
            while stream.read(1 << 20):
                pass  # read to the end: a truncated compressed stream fails here
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise ArchiveError(f"cannot read {tarball.name}: {e}", "the tarball is damaged or truncated; download it again") from e
    if progress is not None:
        progress(f"extracting {tarball.name}", size, size)
    return found


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
            found = _extract_stream(self.name, proc.stdout, None, 0, tmp, want, progress)
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


def _link_inside(name: str, linkname: str, hard: bool) -> bool:
    """Whether a link's target stays inside the archive's tree."""
    base = [] if hard else name.split("/")[:-1]
    depth = len(base)
    for part in linkname.split("/"):
        if part == "..":
            depth -= 1
            if depth < 1:  # above the archive's top directory
                return False
        elif part and part != ".":
            depth += 1
    return True


def list_files(tree: SourceTree) -> list[tuple[str, str, int, int]]:
    """(relative path, absolute path, size, mtime_ns) of every .c/.h file in scope, sorted."""
    out: list[tuple[str, str, int, int]] = []
    root = str(tree.root)
    for s in tree.scope:
        base = os.path.join(root, s)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in filenames:
                if not fn.endswith(SOURCE_SUFFIXES):
                    continue
                ap = os.path.join(dirpath, fn)
                try:
                    st = os.lstat(ap)
                except OSError:
                    continue
                if not os.path.isfile(ap) or os.path.islink(ap):
                    continue
                out.append((os.path.relpath(ap, root), ap, st.st_size, st.st_mtime_ns))
    out.sort()
    return out


def bundled_fixture() -> Path | None:
    """The kernel-shaped fixture shipped with ksrcgraph (fixtures/minikernel)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "minikernel", here.parent / "fixtures" / "minikernel"):
        if (cand / "net").is_dir() and (cand / "include").is_dir():
            return cand
    return None

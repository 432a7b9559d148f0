"""Reading a kernel tarball (or ``git archive``'s tar stream) into a directory, safely and completely.

In: an uncompressed or compressed (gzip, xz, bzip2) tar, the top-level directories wanted, and an
empty temporary directory. Out: the wanted directories' ``.c``/``.h`` files (and the top Makefile) in
that directory, and the set of top directories found — or an error, and then the caller throws the
temporary directory away: nothing half-read is ever kept.

Every member goes through ``tarfile.data_filter``: absolute names, ``..``, links leading out and device
nodes make the whole archive refused; links are never materialised; a size limit stops archive bombs.
Complete or nothing: tarfile takes a damaged header after the first member (or data cut at a header)
for the end of the archive, so the data from where it stopped to the end must be the end-of-archive
marker and zero padding, and the compressed stream must reach its own end marker (gzip, xz and bzip2
check their CRC there).
"""

from __future__ import annotations

import collections
import lzma
import os
import tarfile
import zlib
from pathlib import Path

from . import env
from .cachedir import write_error
from .errors import ArchiveError
from .progress import Progress

SOURCE_SUFFIXES = (".c", ".h")
MAX_MEMBER_BYTES = 64 << 20
# top-level names of a kernel tree: a tarball whose first component is one of these has no prefix
_KERNEL_TOP = frozenset(
    "arch block certs crypto drivers fs include init io_uring ipc kernel lib mm net rust samples scripts "
    "security sound tools usr virt Documentation LICENSES Makefile Kconfig COPYING CREDITS MAINTAINERS README".split()
)
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, lzma.LZMAError, zlib.error)


def max_extract_bytes() -> int:
    return env.integer("KSRCGRAPH_MAX_EXTRACT_BYTES", 4 << 30)


def extract_tarball(tarball: Path, tmp: Path, want: set[str], progress: Progress | None) -> set[str]:
    """Extract the wanted top directories of a tarball file into tmp; the set of those found."""
    from .errors import SourceError

    try:
        raw = open(tarball, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise SourceError(f"cannot read {tarball}: {e.strerror}",
                          "check the file's permissions (it must be readable by you)") from e
    with raw:
        size = os.fstat(raw.fileno()).st_size
        try:
            stream = _decompressed(raw)
        except _READ_ERRORS as e:
            raise _damaged(tarball.name, e) from e
        with stream:
            return extract_stream(tarball.name, stream, raw, size, tmp, want, progress)


def _decompressed(raw):  # type: ignore[no-untyped-def]
    """The tarball's bytes as a stream; gzip/xz/bz2 readers raise EOFError on truncation."""
    import bz2
    import gzip

    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"\xfd7zXZ"):
        return lzma.LZMAFile(raw, "rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    return raw


def _damaged(name: str, why: object) -> ArchiveError:
    return ArchiveError(f"cannot read {name}: {why}; nothing was extracted",
                        "the tarball is damaged or truncated; download it again (xz -t or gzip -t checks one)")


def _refuse(tarball: Path, name: str, why: str) -> ArchiveError:
    return ArchiveError(f"refusing {tarball.name}: member {name!r} {why}",
                        "the archive is damaged or hostile; use an official kernel tarball")


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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:
            for chunk in _chunks(src, tarball.name):
                out.write(chunk)
    except OSError as e:  # reads raise ArchiveError (in _chunks): an OSError here is the cache's
        raise write_error(e, target.parent) from e
    return True


def _chunks(src, name: str):  # type: ignore[no-untyped-def]
    """A member's data, read; a failed read is the archive's fault."""
    while True:
        try:
            chunk = src.read(1 << 20)
        except _READ_ERRORS as e:
            raise _damaged(name, e) from e
        if not chunk:
            return
        yield chunk


class _Tail:
    """The uncompressed tar stream as tarfile reads it: counts the bytes and keeps the last reads, so
    that what lies after the point where tarfile stopped can be checked."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.stream, self.count = stream, 0
        self.last: collections.deque[bytes] = collections.deque(maxlen=32)

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if data:
            self.count += len(data)
            self.last.append(data)
        return data

    def since(self, offset: int) -> bytes | None:
        """The bytes read from offset on (None when they are no longer kept)."""
        kept = b"".join(self.last)
        k = self.count - offset
        return kept[len(kept) - k:] if 0 <= k <= len(kept) else None


def _check_end(name: str, offset: int, tail: _Tail) -> None:
    """Complete or nothing: from where tarfile stopped, only the end-of-archive marker (at least one
    zero block) and zero padding, up to the end of the (compressed) stream."""
    rest = tail.since(offset)
    if rest is None:
        raise _damaged(name, f"the tar data stops at byte {offset}")
    size = len(rest)
    bad = bool(rest.strip(b"\0"))
    while not bad and (chunk := tail.read(1 << 20)):  # to the end: a truncated compressed stream fails here
        size += len(chunk)
        bad = bool(chunk.strip(b"\0"))
    if bad or size < tarfile.BLOCKSIZE:
        raise _damaged(name, f"the tar data is damaged or truncated at byte {offset} "
                             "(a bad header or the end of the data before the end-of-archive marker)")


def _top_parts(member: tarfile.TarInfo, prefix: str | None) -> tuple[list[str], str]:
    """(path inside the tree, the archive's prefix directory) of a member; the prefix is decided by
    the first member ("linux-6.1/" or none)."""
    parts = member.name.lstrip("./").split("/")
    if prefix is None:
        prefix = parts[0] if (len(parts) > 1 or member.isdir()) and parts[0] not in _KERNEL_TOP else ""
    return (parts[1:] if prefix and parts[0] == prefix else parts), prefix


def extract_stream(label: str, stream, raw, size: int, tmp: Path, want: set[str],  # type: ignore[no-untyped-def]
                   progress: Progress | None) -> set[str]:
    """Extract the wanted top directories' sources from an uncompressed tar stream, safely and
    completely (else ArchiveError); the set of wanted top directories found."""
    tarball = Path(label)
    found: set[str] = set()
    budget = _Budget(tarball)
    prefix: str | None = None
    tail = _Tail(stream)
    try:
        with tarfile.open(fileobj=tail, mode="r|") as tar:
            for n, member in enumerate(tar):
                if not _check_member(tarball, tmp, member):
                    continue
                rel, prefix = _top_parts(member, prefix)
                if not rel or not rel[0]:
                    continue
                if n % 2000 == 0 and progress is not None and raw is not None:
                    progress(f"extracting {tarball.name}", raw.tell(), size)
                if not _kept(member, rel, want):
                    continue
                budget.take(member)
                if _copy_member(tar, member, tarball, tmp, rel) and rel != ["Makefile"]:
                    found.add(rel[0])
            _check_end(tarball.name, tar.offset, tail)
    except _READ_ERRORS as e:
        raise _damaged(tarball.name, e) from e
    if progress is not None:
        progress(f"extracting {tarball.name}", size, size)
    return found

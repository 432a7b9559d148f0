"""The real System.map of Debian's kernel builds, for ground truth (issue 11).

Debian's ``linux-image-*-unsigned`` packages carry a placeholder ``boot/System.map`` ("The real
System.map is in the linux-image-<version>-dbg package"): the table is in the ``-dbg`` package
(``usr/lib/debug/boot/System.map-*``, near the start of its data archive). ``system_map(version)``
finds the ``linux-image-*-amd64-dbg`` package whose version equals the installed
``linux-source-<version>``'s, fetches it with ``apt-get download`` into a temporary directory, streams
its data archive only up to the System.map, keeps that file (compressed with xz, ~1 MB) under the
ksrcgraph cache directory and deletes the package (~0.9 GB). Cached: a second call reads the file.

The cache: ``$KSRCGRAPH_SYMBOLS_CACHE``, else ``symbols/`` under the user's ksrcgraph cache
(``$XDG_CACHE_HOME/ksrcgraph``, ``~/.cache/ksrcgraph``) — not the per-session cache the tests set up,
so a test run after the first does not download again.

    python tests/debian_symbols.py 6.1 6.12      # prints the path of each cached System.map
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


class Unavailable(Exception):
    """The System.map cannot be had on this machine (no linux-source-V, no apt, no package)."""


def cache_root() -> Path:
    chosen = os.environ.get("KSRCGRAPH_SYMBOLS_CACHE")
    if chosen:
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ksrcgraph" / "symbols"


def _run(*cmd: str, cwd: str | None = None) -> str:
    try:
        got = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"{' '.join(cmd)}: {e}") from e
    if got.returncode:
        raise Unavailable(f"{' '.join(cmd)}: {got.stderr.strip()[-300:]}")
    return got.stdout


def source_version(version: str) -> str:
    """The Debian version of the installed linux-source-<version> (``6.1.192-3``)."""
    out = _run("dpkg-query", "-W", "-f", "${Version}", f"linux-source-{version}").strip()
    if not out:
        raise Unavailable(f"linux-source-{version} is not installed")
    return out


def dbg_package(version: str) -> str:
    """The name of the amd64 -dbg image package built from the same source version."""
    want = source_version(version)
    pattern = rf"^linux-image-{re.escape(version)}[.0-9]*[-+][-+a-z0-9.]*-amd64-dbg$"
    names = sorted(ln.split(" ", 1)[0] for ln in _run("apt-cache", "search", "--names-only", pattern).splitlines())
    names = [n for n in names if not re.search(r"-(cloud|rt)-amd64", n)]
    for name in reversed(names):  # newest ABI first
        show = _run("apt-cache", "show", "--no-all-versions", name)
        if re.search(rf"^Version: {re.escape(want)}$", show, re.M):
            return name
    raise Unavailable(f"no linux-image-*-amd64-dbg package of version {want} (linux-source-{version}) in apt's lists")


def _data_member(deb: Path):  # type: ignore[no-untyped-def]
    """(file object positioned at data.tar.*, its name) inside the ar archive of a .deb."""
    f = deb.open("rb")
    if f.read(8) != b"!<arch>\n":
        raise Unavailable(f"{deb} is not a Debian package")
    while True:
        head = f.read(60)
        if len(head) < 60:
            raise Unavailable(f"{deb} has no data archive")
        name, size = head[:16].decode().strip().rstrip("/"), int(head[48:58].decode().strip())
        if name.startswith("data.tar"):
            return f, name
        f.seek(size + (size & 1), 1)


def extract_system_map(deb: Path, dest: Path) -> Path:
    """Stream deb's data archive up to ``boot/System.map-*`` and write it to dest (xz). Packages
    without one (7.x: the map is gone) give their ``vmlinux`` instead, whose symbols ``nm -n`` lists
    as scripts/mksysmap does."""
    f, name = _data_member(deb)
    tmp = dest.with_suffix(".part")
    with f, tarfile.open(fileobj=f, mode="r|xz" if name.endswith(".xz") else "r|*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            if re.search(r"boot/System\.map-", member.name):
                with lzma.open(tmp, "wb") as out:
                    shutil.copyfileobj(tar.extractfile(member), out)  # type: ignore[arg-type]
                tmp.replace(dest)
                return dest
            if re.search(r"/vmlinux(-[^/]*)?$", member.name):
                return _map_of_vmlinux(tar, member, dest)
    raise Unavailable(f"{deb} holds neither boot/System.map-* nor a vmlinux")


def _map_of_vmlinux(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> Path:
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".vmlinux-") as elf:
        shutil.copyfileobj(tar.extractfile(member), elf)  # type: ignore[arg-type]
        elf.flush()
        text = _run("nm", "-n", elf.name)
    lines = [ln for ln in text.splitlines() if ln[:1] != " " and not re.search(r" [aNU] |__crc_| \.L", ln)]
    tmp = dest.with_suffix(".part")
    with lzma.open(tmp, "wt", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    tmp.replace(dest)
    return dest


def system_map(version: str) -> Path:
    """The cached System.map (xz) of Debian's amd64 build of linux-source-<version>; downloads it
    on first use. Raises Unavailable."""
    want = source_version(version)
    dest = cache_root() / f"System.map-{want}-amd64.xz"
    if dest.is_file():
        return dest
    pkg = dbg_package(version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ksrcgraph-dbg-") as tmp:
        os.chmod(tmp, 0o755)  # apt's sandbox user must be able to write there
        _run("apt-get", "download", pkg, cwd=tmp)
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise Unavailable(f"apt-get download {pkg} left no package")
        return extract_system_map(debs[0], dest)


def read_text(path: Path) -> str:
    """A System.map, plain or xz."""
    if path.suffix == ".xz":
        with lzma.open(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    return path.read_text(encoding="utf-8", errors="replace")


if __name__ == "__main__":
    for v in sys.argv[1:]:
        print(v, system_map(v))

"""Kernel tarballs from kernel.org: the last resort of ``--kernel V``.

In: a version (``6.1``, ``6.1.192``). Out: the path of ``linux-V.tar.xz`` in the cache's
``downloads/``, verified against the sha256 sums published beside it.

``$KSRCGRAPH_MIRROR`` replaces ``https://cdn.kernel.org`` (tests serve a tarball from 127.0.0.1).
The file is written to ``linux-V.tar.xz.part`` and renamed only once its size and checksum are
right; a failed or interrupted download leaves nothing behind. ``$KSRCGRAPH_OFFLINE`` forbids it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from . import cachedir
from .errors import SourceError

DEFAULT_MIRROR = "https://cdn.kernel.org"
TIMEOUT = 60
CHUNK = 1 << 20


def mirror() -> str:
    return os.environ.get("KSRCGRAPH_MIRROR", DEFAULT_MIRROR).rstrip("/")


def urls(version: str) -> tuple[str, str]:
    """(tarball URL, sha256 sums URL) of a version on kernel.org's layout."""
    major = version.split(".")[0]
    base = f"{mirror()}/pub/linux/kernel/v{major}.x"
    return f"{base}/linux-{version}.tar.xz", f"{base}/sha256sums.asc"


def _open(url: str):  # type: ignore[no-untyped-def]
    req = urllib.request.Request(url, headers={"User-Agent": "ksrcgraph"})
    return urllib.request.urlopen(req, timeout=TIMEOUT)  # noqa: S310 - http(s) URLs built above


def _fail(version: str, what: str, hint: str = "") -> SourceError:
    return SourceError(
        f"no sources for kernel {version}: not in the cache, not in /usr/src, and {what}",
        hint or f"install Debian's linux-source-{version} (apt-get install linux-source-{version}), pass --source PATH, "
                "or set KSRCGRAPH_MIRROR to a kernel.org mirror",
    )


def published_sum(version: str) -> str:
    _, sums_url = urls(version)
    name = f"linux-{version}.tar.xz"
    try:
        with _open(sums_url) as r:
            text = r.read(4 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        raise _fail(version, f"{sums_url} answered HTTP {e.code}") from e
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise _fail(version, f"{mirror()} cannot be reached ({getattr(e, 'reason', e)})") from e
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]{64})\s+\*?(\S+)\s*$", line.strip())
        if m and m.group(2) == name:
            return m.group(1)
    raise _fail(version, f"{sums_url} lists no {name}")


def fetch_tarball(version: str, progress=None) -> Path:  # type: ignore[no-untyped-def]
    """Download and verify linux-VERSION.tar.xz into the cache (once)."""
    if os.environ.get("KSRCGRAPH_OFFLINE"):
        raise _fail(version, "KSRCGRAPH_OFFLINE forbids downloading")
    dest_dir = cachedir.cache_dir() / "downloads"
    final = dest_dir / f"linux-{version}.tar.xz"
    if final.is_file():
        return final
    want = published_sum(version)
    url, _ = urls(version)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SourceError(f"cannot create {dest_dir}: {e.strerror}", "set KSRCGRAPH_CACHE_DIR to a writable directory") from e
    part = dest_dir / f"linux-{version}.tar.xz.part-{os.getpid()}"
    h = hashlib.sha256()
    got = 0
    try:
        try:
            with _open(url) as r, open(part, "wb") as out:
                total = int(r.headers.get("Content-Length") or 0)
                while True:
                    chunk = r.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    if progress is not None:
                        progress(f"downloading linux-{version}.tar.xz", got, total or got)
        except urllib.error.HTTPError as e:
            raise _fail(version, f"{url} answered HTTP {e.code}") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise SourceError(f"download of {url} failed after {got} bytes: {getattr(e, 'reason', e)!s}",
                              "try again; nothing was kept") from e
        if total and got != total:
            raise SourceError(f"download of {url} is truncated: {got} of {total} bytes", "try again; nothing was kept")
        if h.hexdigest() != want:
            raise SourceError(f"download of {url} does not match its published sha256 ({h.hexdigest()[:16]}... "
                              f"instead of {want[:16]}...)", "the mirror or the transfer is corrupt; nothing was kept")
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)
    return final

"""Kernel tarballs from kernel.org: the last resort of ``--kernel V``.

In: a version (``6.1``, ``6.1.192``). Out: the path of ``linux-V.tar.xz`` in the cache's
``downloads/``, verified against the sha256 sums published beside it.

``$KSRCGRAPH_MIRROR`` replaces ``https://cdn.kernel.org`` (tests serve a tarball from 127.0.0.1).
The file is written to ``linux-V.tar.xz.part-<pid>`` and renamed only once its size and checksum are
right; a failed, timed-out or interrupted download (an error, Ctrl-C, SIGTERM, SIGHUP) removes it, and
the next download removes those a killed run (kill -9) left. ``$KSRCGRAPH_OFFLINE=1`` forbids it.
Deadlines: a read that stalls for ``TIMEOUT`` (60 s) fails, and a whole download (the sums and the
tarball) that takes longer than ``$KSRCGRAPH_DOWNLOAD_DEADLINE`` seconds (default 3600) is abandoned.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from . import cachedir, env
from .errors import SourceError, Terminated

DEFAULT_MIRROR = "https://cdn.kernel.org"
TIMEOUT = 60
CHUNK = 1 << 20
_NET_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException)


def mirror() -> str:
    return env.url("KSRCGRAPH_MIRROR", DEFAULT_MIRROR).rstrip("/")


def urls(version: str) -> tuple[str, str]:
    """(tarball URL, sha256 sums URL) of a version on kernel.org's layout."""
    major = version.split(".")[0]
    base = f"{mirror()}/pub/linux/kernel/v{major}.x"
    return f"{base}/linux-{version}.tar.xz", f"{base}/sha256sums.asc"


def _open(url: str, deadline: float):  # type: ignore[no-untyped-def]
    req = urllib.request.Request(url, headers={"User-Agent": "ksrcgraph"})
    timeout = max(1.0, min(TIMEOUT, deadline - time.monotonic()))
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - http(s) URLs built above


def _chunks(r, url: str, deadline: float, limit: int | None = None) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    """The body of a response, as it arrives (a trickle is not waited for in 1 MB blocks); SourceError
    once the deadline has passed, or beyond limit bytes."""
    got = 0
    while True:
        if time.monotonic() > deadline:
            raise SourceError(f"download of {url} was abandoned after {got} bytes: it took longer than "
                              f"{env.download_deadline():.0f} s (KSRCGRAPH_DOWNLOAD_DEADLINE); nothing was kept",
                              "try again, use a faster mirror (KSRCGRAPH_MIRROR), or raise KSRCGRAPH_DOWNLOAD_DEADLINE")
        chunk = r.read1(CHUNK)
        if not chunk:
            return
        got += len(chunk)
        if limit is not None and got > limit:
            raise SourceError(f"{url} is larger than {limit} bytes", "check KSRCGRAPH_MIRROR points at a kernel.org mirror")
        yield chunk


def _fail(version: str, what: str, hint: str = "") -> SourceError:
    return SourceError(
        f"no sources for kernel {version}: not in the cache, not in /usr/src, and {what}",
        hint or f"install Debian's linux-source-{version} (apt-get install linux-source-{version}), pass --source PATH, "
                "or set KSRCGRAPH_MIRROR to a kernel.org mirror",
    )


def published_sum(version: str, deadline: float | None = None) -> str:
    _, sums_url = urls(version)
    name = f"linux-{version}.tar.xz"
    deadline = deadline if deadline is not None else time.monotonic() + env.download_deadline()
    try:
        with _open(sums_url, deadline) as r:
            text = b"".join(_chunks(r, sums_url, deadline, 4 << 20)).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        raise _fail(version, f"{sums_url} answered HTTP {e.code}") from e
    except _NET_ERRORS as e:
        raise _fail(version, f"{mirror()} cannot be reached ({getattr(e, 'reason', e)})") from e
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]{64})\s+\*?(\S+)\s*$", line.strip())
        if m and m.group(2) == name:
            return m.group(1)
    raise _fail(version, f"{sums_url} lists no {name}")


def fetch_tarball(version: str, progress=None) -> Path:  # type: ignore[no-untyped-def]
    """Download and verify linux-VERSION.tar.xz into the cache (once)."""
    if env.flag("KSRCGRAPH_OFFLINE"):
        raise _fail(version, "KSRCGRAPH_OFFLINE forbids downloading")
    dest_dir = cachedir.cache_dir() / "downloads"
    final = dest_dir / f"linux-{version}.tar.xz"
    if final.is_file():
        return final
    deadline = time.monotonic() + env.download_deadline()
    want = published_sum(version, deadline)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(dest_dir, final.name)
    except OSError as e:
        raise cachedir.write_error(e, dest_dir) from e
    part = dest_dir / f"{final.name}.part-{os.getpid()}"
    try:
        with _signals_as_errors():
            got = _download(urls(version)[0], part, deadline, version, progress)
        if got != want:
            raise SourceError(f"download of {urls(version)[0]} does not match its published sha256 ({got[:16]}... "
                              f"instead of {want[:16]}...)", "the mirror or the transfer is corrupt; nothing was kept")
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)  # every way out: an error, Ctrl-C, SIGTERM, SIGHUP
    return final


def _download(url: str, part: Path, deadline: float, version: str, progress) -> str:  # type: ignore[no-untyped-def]
    """Write url's body to part; its sha256."""
    h = hashlib.sha256()
    got = total = 0
    try:
        out = open(part, "wb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise cachedir.write_error(e, part.parent) from e
    with out:
        try:
            with _open(url, deadline) as r:
                total = int(r.headers.get("Content-Length") or 0)
                for chunk in _chunks(r, url, deadline):
                    _write(out, chunk, part)
                    h.update(chunk)
                    got += len(chunk)
                    if progress is not None:
                        progress(f"downloading {part.name.split('.part')[0]}", got, total or got)
        except urllib.error.HTTPError as e:
            raise _fail(version, f"{url} answered HTTP {e.code}") from e
        except _NET_ERRORS as e:
            raise SourceError(f"download of {url} failed after {got} bytes: {getattr(e, 'reason', e)!s}",
                              "try again; nothing was kept") from e
    if total and got != total:
        raise SourceError(f"download of {url} is truncated: {got} of {total} bytes", "try again; nothing was kept")
    return h.hexdigest()


def _write(out, chunk: bytes, part: Path) -> None:  # type: ignore[no-untyped-def]
    try:
        out.write(chunk)
    except OSError as e:
        raise cachedir.write_error(e, part.parent) from e


def _remove_stale_parts(dest_dir: Path, name: str) -> None:
    """.part files of runs that no longer exist (killed with SIGKILL, which no handler sees)."""
    for p in dest_dir.glob(f"{name}.part-*"):
        pid = p.name.rpartition("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def _signals_as_errors() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated while downloading, so that the .part file is removed
    (their default action ends the process at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [signal.SIGTERM, signal.SIGHUP]

    def stop(signum, _frame):  # type: ignore[no-untyped-def]
        raise Terminated(signum)

    old = {s: signal.signal(s, stop) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)

"""Shared fixtures.

* ``facts_of(src, path)`` — extract facts from inline C (pycparser-style tests).
* ``program_of({path: src})`` / ``graph_of({path: src})`` — link and resolve a few inline files.
* ``minikernel`` — the call graph of fixtures/minikernel (net, include, fs).
* ``kernel_graph(version, scope)`` — a real kernel tree of the version matrix (``MATRIX``): Debian's
  linux-source-V, or a snapshot in ../shared/kernels for the versions Debian does not package.
  Missing trees skip the test on a developer machine and fail it when KSRCGRAPH_REQUIRE_KERNELS=1 (CI).

Every test session uses its own cache directory, unless KSRCGRAPH_TEST_CACHE names one (kernel
indexes are then reused between sessions).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    chosen = os.environ.get("KSRCGRAPH_TEST_CACHE")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("ksrcgraph-cache")
    os.environ["KSRCGRAPH_CACHE_DIR"] = str(path)
    os.environ["KSRCGRAPH_NO_PROGRESS"] = "1"
    # no test reaches the network: kernel.org is replaced by a port nothing listens on, unless a
    # test serves its own mirror
    os.environ.setdefault("KSRCGRAPH_MIRROR", "http://127.0.0.1:9")


@pytest.fixture
def facts_of():
    from ksrcgraph.extract import extract

    def run(src: str, path: str = "t.c"):
        return extract(path, src.encode())

    return run


def _program(files: dict[str, str]):
    from ksrcgraph.extract import extract
    from ksrcgraph.link import Program

    return Program([extract(p, s.encode()) for p, s in sorted(files.items())])


@pytest.fixture
def program_of():
    return _program


@pytest.fixture
def graph_of():
    from ksrcgraph.extract import extract
    from ksrcgraph.pipeline import from_facts

    def run(files: dict[str, str]):
        facts = [extract(p, s.encode()) for p, s in sorted(files.items())]
        return from_facts(facts, {"label": "inline", "scope": ["net", "include"]})

    return run


@pytest.fixture(scope="session")
def minikernel():
    from ksrcgraph import pipeline

    return pipeline.open_graph(None, str(FIXTURES / "minikernel"), ("net", "include", "fs"))


# Kernel trees of the version matrix that Debian does not package: snapshots of net/, include/ and
# fs/ beside the project (../shared/kernels, see its README). The others are Debian's linux-source-V.
SHARED_KERNELS = Path(os.environ.get("KSRCGRAPH_SHARED_KERNELS", ROOT.parent / "shared" / "kernels"))
SNAPSHOTS = {"2.6.32": "linux-2.6.32.9.tar.xz", "3.10": "linux-3.10.99.tar.xz", "4.9": "linux-4.9.229.tar.xz",
             "5.4": "linux-5.4.214.tar.xz"}
MATRIX = ["2.6.32", "3.10", "4.9", "5.4", "5.10", "6.1", "6.12", "7.2"]


def kernel_source(version: str) -> str | None:
    """The tarball to read for a matrix version (None: Debian's, found by version)."""
    return str(SHARED_KERNELS / SNAPSHOTS[version]) if version in SNAPSHOTS else None


def kernel_available(version: str) -> bool:
    from ksrcgraph import sources

    if version in SNAPSHOTS:
        return (SHARED_KERNELS / SNAPSHOTS[version]).is_file()
    return sources.system_tarball(version) is not None or any(v == version for v, _ in sources.available_versions())


def _install_hint(version: str) -> str:
    if version in SNAPSHOTS:
        return f"{SHARED_KERNELS / SNAPSHOTS[version]} is missing"
    return f"apt-get install linux-source-{version}"


_KERNEL_GRAPHS: dict = {}
_KEEP_GRAPHS = 4  # graphs held at once: the whole matrix would not fit in memory


@pytest.fixture(scope="session")
def kernel_graph():
    from ksrcgraph import pipeline

    def get(version: str, scope: tuple[str, ...] = ("net", "include")):
        if not kernel_available(version):
            if os.environ.get("KSRCGRAPH_REQUIRE_KERNELS"):
                pytest.fail(f"kernel {version} sources are required ({_install_hint(version)})")
            pytest.skip(f"kernel {version} sources not found ({_install_hint(version)})")
        key = (version, scope)
        if key not in _KERNEL_GRAPHS:
            while len(_KERNEL_GRAPHS) >= _KEEP_GRAPHS:  # the oldest goes: a later test reopens it warm
                del _KERNEL_GRAPHS[next(iter(_KERNEL_GRAPHS))]
            _KERNEL_GRAPHS[key] = pipeline.open_graph(version, kernel_source(version), scope)
        return _KERNEL_GRAPHS[key]

    return get


def edges_between(cg, a: str, b: str):
    return cg.edges_between(cg.lookup(a), cg.lookup(b))


def kinds_between(cg, a: str, b: str) -> set[str]:
    return {e.kind for e in edges_between(cg, a, b)}

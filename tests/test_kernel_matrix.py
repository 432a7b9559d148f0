"""The reference chains on every kernel of the version matrix (2.6.32 … 7.2).

Each chain, as that kernel's source has it (tests/data/version_chains.json, written by reading each
tree's C source, not by running ksrcgraph), must be:
 * with its socket: the first path printed, and it resolves on the reference stack;
 * without a socket (``--via`` as the chain says): the first path printed resolves for some socket
   configuration.
Misses that are understood and not fixed yet are listed in KNOWN (expected to fail, strictly: a fix
makes the test fail until the entry goes).
"""

import json

import pytest

from ksrcgraph.refstack.socket_paths import socket_paths

from conftest import MATRIX, ROOT

pytestmark = pytest.mark.kernel

BASE = {c["id"]: c for c in json.loads((ROOT / "tests" / "data" / "reference_chains.json").read_text())["chains"]}
PER_VERSION = json.loads((ROOT / "tests" / "data" / "version_chains.json").read_text())["chains"]

CASES = [(v, cid) for v in MATRIX for cid in sorted(PER_VERSION) if "through" in PER_VERSION[cid].get(v, {})]

# (version, chain id, mode) -> why it fails today
KNOWN: dict[tuple[str, str, str], str] = {}


def chain_for(version: str, cid: str) -> dict:
    return {**BASE[cid], **PER_VERSION[cid][version]}


def names(cg, path) -> list[str]:
    return [cg.name(n) for n in path.nodes]


def run(kernel_graph, version: str, cid: str, socket: bool):
    c = chain_for(version, cid)
    cg = kernel_graph(version, tuple(c["scope"]))
    via = [cg.lookup(c["via"])] if c.get("via") and not socket else None
    res = socket_paths(cg, cg.lookup(c["from"]), cg.lookup(c["to"]), k=5, via=via,
                       socket=c["socket"] if socket else None)
    return c, cg, res


def expect(version: str, cid: str, mode: str) -> None:
    why = KNOWN.get((version, cid, mode))
    if why:
        pytest.xfail(why)


@pytest.mark.parametrize("version,cid", CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_chain_is_the_first_path_for_its_socket(kernel_graph, version, cid):
    c, cg, res = run(kernel_graph, version, cid, socket=True)
    expect(version, cid, "socket")
    assert res.paths, f"no path for {c['socket']}"
    first = names(cg, res.ordered()[0][0])
    assert first == c["through"], f"first path:\n {' > '.join(first)}\nexpected:\n {' > '.join(c['through'])}"
    assert res.ordered()[0][1].resolves


@pytest.mark.parametrize("version,cid", CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_first_path_without_socket_resolves(kernel_graph, version, cid):
    c, cg, res = run(kernel_graph, version, cid, socket=False)
    expect(version, cid, "any")
    assert res.paths, "no path"
    path, replay, configs = res.ordered()[0]
    assert configs and replay.resolves, f"first path realised by no configuration: {' > '.join(names(cg, path))}"

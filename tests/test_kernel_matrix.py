"""The reference chains on every kernel of the version matrix (2.6.32 … 7.2).

Each chain, as that kernel's source has it (tests/data/version_chains.json, written by reading each
tree's C source, not by running ksrcgraph), must be:
 * with its socket: the first path printed, and it resolves on the reference stack;
 * without a socket (``--via`` as the chain says): the first path printed resolves for some socket
   configuration.
Misses that are understood and not fixed yet are listed in KNOWN (expected to fail, strictly: a fix
makes the test fail until the entry goes). A tree that is missing skips (fails in CI, see conftest).
"""

import json

import pytest

from ksrcgraph.refstack.socket_paths import socket_paths

from conftest import MATRIX, ROOT

pytestmark = pytest.mark.kernel

BASE = {c["id"]: c for c in json.loads((ROOT / "tests" / "data" / "reference_chains.json").read_text())["chains"]}
PER_VERSION = json.loads((ROOT / "tests" / "data" / "version_chains.json").read_text())["chains"]

CASES = [(v, cid) for v in MATRIX for cid in sorted(PER_VERSION) if "through" in PER_VERSION[cid].get(v, {})]

# (version, chain id, mode) -> why it fails today (mode "socket": the chain is not the first path for its
# socket, though it is found and resolves; each checked against the source)
_SOCKETPAIR = ("socketcall's SYS_SOCKETPAIR case creates inet sockets too (__sys_socketpair -> sock_create -> "
               "inet_create, one call shorter than SYS_SOCKET's __sys_socket -> __sys_socket_create): the seed's "
               "SYS_SOCKET chain is the second path")
_DEVPRIVATE = ("sock_ioctl calls dev_ioctl itself for the SIOCDEVPRIVATE range (one call shorter than the default "
               "case's sock_do_ioctl -> dev_ioctl); nothing in the source marks either branch as the rare one")
KNOWN: dict[tuple[str, str, str], str] = {
    ("2.6.32", "udp-sendto-to-device", "socket"): (
        "ip_finish_output2's else-branch dst->neighbour->output(skb) reaches dev_queue_xmit one call sooner than "
        "the cached header's neigh_hh_output -> hh->hh_output; neither branch of if (dst->hh) is marked rare"),
    ("3.10", "ioctl-on-socket", "socket"): _DEVPRIVATE,
    ("4.9", "ioctl-on-socket", "socket"): _DEVPRIVATE,
    ("6.1", "socketcall-multiplexer", "socket"): _SOCKETPAIR,
    ("6.12", "socketcall-multiplexer", "socket"): _SOCKETPAIR,
    ("7.2", "socketcall-multiplexer", "socket"): _SOCKETPAIR,
}


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


def expect(request, version: str, cid: str, mode: str) -> None:
    """A known miss is expected to fail, strictly: once it passes, its KNOWN entry must go."""
    why = KNOWN.get((version, cid, mode))
    if why:
        request.applymarker(pytest.mark.xfail(reason=why, strict=True))


@pytest.mark.parametrize("version,cid", CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_chain_is_the_first_path_for_its_socket(request, kernel_graph, version, cid):
    expect(request, version, cid, "socket")
    c, cg, res = run(kernel_graph, version, cid, socket=True)
    assert res.paths, f"no path for {c['socket']}"
    first = names(cg, res.ordered()[0][0])
    assert first == c["through"], f"first path:\n {' > '.join(first)}\nexpected:\n {' > '.join(c['through'])}"
    assert res.ordered()[0][1].resolves


@pytest.mark.parametrize("version,cid", CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_first_path_without_socket_resolves(request, kernel_graph, version, cid):
    expect(request, version, cid, "any")
    c, cg, res = run(kernel_graph, version, cid, socket=False)
    assert res.paths, "no path"
    path, replay, configs = res.ordered()[0]
    assert configs and replay.resolves, f"first path realised by no configuration: {' > '.join(names(cg, path))}"

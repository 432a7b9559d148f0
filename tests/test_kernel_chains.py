"""The seeds' chains (tests/data/reference_chains.json, the project's own test data, written from the
hand traces of the socket paths) on real Debian kernels 6.1 and 6.12:
``path FROM TO --scope ... --via VIA`` lists, among its first 5 paths, one that contains the chain's
``through`` functions in order, with evidence on every indirect hop."""

import json
import re
import subprocess
import sys

import pytest

from ksrcgraph import query

from conftest import ROOT

REF = ROOT / "tests" / "data" / "reference_chains.json"

pytestmark = pytest.mark.kernel


def load_chains():
    return json.loads(REF.read_text())["chains"]


CHAINS = load_chains()
KERNELS = ["6.1", "6.12"]


def contains_in_order(seq, want):
    it = iter(seq)
    return all(any(x == w for x in it) for w in want)


def first_with(cg, paths, through):
    """Rank of the first path passing through these functions in order, or None."""
    return next((i for i, p in enumerate(paths) if contains_in_order([cg.name(n) for n in p.nodes], through)), None)


def matching_path(cg, chain):
    s, t = cg.lookup(chain["from"]), cg.lookup(chain["to"])
    via = [cg.lookup(chain["via"])] if chain.get("via") else []
    paths = query.find_paths(cg, s, t, k=5, via=via)
    i = first_with(cg, paths, chain["through"])
    return (i, paths[i]) if i is not None else (None, paths)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("chain", CHAINS, ids=[c["id"] for c in CHAINS])
def test_chain_among_first_five_paths(kernel_graph, kernel, chain):
    cg = kernel_graph(kernel, tuple(chain["scope"]))
    rank, p = matching_path(cg, chain)
    assert rank is not None, "not found; got:\n" + "\n".join(" > ".join(cg.name(n) for n in x.nodes) for x in p)
    for hop in p.hops:
        for e in hop:
            if e.kind != "direct":
                assert e.evidence, f"{e.src} -> {e.dst} [{e.kind}] has no evidence"
    names = [cg.name(n) for n in p.nodes]
    for pair, what in chain.get("indirect_hops", {}).items():
        a, _, b = (x.strip() for x in pair.partition("->"))
        if not a or a not in names or b not in names or names.index(b) != names.index(a) + 1:
            continue  # the chain's own notation; hops between may differ by version
        hop = p.hops[names.index(a)]
        told = " ".join(str(x) for e in hop for s in e.evidence for x in s)
        # the table, file or function the seed names for this hop appears in the evidence
        keys = [w for w in re.findall(r"[A-Za-z_][\w./]*", what) if "_" in w or "/" in w]
        assert any(k in told for k in keys), f"{pair}: expected one of {keys} in {told[:400]}"


@pytest.mark.parametrize("kernel", KERNELS)
def test_headline_command(kernel_graph, kernel):
    kernel_graph(kernel)  # skips or fails when the tree is missing; indexes into the shared cache
    r = subprocess.run([sys.executable, "-m", "ksrcgraph", "path", "sendto", "dev_queue_xmit", "--kernel", kernel,
                        "--via", "udp_sendmsg", "-q"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # the callee expression is shown as written (6.12 wraps some in READ_ONCE)
    assert re.search(r"sock->ops\)?->sendmsg → inet_sendmsg via .*inet_dgram_ops \(net/ipv4/af_inet.c:\d+\)", out)
    assert re.search(r"sk->sk_prot->sendmsg → udp_sendmsg via udp_prot \(net/ipv4/udp.c:\d+\)", out)
    assert re.search(r"skb_dst\(skb\)->output\)? → ip_output: rt->dst.output = ip_output \(net/ipv4/route.c:\d+\)", out)
    assert re.search(r"ip_finish_output passed as okfn to NF_HOOK_COND, which calls it \(include/linux/netfilter.h:\d+\)",
                     out)

"""Ground truth: fixtures/minikernel, compiled with -finstrument-functions and run for several
socket configurations, records the caller→callee edges it executes; every one of them must be in
ksrcgraph's graph of the same sources (a self-check that depends on nobody's reading of C)."""

import pytest
from groundtruth import have_gcc, run_minikernel

CONFIGS = ["inet:dgram:udp", "inet:stream:tcp", "inet:dgram:icmp", "inet:raw:udp", "unix:stream", "unix:dgram",
           "packet:raw", "write:inet:dgram:udp", "socketcall:inet:dgram:udp"]

pytestmark = pytest.mark.skipif(not have_gcc(), reason="needs gcc and nm")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    return run_minikernel(tmp_path_factory.mktemp("mk"), CONFIGS, ["dev_queue_xmit", "udp_queue_rcv_one_skb"])


def test_every_executed_edge_is_in_the_graph(executed, minikernel):
    edges, _ = executed
    cg = minikernel
    have = {(cg.name(e[0]), cg.name(e[1])) for e in cg.lg.edges}
    ran = set().union(*edges.values())
    assert len(ran) > 150
    missing = sorted(ran - have)
    assert missing == [], f"executed but not in the graph: {missing}"
    for conf in CONFIGS:
        assert edges[conf], f"{conf} executed nothing"


def test_executed_sends_reach_the_device(executed):
    _, stacks = executed
    for conf in ("inet:dgram:udp", "inet:stream:tcp", "inet:dgram:icmp", "inet:raw:udp", "packet:raw"):
        assert any(s[-1] == "dev_queue_xmit" for s in stacks[conf]), conf
    udp = next(s for s in stacks["inet:dgram:udp"] if s[-1] == "dev_queue_xmit" and "neigh_hh_output" in s)
    assert udp[:6] == ["sys_sendto", "__sys_sendto", "__sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg",
                       "udp_sendmsg"]

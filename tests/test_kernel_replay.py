"""The reference stack on Debian 6.1 and 6.12: every chain of tests/data/reference_chains.json is
found for its socket among the first 5 paths, replay confirms it, and its indirect hops name the
tables the seeds name; a wrong socket does not confirm it; without --socket, paths group by the
configurations that realise them."""

import re

import pytest

from ksrcgraph.refstack.model import Model
from ksrcgraph.refstack.socket_paths import socket_paths

from test_kernel_chains import CHAINS, KERNELS, first_with

pytestmark = pytest.mark.kernel

# a configuration that must not realise the chain (None: the chain is the same for every socket)
WRONG = {"socket-create-inet": "unix:stream", "socketcall-multiplexer": "unix:stream",
         "tcp-connect": "inet:dgram:udp", "ioctl-on-socket": None}


def find(cg, chain, socket):
    res = socket_paths(cg, cg.lookup(chain["from"]), cg.lookup(chain["to"]), k=5, socket=socket)
    return res, first_with(cg, res.paths, chain["through"])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("chain", CHAINS, ids=[c["id"] for c in CHAINS])
def test_chain_confirmed_for_its_socket(kernel_graph, kernel, chain):
    cg = kernel_graph(kernel, tuple(chain["scope"]))
    res, i = find(cg, chain, chain["socket"])
    assert i is not None, "\n".join(" > ".join(cg.name(n) for n in p.nodes) for p in res.paths)
    p, r = res.paths[i], res.replays[i]
    assert r.resolves
    names = [cg.name(n) for n in p.nodes]
    for pair, what in chain.get("indirect_hops", {}).items():
        a, _, b = (x.strip() for x in pair.partition("->"))
        if b not in names or (a and (a not in names or names.index(b) != names.index(a) + 1)):
            continue  # the seed's notation skips a hop this kernel has (e.g. __napi_poll)
        j = names.index(b) - 1
        hop = r.hops[j]
        assert hop.verdict == "confirmed", (pair, hop)
        told = hop.state + " " + " ".join(f"{e.text} {' '.join(str(x) for s in e.evidence for x in s)}"
                                          for e in p.hops[j])
        keys = [w for w in re.findall(r"[A-Za-z_][\w./]*", what) if "_" in w or "/" in w]
        assert any(k in told for k in keys), f"{pair}: none of {keys} in: {told[:500]}"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("chain", CHAINS, ids=[c["id"] for c in CHAINS])
def test_wrong_socket_does_not_confirm_chain(kernel_graph, kernel, chain):
    wrong = WRONG.get(chain["id"], "inet:stream:tcp")
    if wrong is None or wrong == chain["socket"]:
        pytest.skip("the chain does not depend on the socket")
    cg = kernel_graph(kernel, tuple(chain["scope"]))
    res, i = find(cg, chain, wrong)
    assert i is None, f"{wrong} confirms " + " > ".join(cg.name(n) for n in res.paths[i].nodes)


@pytest.mark.parametrize("kernel", KERNELS)
def test_sendto_grouped_by_configuration(kernel_graph, kernel):
    cg = kernel_graph(kernel)
    res = socket_paths(cg, cg.lookup("sendto"), cg.lookup("dev_queue_xmit"), k=5)
    realised = {}
    for label, idxs in res.groups():
        for conf in filter(None, (c.strip() for c in label.split(","))):
            realised[conf] = [res.replays[i] for i in idxs]
    for conf in ("inet:dgram:udp", "inet:stream:tcp", "inet:dgram:icmp", "inet:raw", "packet:raw",
                 "inet6:dgram:udp", "inet6:stream:tcp"):
        assert conf in realised, sorted(realised)
        assert all(r.resolves for r in realised[conf])
    udp = next(res.paths[i] for label, idxs in res.groups() if "inet:dgram:udp" in label.split(", ") for i in idxs)
    assert "udp_sendmsg" in [cg.name(n) for n in udp.nodes]


@pytest.mark.parametrize("kernel", KERNELS)
def test_sockets_table_matches_the_source(kernel_graph, kernel):
    cg = kernel_graph(kernel)
    m = Model(cg)
    got = {str(c): (m.state(c).create, [Model.label(x) for x in m.state(c).ops],
                    [Model.label(x) for x in m.state(c).prot]) for c in m.configs()}
    inet = ["net/ipv4/af_inet.c::inet_create"]
    inet6 = ["net/ipv6/af_inet6.c::inet6_create"]
    assert got["inet:stream:tcp"] == (inet, ["inet_stream_ops"], ["tcp_prot"])
    assert got["inet:dgram:udp"] == (inet, ["inet_dgram_ops"], ["udp_prot"])
    assert got["inet:dgram:icmp"] == (inet, ["inet_sockraw_ops"], ["ping_prot"])
    assert got["inet:raw"] == (inet, ["inet_sockraw_ops"], ["raw_prot"])
    assert got["inet6:stream:tcp"] == (inet6, ["inet6_stream_ops"], ["tcpv6_prot"])
    assert got["inet6:dgram:udp"] == (inet6, ["inet6_dgram_ops"], ["udpv6_prot"])
    assert got["unix:stream"][1:] == (["unix_stream_ops"], ["unix_stream_proto"])
    assert got["unix:dgram"][1:] == (["unix_dgram_ops"], ["unix_dgram_proto"])
    assert got["packet:raw"][1:] == (["packet_ops"], ["packet_proto"])
    assert got["packet:packet"][1:] == (["packet_ops_spkt"], ["packet_proto"])
    assert got["netlink:raw"][1:] == (["netlink_ops"], ["netlink_proto"])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("socket", ["unix:stream", "unix:dgram"])
def test_socket_callbacks_set_by_the_create_path(kernel_graph, kernel, socket):
    # unix_*_sendmsg wakes the peer through other->sk_data_ready, which sock_init_data (reached from
    # unix_create through unix_create1) sets to sock_def_readable
    cg = kernel_graph(kernel)
    res = socket_paths(cg, cg.lookup("sendto"), cg.lookup("sock_def_readable"), k=1, socket=socket)
    assert res.paths, f"no path for {socket}"
    r = res.replays[0]
    assert r.resolves
    assert any(h.verdict == "confirmed" and h.slot == "sock.sk_data_ready" and "set while creating" in h.state
               for h in r.hops), [(h.verdict, h.slot, h.state) for h in r.hops]


@pytest.mark.parametrize("kernel", KERNELS)
def test_dst_of_an_ipv4_send_is_ipv4s_on_an_ipv6_socket(kernel_graph, kernel):
    # an inet6 UDP socket sending to an IPv4-mapped address goes through udp_sendmsg and IPv4's route
    # code: its dst->output is ip_output, never ip6_output
    cg = kernel_graph(kernel)
    res = socket_paths(cg, cg.lookup("sendto"), cg.lookup("dev_queue_xmit"), k=5, via=[cg.lookup("udp_sendmsg")],
                       socket="inet6:dgram:udp")
    assert res.paths
    after_dst = {cg.name(p.nodes[p.nodes.index("dst_output") + 1]) for p in res.paths if "dst_output" in p.nodes}
    assert "ip_output" in after_dst and "ip6_output" not in after_dst, after_dst

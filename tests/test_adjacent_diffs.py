"""``diff`` between ADJACENT kernels of the version matrix, checked against the C sources.

For each adjacent pair (2.6.32 → 3.10, …, 6.12 → 7.2) and four chains, each with its socket (UDP
send, TCP connect, socket create, UDP receive in softirq), the changes ``diff`` reports must be
exactly those verified as real by reading both trees (each one's file:line in both versions is in
the audit notes, /tmp/notes/adjacent_diffs.md when it was written; the comment beside each entry
says what changed). A change is described compactly: "kind function" ("renamed old → new";
"condition changed f (call)" for the #if around the call into f; "resolution changed caller → f").

Cases where ``diff`` reports a change that is not one (a false alarm), or misses one, are listed in
KNOWN_FALSE_ALARMS and expected to fail, strictly: a fix makes the test fail until the entry goes.
The expected set of such a case is still the verified one (what a correct diff would report).

The UDP receive chain ends in udp_queue_rcv_one_skb from 5.4 on; it does not exist before 5.4
(version_chains.json names udp_queue_rcv_skb for 2.6.32, 3.10 and 4.9), so pairs involving those
versions diff net_rx_action → udp_queue_rcv_skb, which exists in both versions of each pair.
"""

import re

import pytest

from ksrcgraph.cli.queries import PathQuery, compare_sockets

from conftest import MATRIX

pytestmark = pytest.mark.kernel

SCOPE = ("net", "include")  # the scope of all four chains (reference_chains.json)
_OLD = ("2.6.32", "3.10", "4.9")


def _rx_target(a: str, b: str) -> str:
    return "udp_queue_rcv_skb" if a in _OLD or b in _OLD else "udp_queue_rcv_one_skb"


CHAINS = {
    "udp-send": lambda a, b: PathQuery("sendto", "dev_queue_xmit", socket="inet:dgram:udp"),
    "tcp-connect": lambda a, b: PathQuery("connect", "ip_route_connect", socket="inet:stream:tcp"),
    "socket-create": lambda a, b: PathQuery("socket", "inet_create", socket="inet:stream:tcp"),
    "udp-receive": lambda a, b: PathQuery("net_rx_action", _rx_target(a, b), socket="inet:dgram:udp"),
}
PAIRS = list(zip(MATRIX, MATRIX[1:]))

# (A, B, chain) -> the changes verified as real in the sources (see the audit notes)
EXPECTED: dict[tuple[str, str, str], set[str]] = {
    # 2.6.32 -> 3.10
    ("2.6.32", "3.10", "udp-send"): {
        "added __sock_sendmsg_nosec",  # 3.10 net/socket.c:616, called at :634; 2.6.32 __sock_sendmsg calls sock->ops->sendmsg itself (:577)
        "removed udp_push_pending_frames",  # 2.6.32 udp.c:763 (uncorked send pushes the queue); 3.10: ip_make_skb + udp_send_skb (udp.c:1001)
        "removed ip_push_pending_frames",  # 2.6.32 udp.c:563; 3.10 udp_push_pending_frames calls udp_send_skb (udp.c:814)
        "added udp_send_skb",  # 3.10 udp.c:743 (new)
        "added ip_send_skb",  # 3.10 ip_output.c:1360, called from udp_send_skb udp.c:786 (new)
        "added dst_neigh_output",  # 3.10 include/net/dst.h:393, called at ip_output.c:201 (new)
        "signature changed neigh_hh_output",  # struct hh_cache * (2.6.32 neighbour.h:315) -> const struct hh_cache * (3.10 :338)
    },
    ("2.6.32", "3.10", "tcp-connect"): {
        "added __inet_stream_connect",  # 3.10 af_inet.c:600, called at :693; 2.6.32 af_inet.c:618 calls sk_prot->connect itself
        "signature changed ip_route_connect",  # route.h:147 int (struct rtable **rp, ...) -> route.h:259 struct rtable *(struct flowi4 *, ...)
    },
    ("2.6.32", "3.10", "socket-create"): {
        "signature changed inet_create",  # af_inet.c:281 (net, sock, protocol) -> af_inet.c:275 (..., int kern)
    },
    ("2.6.32", "3.10", "udp-receive"): {
        "removed netif_receive_skb",  # 2.6.32 process_backlog calls netif_receive_skb (dev.c:2721)
        "added __netif_receive_skb",  # 3.10 process_backlog calls __netif_receive_skb (dev.c:4040)
        "added __netif_receive_skb_core",  # 3.10 dev.c:3419, called at :3580/:3583
    },
    # 3.10 -> 4.9
    ("3.10", "4.9", "udp-send"): {
        "removed __sock_sendmsg",  # 3.10 socket.c:629; gone in 4.9
        "removed __sock_sendmsg_nosec",  # 3.10 socket.c:616; gone in 4.9
        "added sock_sendmsg_nosec",  # 4.9 socket.c:626 called by sock_sendmsg at :638 (3.10's namesake at :652 is the sendmmsg helper)
        "signature changed sock_sendmsg",  # size_t size dropped (3.10 socket.c:637 -> 4.9 :633)
        "signature changed inet_sendmsg",  # kiocb dropped (af_inet.c:761 -> :740)
        "signature changed udp_sendmsg",  # kiocb dropped (udp.c:823 -> :874)
        "signature changed ip_local_out",  # (skb) -> (net, sk, skb) (ip_output.c:104 -> :118)
        "signature changed dst_output",  # (skb) -> (net, sk, skb) (dst.h:446 -> :509)
        "signature changed ip_output",  # ip_output.c:298 -> :378
        "signature changed ip_finish_output",  # ip_output.c:222 -> :294
        "signature changed ip_finish_output2",  # ip_output.c:166 -> :185
    },
    ("3.10", "4.9", "tcp-connect"): {
        "signature changed ip_route_connect",  # bool can_sleep dropped (route.h:259 -> :276)
    },
    ("3.10", "4.9", "socket-create"): set(),
    ("3.10", "4.9", "udp-receive"): {
        "added napi_poll",  # 4.9 dev.c:5265, called at :5351; 3.10 net_rx_action calls n->poll itself (dev.c:4202)
        "added udp_unicast_rcv_skb",  # 4.9.229 udp.c:1756, called at :1821/:1832 (backport); absent in 3.10
        "signature changed ip_rcv_finish",  # (skb) -> (net, sk, skb) (ip_input.c:311 -> :317)
        "signature changed ip_local_deliver_finish",  # ip_input.c:189 -> :192
    },
    # 4.9 -> 5.4
    ("4.9", "5.4", "udp-send"): {
        "added __sys_sendto",  # 5.4 socket.c:1910, called at :1953; 4.9 sys_sendto calls sock_sendmsg (socket.c:1669)
        "added __ip_finish_output",  # 5.4 ip_output.c:298, called at :326
        "renamed dst_neigh_output → neigh_output",  # 4.9 dst.h:452 dst_neigh_output (ip_output.c:231) -> 5.4 neighbour.h:504 neigh_output (ip_output.c:236)
        "moved neigh_output",  # include/net/dst.h -> include/net/neighbour.h
        "signature changed neigh_output",  # (dst, n, skb) -> (n, skb, bool skip_cache)
        "signature changed udp_send_skb",  # struct inet_cork *cork added (udp.c:794 -> :824)
    },
    ("4.9", "5.4", "tcp-connect"): {
        "added __sys_connect",  # 5.4 socket.c:1799, called at :1828; 4.9 sys_connect calls sock->ops->connect (socket.c:1561)
        "signature changed __inet_stream_connect",  # int is_sendmsg added (af_inet.c:575 -> :603)
    },
    ("4.9", "5.4", "socket-create"): {
        "added __sys_socket",  # 5.4 socket.c:1480, called at :1509; 4.9 sys_socket calls sock_create (socket.c:1246)
    },
    ("4.9", "5.4", "udp-receive"): {  # target udp_queue_rcv_skb (udp_queue_rcv_one_skb is new in 5.4)
        "removed __netif_receive_skb_core",  # 4.9 dev.c:4351 delivers; 5.4 __netif_receive_skb_core only returns pt_prev
        "added __netif_receive_skb_one_core",  # 5.4 dev.c:4945, called at :5064/:5067, calls pt_prev->func
        "added ip_protocol_deliver_rcu",  # 5.4 ip_input.c:187, called at :231; 4.9 ip_local_deliver_finish calls ipprot->handler (ip_input.c:220)
    },
    # 5.4 -> 5.10
    ("5.4", "5.10", "udp-send"): {
        "removed sock_sendmsg",  # 5.4 __sys_sendto calls sock_sendmsg (socket.c:1941)
        "added __sock_sendmsg",  # 5.10.223 __sys_sendto calls __sock_sendmsg (socket.c:2005; defined :658, stable backport)
    },
    ("5.4", "5.10", "tcp-connect"): {
        "added __sys_connect_file",  # 5.10 socket.c:1850, called at :1882; 5.4 __sys_connect calls sock->ops->connect (socket.c:1817)
    },
    ("5.4", "5.10", "socket-create"): set(),
    ("5.4", "5.10", "udp-receive"): set(),
    # 5.10 -> 6.1
    ("5.10", "6.1", "udp-send"): {
        "moved dev_queue_xmit",  # net/core/dev.c:4214 -> static inline in include/linux/netdevice.h:3058
    },
    ("5.10", "6.1", "tcp-connect"): {
        "signature changed ip_route_connect",  # u32 tos dropped (route.h:306 -> :309)
    },
    ("5.10", "6.1", "socket-create"): {
        "added __sys_socket_create",  # 6.1 socket.c:1628, called at :1671; 5.10 __sys_socket calls sock_create (socket.c:1528)
    },
    ("5.10", "6.1", "udp-receive"): {
        "added __napi_poll",  # 6.1 dev.c:6633, called at :6714; 5.10 napi_poll calls n->poll (dev.c:6847)
    },
    # 6.1 -> 6.12
    ("6.1", "6.12", "udp-send"): set(),
    ("6.1", "6.12", "tcp-connect"): {
        "signature changed ip_route_connect",  # struct sock *sk -> const struct sock *sk (route.h:309 -> :318)
    },
    ("6.1", "6.12", "socket-create"): set(),
    ("6.1", "6.12", "udp-receive"): {
        "signature changed net_rx_action",  # (struct softirq_action *h) -> (void) (dev.c:6803 -> :7104)
    },
    # 6.12 -> 7.2
    ("6.12", "7.2", "udp-send"): set(),
    ("6.12", "7.2", "tcp-connect"): {
        "signature changed inet_stream_connect",  # struct sockaddr * -> struct sockaddr_unsized * (af_inet.c:742 -> :749)
        "signature changed __inet_stream_connect",  # af_inet.c:624 -> :631
        "signature changed tcp_v4_connect",  # tcp_ipv4.c:216 -> :221
    },
    ("6.12", "7.2", "socket-create"): set(),
    ("6.12", "7.2", "udp-receive"): {
        "removed __udp4_lib_rcv",  # 6.12 udp_rcv calls __udp4_lib_rcv (udp.c:2704); 7.2 has none, udp_rcv calls udp_unicast_rcv_skb (udp.c:2682)
    },
}

# (A, B, chain) -> why diff's report differs from EXPECTED today
KNOWN_FALSE_ALARMS: dict[tuple[str, str, str], str] = {
    ("2.6.32", "3.10", "udp-send"): (
        "2.6.32's first path for inet:dgram:udp leaves ip_finish_output2 through dst->neighbour->output "
        "(ip_output.c:207) instead of the cached-header neigh_hh_output (:205; test_kernel_matrix KNOWN), so diff "
        "reports neigh_hh_output as added though 2.6.32 already calls it (include/net/neighbour.h:315), and misses "
        "its signature change (struct hh_cache * -> const struct hh_cache *)"),
}


def describe(c) -> str:
    """A change as a short, stable string (no line numbers)."""
    if c.kind == "renamed":
        old = c.detail.split(" → ")[0]
        return f"renamed {old} → {c.function}"
    if c.kind == "condition changed":
        return f"condition changed {c.function}" + (" (call)" if c.detail.startswith("the call ") else "")
    if c.kind == "resolution changed":
        return f"resolution changed {c.detail.split(':')[0]}"
    if c.kind in ("added", "removed") and c.detail.startswith("the call "):
        m = re.match(r"the call (\S+) → (\S+)", c.detail)
        return f"{c.kind} call {m.group(1)} → {m.group(2)}" if m else f"{c.kind} {c.function}"
    return f"{c.kind} {c.function}"


CASES = [(a, b, cid) for a, b in PAIRS for cid in CHAINS]


@pytest.mark.parametrize("a,b,cid", CASES, ids=[f"{a}-{b}-{c}" for a, b, c in CASES])
def test_adjacent_diff_reports_the_real_changes(request, kernel_graph, a, b, cid):
    why = KNOWN_FALSE_ALARMS.get((a, b, cid))
    if why:
        request.applymarker(pytest.mark.xfail(reason=why, strict=True))
    ga, gb = kernel_graph(a, SCOPE), kernel_graph(b, SCOPE)
    ds = compare_sockets(ga, gb, CHAINS[cid](a, b))
    assert len(ds) == 1
    got = {describe(c) for c in ds[0].changes}
    assert got == EXPECTED[(a, b, cid)], (
        f"\nreported but not verified: {sorted(got - EXPECTED[(a, b, cid)])}"
        f"\nverified but not reported: {sorted(EXPECTED[(a, b, cid)] - got)}")

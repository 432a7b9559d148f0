"""The reference stack on fixtures/minikernel: configurations read from its tables, replay verdicts,
socket-aware search, the sockets and replay commands."""

import json
import os
import subprocess
import sys

import pytest

from ksrcgraph.errors import UsageError
from ksrcgraph.refstack import replay as R
from ksrcgraph.refstack.model import Config, Model, guard_holds
from ksrcgraph.refstack.socket_paths import socket_paths

from conftest import FIXTURES

MINI = str(FIXTURES / "minikernel")


@pytest.fixture(scope="module")
def model(minikernel):
    return Model(minikernel)


def test_configurations_come_from_the_tables(model):
    rows = {str(c): (model.state(c).ops, model.state(c).prot) for c in model.configs()}
    assert rows == {
        "inet:stream:tcp": (["inet_stream_ops"], ["tcp_prot"]),
        "inet:dgram:udp": (["inet_dgram_ops"], ["udp_prot"]),
        "inet:dgram:icmp": (["net/ipv4/af_inet.c::inet_sockraw_ops"], ["ping_prot"]),
        "inet:raw": (["net/ipv4/af_inet.c::inet_sockraw_ops"], ["raw_prot"]),
        "packet:packet": (["net/packet/af_packet.c::packet_ops_spkt"], ["net/packet/af_packet.c::packet_proto"]),
        "packet:dgram": (["net/packet/af_packet.c::packet_ops"], ["net/packet/af_packet.c::packet_proto"]),
        "packet:raw": (["net/packet/af_packet.c::packet_ops"], ["net/packet/af_packet.c::packet_proto"]),
        "unix:stream": (["net/unix/af_unix.c::unix_stream_ops"], ["net/unix/af_unix.c::unix_proto"]),
        "unix:dgram": (["net/unix/af_unix.c::unix_dgram_ops"], ["net/unix/af_unix.c::unix_proto"]),
    }
    udp = model.state(Config("inet", "dgram", "udp"))
    assert (udp.entry, udp.protocol_tables, udp.ptype_tables) == (
        "net/ipv4/af_inet.c::inetsw_array[1]", ["net/ipv4/af_inet.c::udp_protocol"],
        ["net/ipv4/af_inet.c::ip_packet_type"])


def test_wildcard_and_refusals(model):
    # inet_create's rules: an omitted protocol takes the first entry of the type...
    assert model.state(Config("inet", "dgram")).prot == ["udp_prot"]
    # ... a raw socket takes the wildcard entry with any protocol
    assert model.state(Config("inet", "raw", "udp")).prot == ["raw_prot"]
    assert "no inet entry for type stream and protocol udp" in model.state(Config("inet", "stream", "udp")).problem
    assert model.state(Config("packet", "stream")).problem.startswith("packet refuses type stream: sock->type != SOCK_DGRAM")
    with pytest.raises(UsageError, match="unknown socket family 'bluetooth'"):
        model.parse("bluetooth:raw")
    with pytest.raises(UsageError, match="cannot be created"):
        model.parse("unix:seqpacket")


@pytest.mark.parametrize("guard, sock_type, holds", [
    (None, "dgram", True),
    (("case", "sock->type", ("SOCK_STREAM",)), "stream", True),
    (("case", "sock->type", ("SOCK_STREAM",)), "dgram", False),
    (("case", "sock->type", ("SOCK_RAW", "SOCK_DGRAM")), "raw", True),
    (("case", "protocol", ("IPPROTO_UDP",)), "dgram", None),
    (("if", "sock->type == SOCK_PACKET", True), "packet", True),
    (("if", "sock->type == SOCK_PACKET", False), "packet", False),
    (("if", "type != SOCK_DGRAM && type != SOCK_RAW", True), "stream", True),
    (("if", "type != SOCK_DGRAM && type != SOCK_RAW", True), "raw", False),
    (("if", "sk->sk_type == SOCK_STREAM || flags", True), "dgram", None),
    (("if", "kern", True), "dgram", None),
])
def test_guards(guard, sock_type, holds):
    assert guard_holds(guard, sock_type) is holds


def test_search_keeps_only_what_the_socket_takes(minikernel, model):
    cg = minikernel
    s, t = cg.lookup("sendto"), cg.lookup("dev_queue_xmit")
    for conf, must in [("inet:dgram:udp", "udp_sendmsg"), ("inet:stream:tcp", "tcp_sendmsg"),
                       ("inet:dgram:icmp", "ping_v4_sendmsg"), ("inet:raw", "raw_sendmsg"),
                       ("packet:raw", "packet_sendmsg"), ("packet:packet", "packet_sendmsg_spkt")]:
        found = R.search(cg, model, model.parse(conf), s, t, k=3)
        assert found, conf
        for p, r in found:
            names = [cg.name(n) for n in p.nodes]
            assert must in names and r.resolves, (conf, names)
    assert R.search(cg, model, model.parse("unix:stream"), s, t, k=3) == []


def test_grouped_by_configuration(minikernel):
    cg = minikernel
    res = socket_paths(cg, cg.lookup("sendto"), cg.lookup("dev_queue_xmit"), k=3)
    groups = {label: [[cg.name(n) for n in res.paths[i].nodes] for i in idxs] for label, idxs in res.groups()}
    assert {"inet:dgram:udp", "inet:stream:tcp", "inet:dgram:icmp", "inet:raw", "packet:packet"} <= \
        {c.strip() for label in groups for c in label.split(",") if label}
    assert any("packet:dgram" in label and "packet:raw" in label for label in groups)
    for label, idxs in res.groups():
        for i in idxs:
            assert res.replays[i].resolves == bool(label)


def run(*args, rc=None):
    r = subprocess.run([sys.executable, "-m", "ksrcgraph", *args], capture_output=True, text=True,
                       env={**os.environ, "KSRCGRAPH_NO_PROGRESS": "1"}, timeout=300)
    assert "Traceback" not in r.stderr
    if rc is not None:
        assert r.returncode == rc, (r.stdout, r.stderr)
    return r


def test_path_socket_json_carries_replay():
    doc = json.loads(run("path", "sendto", "dev_queue_xmit", "--source", MINI, "--socket", "inet:dgram:udp",
                         "--format", "json", rc=0).stdout)
    p = doc["paths"][0]
    assert p["replay"]["socket"] == "inet:dgram:udp" and p["replay"]["resolves"] is True
    verdicts = [h["verdict"] for h in p["replay"]["hops"]]
    assert len(verdicts) == len(p["hops"]) - 1
    assert set(verdicts) == {"direct", "confirmed"}
    inet = next(i for i, h in enumerate(p["hops"]) if h["function"] == "inet_sendmsg")
    assert p["replay"]["hops"][inet - 1]["state"] == "sock->ops = inet_dgram_ops (net/ipv4/af_inet.c:73): .sendmsg = inet_sendmsg"


def test_sockets_command():
    out = run("sockets", "--source", MINI, rc=0).stdout.splitlines()
    assert out[0].split() == ["socket", "create", "proto_ops", "proto"]
    assert out[2].split() == ["inet:dgram:udp", "inet_create", "inet_dgram_ops", "udp_prot"]
    assert "unix:stream" in out[-2]


def test_replay_command_and_broken_hop(tmp_path):
    saved = tmp_path / "p.json"
    saved.write_text(run("path", "sendto", "dev_queue_xmit", "--source", MINI, "--socket", "inet:dgram:udp", "-k", "1",
                         "--format", "json", rc=0).stdout)
    ok = run("replay", str(saved), rc=0)
    assert "socket inet:dgram:udp: resolves" in ok.stdout
    wrong = run("replay", str(saved), "--socket", "inet:stream:tcp", rc=3)
    assert "breaks at hop 5: inet_sendmsg → udp_sendmsg: sk->sk_prot = tcp_prot" in wrong.stdout
    doc = json.loads(saved.read_text())
    doc["paths"][0]["hops"][6]["function"] = "udp_send_skb_renamed"
    doc["paths"][0]["hops"][6]["id"] = "udp_send_skb_renamed"
    saved.write_text(json.dumps(doc))
    broken = json.loads(run("replay", str(saved), "--format", "json", rc=3).stdout)
    assert broken["paths"][0]["breaks_at"] == {"hop": 6, "from": "udp_sendmsg", "to": "udp_send_skb_renamed",
                                               "why": "udp_send_skb_renamed is not defined in this kernel's scope"}


def test_offline_default_runs_on_the_bundled_tree(tmp_path):
    env = {**os.environ, "KSRCGRAPH_NO_PROGRESS": "1", "KSRCGRAPH_SRC_DIRS": str(tmp_path / "none"),
           "KSRCGRAPH_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "ksrcgraph", "path", "sendto", "dev_queue_xmit"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("Note: no kernel sources found locally; running on ksrcgraph's bundled example tree")
    assert "== realised by inet:dgram:udp" in r.stdout and "udp_sendmsg" in r.stdout


def test_default_is_the_newest_local_kernel(tmp_path):
    cache = tmp_path / "cache"
    for v in ("5.10", "6.9", "6.10"):
        d = cache / "trees" / v
        (d / "net").mkdir(parents=True)
        (d / "include").mkdir()
        (d / "net" / "x.c").write_text(f"int only_in_{v.replace('.', '_')}(void) {{ return 0; }}\n")
        (d / ".done-net").write_text("")
        (d / ".done-include").write_text("")
    env = {**os.environ, "KSRCGRAPH_NO_PROGRESS": "1", "KSRCGRAPH_SRC_DIRS": str(tmp_path / "none"),
           "KSRCGRAPH_CACHE_DIR": str(cache)}
    r = subprocess.run([sys.executable, "-m", "ksrcgraph", "callers", "only_in_6_10"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "using kernel 6.10" in r.stderr


CAN_LIKE = {
    "net/can/af_can.c": """
static int can_create(struct net *net, struct socket *sock, int protocol, int kern)
{
	const struct can_proto *cp = can_get_proto(protocol);
	struct sock *sk;

	if (cp->type != sock->type)
		return -EPROTOTYPE;
	sock->ops = cp->ops;
	sk = sk_alloc(net, PF_CAN, GFP_KERNEL, cp->prot, kern);
	return 0;
}

static const struct net_proto_family can_family_ops = {
	.family = PF_CAN,
	.create = can_create,
};

static int can_init(void)
{
	return sock_register(&can_family_ops);
}
""",
    "net/can/raw.c": """
static int raw_sendmsg(struct socket *sock, struct msghdr *msg, size_t size) { return can_send(NULL, 1); }
static const struct proto_ops raw_ops = { .family = PF_CAN, .sendmsg = raw_sendmsg };
static struct proto raw_proto = { .name = "CAN_RAW" };
static const struct can_proto raw_can_proto = {
	.type = SOCK_RAW,
	.protocol = CAN_RAW,
	.ops = &raw_ops,
	.prot = &raw_proto,
};
static int raw_module_init(void) { return can_proto_register(&raw_can_proto); }
""",
    "net/can/bcm.c": """
static int bcm_sendmsg(struct socket *sock, struct msghdr *msg, size_t size) { return 0; }
static const struct proto_ops bcm_ops = { .family = PF_CAN, .sendmsg = bcm_sendmsg };
static struct proto bcm_proto = { .name = "CAN_BCM" };
static const struct can_proto bcm_can_proto = {
	.type = SOCK_DGRAM,
	.protocol = CAN_BCM,
	.ops = &bcm_ops,
	.prot = &bcm_proto,
};
static int bcm_module_init(void) { return can_proto_register(&bcm_can_proto); }
""",
}


def test_second_family_with_a_protocol_table(graph_of):
    # a family other than inet whose create function takes ops and prot from a registered
    # (type, protocol) entry: its protocols are spelled CAN_*, and none of them is a wildcard
    m = Model(graph_of(CAN_LIKE))
    rows = {str(c): (m.state(c).ops, m.state(c).prot) for c in m.configs()}
    assert rows == {"can:raw:raw": (["net/can/raw.c::raw_ops"], ["net/can/raw.c::raw_proto"]),
                    "can:dgram:bcm": (["net/can/bcm.c::bcm_ops"], ["net/can/bcm.c::bcm_proto"])}
    assert m.state(m.parse("can:dgram")).prot == ["net/can/bcm.c::bcm_proto"]
    assert "no can entry for type raw and protocol bcm" in m.state(Config("can", "raw", "bcm")).problem


BT_LIKE = {
    "net/bluetooth/af_bluetooth.c": """
static const struct net_proto_family *bt_proto[BT_MAX_PROTO];

int bt_sock_register(int proto, const struct net_proto_family *ops)
{
	bt_proto[proto] = ops;
	return 0;
}

struct sock *bt_sock_alloc(struct net *net, struct socket *sock, struct proto *prot, int proto, gfp_t prio, int kern)
{
	return sk_alloc(net, PF_BLUETOOTH, prio, prot, kern);
}

static int bt_sock_create(struct net *net, struct socket *sock, int proto, int kern)
{
	return bt_proto[proto]->create(net, sock, proto, kern);
}

static const struct net_proto_family bt_sock_family_ops = {
	.family = PF_BLUETOOTH,
	.create = bt_sock_create,
};

static int bt_init(void)
{
	return sock_register(&bt_sock_family_ops);
}
""",
    "net/bluetooth/l2cap_sock.c": """
static int l2cap_sock_sendmsg(struct socket *sock, struct msghdr *msg, size_t len) { return l2cap_chan_send(); }
static const struct proto_ops l2cap_sock_ops = { .family = PF_BLUETOOTH, .sendmsg = l2cap_sock_sendmsg };
static struct proto l2cap_proto = { .name = "L2CAP" };

static struct sock *l2cap_sock_alloc(struct net *net, struct socket *sock, int proto, gfp_t prio, int kern)
{
	return bt_sock_alloc(net, sock, &l2cap_proto, proto, prio, kern);
}

static int l2cap_sock_create(struct net *net, struct socket *sock, int protocol, int kern)
{
	if (sock->type != SOCK_SEQPACKET && sock->type != SOCK_STREAM)
		return -ESOCKTNOSUPPORT;
	sock->ops = &l2cap_sock_ops;
	l2cap_sock_alloc(net, sock, protocol, GFP_ATOMIC, kern);
	return 0;
}

static const struct net_proto_family l2cap_sock_family_ops = {
	.family = PF_BLUETOOTH,
	.create = l2cap_sock_create,
};

int l2cap_init_sockets(void)
{
	return bt_sock_register(BTPROTO_L2CAP, &l2cap_sock_family_ops);
}
""",
    "net/bluetooth/hci_sock.c": """
static const struct proto_ops hci_sock_ops = { .family = PF_BLUETOOTH };
static struct proto hci_sk_proto = { .name = "HCI" };

static int hci_sock_create(struct net *net, struct socket *sock, int protocol, int kern)
{
	if (sock->type != SOCK_RAW)
		return -ESOCKTNOSUPPORT;
	sock->ops = &hci_sock_ops;
	bt_sock_alloc(net, sock, &hci_sk_proto, protocol, GFP_ATOMIC, kern);
	return 0;
}

static const struct net_proto_family hci_sock_family_ops = {
	.family = PF_BLUETOOTH,
	.create = hci_sock_create,
};

int hci_sock_init(void)
{
	return bt_sock_register(BTPROTO_HCI, &hci_sock_family_ops);
}
""",
}


def test_sub_families_registered_under_a_protocol(graph_of):
    # bt_sock_create hands the socket to the net_proto_family registered for its protocol; the
    # struct proto reaches sk_alloc through a wrapper's parameter (bt_sock_alloc, two levels)
    m = Model(graph_of(BT_LIKE))
    rows = {str(c): (m.state(c).create, m.state(c).ops, m.state(c).prot) for c in m.configs()}
    l2cap = (["net/bluetooth/af_bluetooth.c::bt_sock_create", "net/bluetooth/l2cap_sock.c::l2cap_sock_create"],
             ["net/bluetooth/l2cap_sock.c::l2cap_sock_ops"], ["net/bluetooth/l2cap_sock.c::l2cap_proto"])
    assert rows == {
        "bluetooth:seqpacket:l2cap": l2cap,
        "bluetooth:stream:l2cap": l2cap,
        "bluetooth:raw:hci": (["net/bluetooth/af_bluetooth.c::bt_sock_create", "net/bluetooth/hci_sock.c::hci_sock_create"],
                              ["net/bluetooth/hci_sock.c::hci_sock_ops"], ["net/bluetooth/hci_sock.c::hci_sk_proto"]),
    }
    assert m.state(Config("bluetooth", "raw", "l2cap")).problem.startswith("bluetooth refuses type raw")
    assert m.state(Config("bluetooth", "raw", "sco")).problem == "no bluetooth protocol sco registered"
    assert m.state(Config("bluetooth", "raw")).problem == "bluetooth sockets need a protocol (hci, l2cap)"


MODE_PARAM = {"net/socket.c": """
struct sock { int x; };
int deliver(struct sock *sk) { return 0; }
int recv_nosec(struct sock *sk) { return deliver(sk); }
int recv_sec(struct sock *sk) { return recv_nosec(sk); }
static int do_recv(struct sock *sk, int nosec, struct sock *used)
{
	if (used && sk)
		return recv_nosec(sk);
	return (nosec ? recv_nosec : recv_sec)(sk);
}
int recvmsg(struct sock *sk) { return do_recv(sk, 0, NULL); }
int recvmmsg(struct sock *sk) { return do_recv(sk, 1, sk); }
int recv_any(struct sock *sk, int nosec) { return do_recv(sk, nosec, NULL); }
int sys_recv(struct sock *sk) { return recv_any(sk, 0); }
"""}


def test_a_branch_its_caller_turns_off_is_not_taken(graph_of):
    from ksrcgraph.refstack.replay import branch_not_taken

    cg = graph_of(MODE_PARAM)

    def hop(a, b):
        return cg.edges_between(cg.lookup(a), cg.lookup(b))

    # recvmsg passes nosec = 0 and used = NULL: neither shortcut to recv_nosec can run
    assert branch_not_taken(hop("do_recv", "recv_nosec"), [hop("recvmsg", "do_recv")], "do_recv")
    assert branch_not_taken(hop("do_recv", "recv_sec"), [hop("recvmsg", "do_recv")], "do_recv") is None
    # recvmmsg passes nosec = 1: the shortcut can run there, the other branch cannot
    assert branch_not_taken(hop("do_recv", "recv_nosec"), [hop("recvmmsg", "do_recv")], "do_recv") is None
    assert branch_not_taken(hop("do_recv", "recv_sec"), [hop("recvmmsg", "do_recv")], "do_recv")
    # through a function that passes its own parameter on: sys_recv(…, 0) -> recv_any(…, nosec) -> do_recv
    assert branch_not_taken(hop("do_recv", "recv_nosec"), [hop("recv_any", "do_recv"), hop("sys_recv", "recv_any")],
                            "do_recv")
    assert branch_not_taken(hop("do_recv", "recv_nosec"), [hop("recv_any", "do_recv")], "do_recv") is None


SOCK_TESTS = {"net/core/sock.c": """
struct sock { int sk_type; int sk_family; };
int ipmr_ioctl(struct sock *sk) { return 0; }
int ip6mr_ioctl(struct sock *sk) { return 0; }
int out_ioctl(struct sock *sk) { return 0; }
int any_ioctl(struct sock *sk) { return 0; }
int sk_ioctl(struct sock *sk)
{
	if (sk->sk_type == SOCK_RAW && sk->sk_family == AF_INET)
		return ipmr_ioctl(sk);
	else if (sk->sk_type == SOCK_RAW && sk->sk_family == PF_INET6)
		return ip6mr_ioctl(sk);
	if (sk->sk_family != AF_UNIX)
		any_ioctl(sk);
	return out_ioctl(sk);
}
"""}


def test_a_call_under_a_test_of_the_socket_type_or_family_that_fails_is_ruled_out(graph_of):
    from ksrcgraph.refstack.replay import socket_rules_out

    cg = graph_of(SOCK_TESTS)

    def hop(b):
        return cg.edges_between(cg.lookup("sk_ioctl"), cg.lookup(b))

    assert {e.dst: e.sock for e in cg.all_edges() if e.src == "sk_ioctl"} == {
        "ipmr_ioctl": (("family", "AF_INET", True), ("type", "SOCK_RAW", True)),
        "ip6mr_ioctl": (("family", "AF_INET6", True), ("type", "SOCK_RAW", True)),  # under the else of the first
        "any_ioctl": (("family", "AF_UNIX", False),), "out_ioctl": ()}
    udp, raw, raw6, unix = (Config("inet", "dgram", "udp"), Config("inet", "raw"), Config("inet6", "raw"),
                            Config("unix", "stream"))
    assert "sk_type == SOCK_RAW; this socket's is SOCK_DGRAM" in socket_rules_out(udp, hop("ipmr_ioctl"))
    assert socket_rules_out(raw, hop("ipmr_ioctl")) is None
    assert socket_rules_out(raw, hop("ip6mr_ioctl")) and socket_rules_out(raw6, hop("ip6mr_ioctl")) is None
    assert socket_rules_out(unix, hop("any_ioctl")) and socket_rules_out(udp, hop("any_ioctl")) is None
    assert not any(socket_rules_out(c, hop("out_ioctl")) for c in (udp, raw, raw6, unix))
    # the pairs only such calls connect are known without reading rows (what a socket search removes)
    assert sorted((cg.name(a), cg.name(b)) for a, b, _t in cg.socket_guarded) == [
        ("sk_ioctl", "any_ioctl"), ("sk_ioctl", "ip6mr_ioctl"), ("sk_ioctl", "ipmr_ioctl")]


def test_realised_paths_are_shown_first_and_grouped():
    from ksrcgraph.query import Path
    from ksrcgraph.refstack.socket_paths import _Found, _show_order

    udp, tcp = Config("inet", "dgram", "udp"), Config("inet", "stream", "tcp")
    found = _Found()
    found.add(Path(["a", "x", "b"], 3.0), [])  # the cheapest path: no configuration realises it
    found.add(Path(["a", "u", "b"], 5.0), [udp])
    found.add(Path(["a", "t", "b"], 6.0), [tcp])
    found.add(Path(["a", "u", "v", "b"], 7.0), [udp])
    shown = [p.nodes[1:-1] for p, _cs in _show_order(found, unrealised=False)]
    assert shown == [["u"], ["u", "v"], ["t"]]  # the udp group (cheapest first), then tcp; no unrealised
    shown = [p.nodes[1:-1] for p, _cs in _show_order(found, unrealised=True)]
    assert shown == [["u"], ["u", "v"], ["t"], ["x"]]  # asked for: after every realised one
    only = _Found()
    only.add(Path(["a", "x", "b"], 3.0), [])
    assert [p.nodes for p, _cs in _show_order(only, unrealised=False)] == [["a", "x", "b"]]  # nothing resolves


def test_pointer_stored_by_the_path_itself_is_confirmed(graph_of):
    """No rule models unix_stream_read_state.recv_actor; the path's own unix_stream_recvmsg stored
    the callee there, so the hop is confirmed (and says where)."""
    from ksrcgraph.refstack import replay as R
    from ksrcgraph.refstack.model import Model
    from ksrcgraph.refstack.sockets import Config

    src = """
struct read_state { int (*recv_actor)(int chunk, struct read_state *state); };
static int read_actor(int chunk, struct read_state *state) { return chunk; }
static int read_generic(struct read_state *state) { return state->recv_actor(1, state); }
int stream_recvmsg(int n)
{
	struct read_state state = { .recv_actor = read_actor };
	return read_generic(&state);
}
int elsewhere(struct read_state *s) { return read_generic(s); }
"""
    cg = graph_of({"net/unix/af_unix.c": src})
    m = Model(cg)
    conf = Config("unix", "stream")
    ok = R.replay(cg, m, [cg.lookup(n) for n in ("stream_recvmsg", "read_generic", "read_actor")], conf)
    assert ok.hops[1].verdict == "confirmed"
    assert ok.hops[1].state == "set on this path: state.recv_actor = read_actor (net/unix/af_unix.c:7) in stream_recvmsg"
    other = R.replay(cg, m, [cg.lookup(n) for n in ("elsewhere", "read_generic", "read_actor")], conf)
    assert other.hops[1].verdict == "unmodelled"

"""query: k best paths, --via, --avoid, --max-depth, callers/callees — on fixtures/minikernel."""

from ksrcgraph import query

UDP_CHAIN = ["sys_sendto", "__sys_sendto", "__sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "udp_sendmsg",
             "udp_send_skb", "ip_send_skb", "ip_local_out", "dst_output", "ip_output", "ip_finish_output",
             "__ip_finish_output", "ip_finish_output2", "neigh_output", "neigh_hh_output", "dev_queue_xmit"]


def names(cg, p):
    return [cg.name(n) for n in p.nodes]


def contains_in_order(seq, want):
    it = iter(seq)
    return all(any(x == w for x in it) for w in want)


def test_udp_chain_is_found_with_its_evidence(minikernel):
    cg = minikernel
    paths = query.find_paths(cg, cg.lookup("sendto"), cg.lookup("dev_queue_xmit"), k=5, via=[cg.lookup("udp_sendmsg")])
    assert paths, "no path"
    best = [p for p in paths if names(cg, p) == UDP_CHAIN]
    assert best, [names(cg, p) for p in paths]
    p = best[0]
    kinds = [sorted({e.kind for e in hop}) for hop in p.hops]
    assert kinds[3] == ["indirect_candidate", "ops"]  # sock_sendmsg_nosec -> inet_sendmsg
    assert kinds[4] == ["indirect_candidate", "ops"]  # inet_sendmsg -> udp_sendmsg
    assert kinds[9] == ["assign", "indirect_candidate"]  # dst_output -> ip_output
    assert kinds[10] == ["param"]  # ip_output -> ip_finish_output (okfn of NF_HOOK_COND)


def test_paths_are_ranked_distinct_and_deterministic(minikernel):
    cg = minikernel
    a = query.find_paths(cg, cg.lookup("sendto"), cg.lookup("dev_queue_xmit"), k=8)
    b = query.find_paths(cg, cg.lookup("sendto"), cg.lookup("dev_queue_xmit"), k=8)
    assert [p.nodes for p in a] == [p.nodes for p in b]
    assert len({tuple(p.nodes) for p in a}) == len(a)
    costs = [p.cost for p in a]
    assert costs == sorted(costs)
    for p in a:
        assert len(set(p.nodes)) == len(p.nodes)  # simple paths


def test_via_avoid_and_max_depth(minikernel):
    cg = minikernel
    s, t = cg.lookup("sendto"), cg.lookup("dev_queue_xmit")
    via = query.find_paths(cg, s, t, k=5, via=[cg.lookup("ping_v4_sendmsg")])
    assert via and all("ping_v4_sendmsg" in names(cg, p) for p in via)
    avoid = query.find_paths(cg, s, t, k=5, avoid=[cg.lookup("udp_sendmsg")])
    assert avoid and all("udp_sendmsg" not in names(cg, p) for p in avoid)
    assert query.find_paths(cg, s, t, k=5, max_depth=3) == []
    short = query.find_paths(cg, s, t, k=50, max_depth=12)
    assert short and all(p.length <= 12 for p in short)


def test_no_path_is_an_empty_result(minikernel):
    cg = minikernel
    assert query.find_paths(cg, cg.lookup("dev_queue_xmit"), cg.lookup("sendto")) == []


def test_callers_and_callees(minikernel):
    cg = minikernel
    callers = query.walk(cg, cg.lookup("dev_queue_xmit"), 1, "in")
    assert {cg.name(i.node) for i in callers[1:]} >= {"neigh_hh_output", "neigh_direct_xmit", "packet_sendmsg"}
    callees = query.walk(cg, cg.lookup("inet_create"), 1, "out")
    got = {cg.name(i.node): {e.kind for e in i.edges} for i in callees[1:]}
    assert got["sk_alloc"] == {"direct"}
    assert "udp_init_sock" in got and got["udp_init_sock"] == {"ops"}
    two = query.walk(cg, cg.lookup("dev_queue_xmit"), 2, "in")
    assert max(i.depth for i in two) == 2


def test_send_is_sendto_and_socketcall(minikernel):
    cg = minikernel
    p = query.find_paths(cg, cg.lookup("send"), cg.lookup("udp_sendmsg"), k=3)
    assert contains_in_order(names(cg, p[0]), ["sys_send", "__sys_sendto", "inet_sendmsg", "udp_sendmsg"])
    p = query.find_paths(cg, cg.lookup("socketcall"), cg.lookup("inet_create"), k=3)
    assert contains_in_order(names(cg, p[0]), ["sys_socketcall", "__sys_socket", "sock_create", "__sock_create",
                                              "inet_create"])
    (e,) = [e for e in p[0].hops[-1] if e.kind == "ops"]
    assert e.evidence[0][1] == "inet_family_ops" and e.text == "pf->create"


def test_receive_path_through_napi_packet_type_and_protocol_table(minikernel):
    cg = minikernel
    paths = query.find_paths(cg, cg.lookup("net_rx_action"), cg.lookup("udp_queue_rcv_one_skb"), k=5)
    want = ["net_rx_action", "napi_poll", "process_backlog", "__netif_receive_skb", "__netif_receive_skb_one_core",
            "ip_rcv", "ip_rcv_finish", "dst_input", "ip_local_deliver", "ip_local_deliver_finish",
            "ip_protocol_deliver_rcu", "udp_rcv", "__udp4_lib_rcv", "udp_unicast_rcv_skb", "udp_queue_rcv_skb",
            "udp_queue_rcv_one_skb"]
    assert any(names(cg, p) == want for p in paths), [names(cg, p) for p in paths]


RARE_BRANCHES = {"net/core/rare.c": """
#define RTCF_MULTICAST 0x20000000
#define unlikely(x) (x)
#define likely(x) (x)
struct skb { int flags; int (*output)(struct skb *); };
int deliver(struct skb *skb) { return 0; }
int mcast_deliver(struct skb *skb) { return deliver(skb); }
int slowpath(struct skb *skb) { return deliver(skb); }
int unicast(struct skb *skb) { return lookup(skb); }
int lookup(struct skb *skb) { return deliver(skb); }
int push(struct skb *skb) { return deliver(skb); }
int ack(struct skb *skb) { return deliver(skb); }
int probe(struct skb *skb)
{
	if (likely(!skb->flags))
		return -1;
	if (!unlikely(skb->flags == 2))
		push(skb);
	return deliver(skb);
}
int rcv(struct skb *skb)
{
	if (!(skb->flags & RTCF_MULTICAST))
		push(skb);
	if ((skb->flags & RTCF_MULTICAST) && skb->flags > 4)
		ack(skb);
	if (skb->flags & RTCF_MULTICAST)
		return mcast_deliver(skb);
	if (unlikely(skb->flags == 3))
		return slowpath(skb);
	return unicast(skb);
}
int conn(struct skb *skb)
{
	int err;
	if (skb->flags == 5) {
		err = mcast_deliver(skb);
		goto out;
	}
	if (skb->flags == 9)
		goto reset;
	err = unicast(skb);
out:
	return err;
reset:
	return slowpath(skb);
}
int out_main(struct skb *skb) { return deliver(skb); }
int out_mc(struct skb *skb) { return deliver(skb); }
void route(struct skb *skb, int flags)
{
	skb->output = out_main;
	if (flags & RTCF_MULTICAST)
		skb->output = out_mc;
}
int xmit(struct skb *skb) { return skb->output(skb); }
"""}


TIES = {"net/core/tie.c": """
struct skb { int flags; };
int deliver(struct skb *skb) { return 0; }
int aa_special(struct skb *skb) { return deliver(skb); }
int main_line(struct skb *skb) { return deliver(skb); }
int rx(struct skb *skb)
{
	if (skb->flags == 1)
		return aa_special(skb);
	return main_line(skb);
}
int a_case(struct skb *skb) { return deliver(skb); }
int b_case(struct skb *skb) { return deliver(skb); }
int demux(struct skb *skb)
{
	switch (skb->flags) {
	case 1:
		return a_case(skb);
	case 2:
		return b_case(skb);
	}
	return 0;
}
"""}


def test_ties_go_to_the_later_call_but_not_between_switch_cases(graph_of):
    # paths of one cost and length part at a caller: its later call first (special cases come
    # first in a function, the main line after them) — but a switch's cases are alternatives, so
    # between them the order stays by name
    cg = graph_of(TIES)
    rx = query.find_paths(cg, cg.lookup("rx"), cg.lookup("deliver"), k=2)
    assert [names(cg, p) for p in rx] == [["rx", "main_line", "deliver"], ["rx", "aa_special", "deliver"]]
    assert rx[0].cost == rx[1].cost
    demux = query.find_paths(cg, cg.lookup("demux"), cg.lookup("deliver"), k=2)
    assert [names(cg, p) for p in demux] == [["demux", "a_case", "deliver"], ["demux", "b_case", "deliver"]]


def test_rare_branches_rank_after_the_main_line(graph_of):
    # the special cases (a flag test without else, an unlikely() branch) are one call shorter, but the
    # main line, which goes on after them, is the first path
    cg = graph_of(RARE_BRANCHES)
    paths = query.find_paths(cg, cg.lookup("rcv"), cg.lookup("deliver"), k=3, avoid=[cg.lookup("push"), cg.lookup("ack")])
    assert [names(cg, p) for p in paths][0] == ["rcv", "unicast", "lookup", "deliver"]
    assert {tuple(names(cg, p)) for p in paths} == {("rcv", "unicast", "lookup", "deliver"),
                                                    ("rcv", "mcast_deliver", "deliver"), ("rcv", "slowpath", "deliver")}
    # a pointer stored under a flag test, over an earlier store: the earlier value is the main line
    paths = query.find_paths(cg, cg.lookup("xmit"), cg.lookup("deliver"), k=2)
    assert [names(cg, p) for p in paths] == [["xmit", "out_main", "deliver"], ["xmit", "out_mc", "deliver"]]
    cold = {e.dst: e.cold for e in cg.all_edges() if e.src == "rcv"}
    # a negated flag test (if (!(flags & MSG_MORE)) push(...)) is the main line, not a special case;
    # nor is a flag test and'ed with more (neigh_output's nud_state & NUD_CONNECTED && hh_len: the
    # cached header, the common case)
    assert cold == {"mcast_deliver": 1, "slowpath": 1, "unicast": 0, "push": 0, "ack": 0}
    assert {e.dst: e.store_cold for e in cg.all_edges() if e.src == "xmit"} == {"out_main": 0, "out_mc": 1}
    # if (likely(c)) return: the function is expected to leave there, what follows is the rare case
    # (a !unlikely() branch inside it is not rarer still)
    assert {e.dst: e.cold for e in cg.all_edges() if e.src == "probe"} == {"push": 1, "deliver": 1}
    # what follows a label only jumps reach (return err; reset: ...) is rare; the code after the label
    # the main line falls into is not, nor a branch that ends in a goto (udp_sendmsg's lockless fast
    # path: if (!corkreq) { ... udp_send_skb(...); goto out; })
    assert {e.dst: e.cold for e in cg.all_edges() if e.src == "conn"} == {"mcast_deliver": 0, "unicast": 0,
                                                                          "slowpath": 1}

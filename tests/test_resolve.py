"""link + resolve: how each indirect idiom becomes edges, with evidence (inline multi-file programs)."""

import pytest

from conftest import edges_between, kinds_between

NET_H = """
struct socket { const struct proto_ops *ops; struct sock *sk; };
struct proto_ops { int (*sendmsg)(struct socket *sock, struct msghdr *m, size_t len); };
struct sock_common { struct proto *skc_prot; };
struct sock {
	struct sock_common __sk_common;
#define sk_prot __sk_common.skc_prot
	int (*sk_backlog_rcv)(struct sock *sk, struct sk_buff *skb);
};
struct proto { int (*sendmsg)(struct sock *sk, struct msghdr *msg, size_t len); int (*init)(struct sock *sk); };
"""


def test_ops_table_field_and_alias(graph_of):
    cg = graph_of({
        "include/net/sock.h": NET_H,
        "net/socket.c": "int sock_sendmsg(struct socket *sock, struct msghdr *m)\n{\n"
                        "\treturn READ_ONCE(sock->ops)->sendmsg(sock, m, 0);\n}\n",
        "net/ipv4/af_inet.c": """
int inet_sendmsg(struct socket *sock, struct msghdr *msg, size_t size)
{
	struct sock *sk = sock->sk;
	return sk->sk_prot->sendmsg(sk, msg, size);
}
const struct proto_ops inet_dgram_ops = {
	.sendmsg = inet_sendmsg,
};
""",
        "net/ipv4/udp.c": "int udp_sendmsg(struct sock *sk, struct msghdr *msg, size_t len) { return 0; }\n"
                          "struct proto udp_prot = {\n\t.sendmsg = udp_sendmsg,\n};\n",
    })
    (e,) = edges_between(cg, "sock_sendmsg", "inet_sendmsg")
    assert (e.kind, e.site, e.text) == ("ops", "net/socket.c:3", "READ_ONCE(sock->ops)->sendmsg")
    assert [(s[0], s[1], s[2], s[3]) for s in e.evidence] == [("ops", "inet_dgram_ops", "net/ipv4/af_inet.c", 8)]
    # sk->sk_prot is a macro alias for __sk_common.skc_prot, a struct proto *
    (e2,) = edges_between(cg, "inet_sendmsg", "udp_sendmsg")
    assert e2.kind == "ops" and e2.evidence[0][1] == "udp_prot"


def test_assignment_in_route_code_and_return_type_of_inline(graph_of):
    cg = graph_of({
        "include/net/dst.h": """
struct dst_entry { int (*output)(struct net *net, struct sock *sk, struct sk_buff *skb); };
static inline struct dst_entry *skb_dst(const struct sk_buff *skb) { return 0; }
static inline int dst_output(struct net *net, struct sock *sk, struct sk_buff *skb)
{
	return skb_dst(skb)->output(net, sk, skb);
}
""",
        "include/net/route.h": "struct rtable { struct dst_entry dst; int rt_flags; };\n",
        "net/ipv4/route.c": """
static struct rtable *rt_dst_alloc(struct net_device *dev)
{
	struct rtable *rt = kmalloc(sizeof(*rt));

	rt->dst.output = ip_output;
	return rt;
}
""",
        "net/ipv4/ip_output.c": "int ip_output(struct net *net, struct sock *sk, struct sk_buff *skb) { return 0; }\n",
    })
    (e,) = edges_between(cg, "dst_output", "ip_output")
    assert e.kind == "assign"
    assert [(s[0], s[1], s[2], s[3]) for s in e.evidence] == [
        ("assign", "rt->dst.output = ip_output", "net/ipv4/route.c", 6)]


def test_function_passed_to_static_inline_that_calls_it(graph_of):
    cg = graph_of({
        "include/linux/netfilter.h": """
static inline int NF_HOOK_COND(unsigned char pf, unsigned int hook, struct net *net, struct sock *sk,
	struct sk_buff *skb, struct net_device *in, struct net_device *out,
	int (*okfn)(struct net *, struct sock *, struct sk_buff *), bool cond)
{
	int ret;

	if (!cond || ((ret = nf_hook(pf, hook, net, sk, skb, in, out, okfn)) == 1))
		ret = okfn(net, sk, skb);
	return ret;
}
""",
        "net/ipv4/ip_output.c": """
static int ip_finish_output(struct net *net, struct sock *sk, struct sk_buff *skb) { return 0; }
int ip_output(struct net *net, struct sock *sk, struct sk_buff *skb)
{
	return NF_HOOK_COND(NFPROTO_IPV4, NF_INET_POST_ROUTING, net, sk, skb, NULL, dev,
			    ip_finish_output, !(IPCB(skb)->flags & IPSKB_REROUTED));
}
static int ip_mc_output(struct net *net, struct sock *sk, struct sk_buff *skb)
{
	return nf_hook(1, 2, net, sk, skb, NULL, NULL, ip_mc_finish_output);
}
""",
    })
    (e,) = [e for e in edges_between(cg, "ip_output", "net/ipv4/ip_output.c::ip_finish_output") if e.kind == "param"]
    assert e.site == "net/ipv4/ip_output.c:5"
    assert e.evidence[0][1] == "passed as okfn to NF_HOOK_COND, which calls it"
    assert e.evidence[0][2:4] == ("include/linux/netfilter.h", 9)
    # the callee side exists for callers/callees and the graph, but path search does not take it
    side = edges_between(cg, "NF_HOOK_COND", "net/ipv4/ip_output.c::ip_finish_output")
    assert side and all(x.through_param for x in side)
    # nf_hook is not in scope: it does not call okfn as far as we know -> no param edge
    assert not cg.edges_between("net/ipv4/ip_output.c::ip_mc_output", "ip_mc_finish_output")


def test_function_passed_to_old_style_macro(graph_of):
    cg = graph_of({
        "include/linux/netfilter.h": """
#define NF_HOOK(pf, hook, skb, indev, outdev, okfn) \\
	NF_HOOK_THRESH(pf, hook, skb, indev, outdev, okfn, INT_MIN)
static inline int NF_HOOK_THRESH(int pf, unsigned int hook, struct sk_buff *skb,
	struct net_device *in, struct net_device *out, int (*okfn)(struct sk_buff *), int thresh)
{
	int ret = nf_hook_thresh(pf, hook, skb, in, out, okfn, thresh);
	if (ret == 1)
		ret = okfn(skb);
	return ret;
}
""",
        "net/ipv4/ip_input.c": """
static int ip_rcv_finish(struct sk_buff *skb) { return 0; }
int ip_rcv(struct sk_buff *skb, struct net_device *dev)
{
	return NF_HOOK(PF_INET, NF_IP_PRE_ROUTING, skb, dev, NULL, ip_rcv_finish);
}
""",
    })
    assert "param" in kinds_between(cg, "ip_rcv", "net/ipv4/ip_input.c::ip_rcv_finish")
    # and the macro's own direct call is attributed to the caller
    assert "direct" in kinds_between(cg, "ip_rcv", "NF_HOOK_THRESH")


def test_value_flow_field_to_field(graph_of):
    cg = graph_of({
        "include/net/neighbour.h": """
struct hh_cache { int (*hh_output)(struct sk_buff *skb); };
struct neigh_ops { int (*hh_output)(struct sk_buff *skb); };
struct neighbour { const struct neigh_ops *ops; struct hh_cache hh; };
""",
        "net/core/neighbour.c": """
static void neigh_hh_init(struct neighbour *neigh, struct hh_cache *hh)
{
	hh->hh_output = neigh->ops->hh_output;
}
int neigh_hh_output(struct hh_cache *hh, struct sk_buff *skb)
{
	return hh->hh_output(skb);
}
""",
        "net/ipv4/arp.c": "static const struct neigh_ops arp_hh_ops = {\n\t.hh_output = dev_queue_xmit,\n};\n",
        "net/core/dev.c": "int dev_queue_xmit(struct sk_buff *skb) { return 0; }\n",
    })
    (e,) = edges_between(cg, "neigh_hh_output", "dev_queue_xmit")
    assert e.kind == "assign"
    assert [s[0] for s in e.evidence] == ["ops", "assign"]
    assert e.evidence[0][1] == "arp_hh_ops" and e.evidence[1][1] == "hh->hh_output = neigh->ops->hh_output"


def test_value_flow_through_parameters_into_a_field(graph_of):
    cg = graph_of({
        "include/linux/netdevice.h": "struct napi_struct { int (*poll)(struct napi_struct *, int); int weight; };\n",
        "net/core/dev.c": """
void netif_napi_add_weight(struct net_device *dev, struct napi_struct *napi,
			   int (*poll)(struct napi_struct *, int), int weight)
{
	napi->poll = poll;
}
void netif_napi_add(struct net_device *dev, struct napi_struct *napi, int (*poll)(struct napi_struct *, int))
{
	netif_napi_add_weight(dev, napi, poll, 64);
}
static int __napi_poll(struct napi_struct *n)
{
	return n->poll(n, n->weight);
}
""",
        "net/foo/drv.c": """
static int drv_poll(struct napi_struct *napi, int budget) { return 0; }
void drv_setup(struct drv *d)
{
	netif_napi_add(d->dev, &d->napi, drv_poll);
}
""",
    })
    (e,) = edges_between(cg, "net/core/dev.c::__napi_poll", "net/foo/drv.c::drv_poll")
    assert e.kind == "assign"
    assert e.evidence[0][0] == "arg" and e.evidence[0][2:4] == ("net/foo/drv.c", 5)
    assert e.evidence[-1][1] == "napi->poll = poll"


def test_local_variable_and_container_of(graph_of):
    cg = graph_of({
        "include/x.h": """
struct ops { void (*run)(int); };
struct outer { int a; struct inner in; const struct ops *ops; };
#define to_outer(p) container_of(p, struct outer, in)
""",
        "net/x.c": """
static void run_a(int x) { }
static void run_b(int x) { }
static const struct ops a_ops = { .run = run_a };
void go(struct inner *p, int x)
{
	void (*fn)(int);

	fn = x ? run_a : run_b;
	fn(1);
	to_outer(p)->ops->run(2);
	container_of(p, struct outer, in)->ops->run(3);
}
""",
    })
    assert kinds_between(cg, "go", "net/x.c::run_a") == {"assign", "ops"}
    assert kinds_between(cg, "go", "net/x.c::run_b") == {"assign"}
    sites = {e.site for e in edges_between(cg, "go", "net/x.c::run_a") if e.kind == "ops"}
    assert sites == {"net/x.c:11", "net/x.c:12"}


def test_fallback_and_unresolved_are_marked_and_counted(graph_of):
    cg = graph_of({
        "net/y.c": """
struct known { void (*cb)(void); };
static void cb_one(void) { }
static const struct known k = { .cb = cb_one };
void untyped(void *p)
{
	mystery(p)->cb();
}
void typed_but_empty(struct other *o)
{
	o->never_set();
}
""",
    })
    (e,) = edges_between(cg, "untyped", "net/y.c::cb_one")
    assert e.kind == "fallback"
    # o->never_set(): the type is known, nothing in scope stores a function there
    assert cg.stats["unresolved"] == {"typed, but no function stored there in scope": 1}
    assert cg.stats["resolved_fallback"] == 1


def test_indirect_candidates_and_syscall_aliases(graph_of):
    cg = graph_of({
        "net/socket.c": """
SYSCALL_DEFINE4(send, int, fd, void __user *, buff, size_t, len, unsigned int, flags)
{
	return __sys_sendto(fd, buff, len, flags, NULL, 0);
}
SYSCALL_DEFINE6(sendto, int, fd, void __user *, buff, size_t, len, unsigned int, flags,
		struct sockaddr __user *, addr, int, addr_len)
{
	return __sys_sendto(fd, buff, len, flags, addr, addr_len);
}
int __sys_sendto(int fd, void *buff, size_t len, unsigned int flags, struct sockaddr *addr, int addr_len)
{
	return INDIRECT_CALL_INET(sock->ops->sendmsg, inet6_sendmsg, inet_sendmsg, sock, msg, len);
}
int inet_sendmsg(struct socket *sock, struct msghdr *msg, size_t size) { return 0; }
long compat_caller(void) { return __do_sys_sendto(1, 0, 0, 0, 0, 0); }
""",
    })
    assert cg.lookup("sendto") == "sys_sendto"
    assert cg.lookup("__x64_sys_sendto") == "sys_sendto"
    assert cg.lookup("__do_sys_send") == "sys_send"
    assert kinds_between(cg, "__sys_sendto", "inet_sendmsg") == {"indirect_candidate"}
    assert "inet6_sendmsg" in cg.nodes and cg.nodes["inet6_sendmsg"][4] == "x"  # named, not defined here
    assert kinds_between(cg, "compat_caller", "sys_sendto") == {"syscall"}


def test_statics_are_per_file_and_ambiguity_is_reported(graph_of):
    from ksrcgraph.errors import SymbolError

    cg = graph_of({
        "net/a.c": "static int helper(void) { return 0; }\nint a(void) { return helper(); }\n",
        "net/b.c": "static int helper(void) { return 1; }\nint b(void) { return helper(); }\n",
    })
    assert kinds_between(cg, "a", "net/a.c::helper") == {"direct"}
    assert kinds_between(cg, "b", "net/b.c::helper") == {"direct"}
    assert not cg.edges_between("a", "net/b.c::helper")
    with pytest.raises(SymbolError, match="ambiguous: net/a.c::helper .*net/b.c::helper"):
        cg.lookup("helper")
    with pytest.raises(SymbolError) as ei:
        cg.lookup("helpr")
    assert "did you mean" in ei.value.hint


def test_if_zero_code_is_dropped(graph_of):
    cg = graph_of({"net/z.c": "#if 0\nint gone(void) { return x(); }\n#endif\nint kept(void) { return y(); }\n"})
    assert "kept" in cg.nodes and "gone" not in cg.nodes


def test_compound_literal_assignment(graph_of):
    cg = graph_of({
        "include/net/protocol.h": "struct net_protocol { int (*handler)(struct sk_buff *skb); unsigned int no_policy:1; };\n",
        "net/ipv4/af_inet.c": """
static int __init inet_init(void)
{
	net_hotdata.udp_protocol = (struct net_protocol) {
		.handler =	udp_rcv,
		.no_policy =	1,
	};
	return inet_add_protocol(&net_hotdata.udp_protocol, IPPROTO_UDP);
}
""",
        "net/ipv4/ip_input.c": """
void ip_protocol_deliver_rcu(struct net *net, struct sk_buff *skb, int protocol)
{
	const struct net_protocol *ipprot;

	ipprot = rcu_dereference(inet_protos[protocol]);
	ipprot->handler(skb);
}
""",
        "net/ipv4/udp.c": "int udp_rcv(struct sk_buff *skb) { return 0; }\n",
    })
    (e,) = edges_between(cg, "ip_protocol_deliver_rcu", "udp_rcv")
    assert e.kind == "assign"
    assert e.evidence[0][1:4] == ("net_hotdata.udp_protocol = (struct net_protocol){...}", "net/ipv4/af_inet.c", 4)


def test_macro_standing_for_an_out_of_scope_function(graph_of):
    # include/linux/mutex.h: mutex_lock is a macro under CONFIG_DEBUG_LOCK_ALLOC and a function
    # (in kernel/, out of scope) otherwise; both become edges, each with its condition's evidence
    cg = graph_of({"include/linux/mutex.h": """
struct mutex { int x; };
#ifdef CONFIG_DEBUG_LOCK_ALLOC
extern void mutex_lock_nested(struct mutex *lock, unsigned int subclass);
#define mutex_lock(lock) mutex_lock_nested(lock, 0)
#else
extern void mutex_lock(struct mutex *lock);
#endif
#define might_sleep_if(c) do { if (c) __might_sleep(__FILE__, __LINE__); } while (0)
""", "net/core/x.c": """
static struct mutex m;
int f(int c)
{
	mutex_lock(&m);
	might_sleep_if(c);
	return 0;
}
"""})
    assert kinds_between(cg, "f", "mutex_lock") == {"direct"}
    (e,) = edges_between(cg, "f", "mutex_lock_nested")
    assert e.evidence[0][4] == "CONFIG_DEBUG_LOCK_ALLOC"
    # a name the macro calls that nothing declares (here __might_sleep) stays out
    assert {cg.name(x.dst) for x in cg.all_edges() if cg.name(x.src) == "f"} == {"mutex_lock", "mutex_lock_nested"}


def test_macro_inside_a_macro_adds_no_out_of_scope_callee(graph_of):
    cg = graph_of({"include/linux/compiler.h": """
void ftrace_likely_update(void *f, int val, int expect, int is_constant);
#define __branch_check__(x, expect) ({ long ______r = (x); ftrace_likely_update(0, ______r, expect, 0); ______r; })
#define likely(x) (__branch_check__(x, 1))
""", "net/core/y.c": """
int g(int c)
{
	if (likely(c))
		return 1;
	return 0;
}
"""})
    assert [cg.name(x.dst) for x in cg.all_edges() if cg.name(x.src) == "g"] == []


def test_local_struct_initializer_stores_its_function_fields(graph_of):
    # net/unix/af_unix.c: unix_stream_recvmsg fills a local unix_stream_read_state with
    # .recv_actor = unix_stream_read_actor and passes &state on; state->recv_actor(...) calls it
    src = """
struct read_state { int (*recv_actor)(int chunk, struct read_state *state); int size; };
static int read_actor(int chunk, struct read_state *state) { return chunk; }
static int other_actor(int chunk, struct read_state *state) { return 0; }
static int read_generic(struct read_state *state) { return state->recv_actor(1, state); }
int stream_recvmsg(int n)
{
	struct read_state state = {
		.recv_actor = read_actor,
		.size = n,
	};
	return read_generic(&state);
}
"""
    cg = graph_of({"net/unix/af_unix.c": src})
    (e,) = edges_between(cg, "read_generic", "read_actor")
    assert e.kind == "assign"
    assert "state.recv_actor = read_actor" in str(e.evidence)
    assert edges_between(cg, "read_generic", "other_actor") == []

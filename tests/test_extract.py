"""extract: one test per kernel idiom, on C written inline (facts compared with small literals)."""


def fn(ff, name):
    return next(f for f in ff.functions if f.name == name)


def calls_in(ff, caller):
    idx = [i for i, f in enumerate(ff.functions) if f.name == caller]
    return [c for c in ff.calls if c.caller in idx]


def test_static_inline_in_header_with_return_type(facts_of):
    ff = facts_of("static inline struct dst_entry *skb_dst(const struct sk_buff *skb)\n"
                  "{\n\treturn (struct dst_entry *)(skb->_skb_refdst & SKB_DST_PTRMASK);\n}\n", "include/linux/skbuff.h")
    f = fn(ff, "skb_dst")
    assert (f.static, f.inline, f.ret, f.params, f.line) == (True, True, "s:dst_entry", (("skb", "s:sk_buff"),), 1)


def test_syscall_define_entry(facts_of):
    ff = facts_of("SYSCALL_DEFINE6(sendto, int, fd, void __user *, buff, size_t, len,\n"
                  "\t\tunsigned int, flags, struct sockaddr __user *, addr,\n\t\tint, addr_len)\n"
                  "{\n\treturn __sys_sendto(fd, buff, len, flags, addr, addr_len);\n}\n")
    f = fn(ff, "sys_sendto")
    assert f.definer == "SYSCALL_DEFINE6"
    assert [p[0] for p in f.params] == ["fd", "buff", "len", "flags", "addr", "addr_len"]
    assert dict(f.params)["addr"] == "s:sockaddr"
    assert [(c.callee, c.args) for c in calls_in(ff, "sys_sendto")] == [
        (("v", "__sys_sendto"), "fd, buff, len, flags, addr, addr_len")]


def test_compat_syscall_and_old_asmlinkage_entries(facts_of):
    ff = facts_of("COMPAT_SYSCALL_DEFINE2(socketcall, int, call, u32 __user *, args)\n{\n}\n"
                  "asmlinkage long sys_socket(int family, int type, int protocol)\n{\n\treturn sock_create(family, type, protocol);\n}\n")
    assert fn(ff, "compat_sys_socketcall").definer == "COMPAT_SYSCALL_DEFINE2"
    old = fn(ff, "sys_socket")
    assert old.definer is None and [p[0] for p in old.params] == ["family", "type", "protocol"]


def test_call_forms(facts_of):
    ff = facts_of("""
int f(struct socket *sock, int (*okfn)(int), struct sk_buff *skb)
{
	direct(1);
	sock->ops->sendmsg(sock, msg, size);
	skb_dst(skb)->output(net, sk, skb);
	okfn(1);
	(*okfn)(2);
	((struct foo *)p)->bar(3);
	table[i](4);
	return 0;
}
""")
    got = [(c.callee, c.text) for c in calls_in(ff, "f") if c.callee[0] != "v" or c.callee[1] != "skb_dst"]
    assert got == [
        (("v", "direct"), ""),
        (("f", ("f", ("v", "sock"), "ops"), "sendmsg"), "sock->ops->sendmsg"),
        (("f", ("c", "skb_dst", (("v", "skb"),)), "output"), "skb_dst(skb)->output"),
        (("v", "okfn"), ""),
        (("d", ("v", "okfn")), "(*okfn)"),
        (("f", ("x", "s:foo", ("v", "p")), "bar"), "((struct foo *)p)->bar"),
        (("i", ("v", "table")), "table[i]"),
    ]


def test_indirect_call_wrappers(facts_of):
    ff = facts_of("""
int inet_sendmsg(struct socket *sock, struct msghdr *msg, size_t size)
{
	return INDIRECT_CALL_2(sk->sk_prot->sendmsg, tcp_sendmsg, udp_sendmsg, sk, msg, size);
}
static inline int sock_sendmsg_nosec(struct socket *sock, struct msghdr *msg)
{
	return INDIRECT_CALL_INET(READ_ONCE(sock->ops)->sendmsg, inet6_sendmsg, inet_sendmsg, sock, msg, 1);
}
""")
    c = next(c for c in calls_in(ff, "inet_sendmsg") if c.wrapper)
    assert (c.wrapper, c.candidates, c.text, c.args) == ("INDIRECT_CALL_2", ("tcp_sendmsg", "udp_sendmsg"),
                                                         "sk->sk_prot->sendmsg", "sk, msg, size")
    assert c.callee == ("f", ("f", ("v", "sk"), "sk_prot"), "sendmsg")
    c2 = next(c for c in calls_in(ff, "sock_sendmsg_nosec") if c.wrapper)
    assert c2.candidates == ("inet6_sendmsg", "inet_sendmsg")
    assert c2.callee == ("f", ("f", ("v", "sock"), "ops"), "sendmsg")  # READ_ONCE is transparent


def test_macro_statement_keeps_calls_inside(facts_of):
    ff = facts_of("""
static int inet_create(struct socket *sock, int protocol)
{
	list_for_each_entry_rcu(answer, &inetsw[sock->type], list) {
		if (match(answer, protocol))
			break;
	}
	hlist_for_each_entry(sk, head, node)
		visit(sk);
	return finish(answer);
}
""")
    names = sorted(c.callee[1] for c in calls_in(ff, "inet_create"))
    assert names == ["finish", "match", "visit"]
    assert ff.error_count == 0


def test_struct_fields_member_structs_and_anonymous_unions(facts_of):
    ff = facts_of("""
struct rtable {
	struct dst_entry	dst;
	int			rt_genid;
};
struct proto_ops {
	int	(*sendmsg)(struct socket *sock, struct msghdr *m, size_t total_len);
	union {
		void (*cb)(void);
		int x;
	};
	struct {
		int (*dump)(struct pfkey_sock *sk);
	} dump;
	okfn_t *hook;
};
""")
    structs = {s.name: {f.name: f.type for f in s.fields} for s in ff.structs}
    assert structs["rtable"] == {"dst": "s:dst_entry", "rt_genid": "p"}
    assert structs["proto_ops"] == {"sendmsg": "fn", "cb": "fn", "x": "p", "dump": "s:proto_ops.dump",
                                    "hook": "t:okfn_t"}
    assert structs["proto_ops.dump"] == {"dump": "fn"}


def test_typedefs(facts_of):
    ff = facts_of("typedef int (*okfn_t)(struct sk_buff *);\ntypedef struct { int slock; } socket_lock_t;\n"
                  "typedef struct sock sock_t;\n")
    assert {t.name: t.type for t in ff.typedefs} == {"okfn_t": "fn", "socket_lock_t": "s:socket_lock_t",
                                                     "sock_t": "s:sock"}
    assert any(s.name == "socket_lock_t" for s in ff.structs)


def test_designated_gnu_nested_and_array_initializers(facts_of):
    ff = facts_of("""
static struct file_operations socket_file_ops = {
	llseek:		sock_lseek,
	read:		sock_read,
};
static struct rtable fake = { .dst = { .output = ip_output, }, .rt_flags = 0 };
static struct inet_protosw inetsw_array[] = {
	{ .type = SOCK_STREAM, .protocol = IPPROTO_TCP, .prot = &tcp_prot, .ops = &inet_stream_ops, },
	{ .type = SOCK_DGRAM, .protocol = IPPROTO_UDP, .prot = &udp_prot, .ops = &inet_dgram_ops, },
};
static struct packet_type ip_packet_type = { .type = cpu_to_be16(ETH_P_IP), .func = ip_rcv, };
""")
    got = {(i.var, i.path, i.value) for i in ff.inits}
    assert ("socket_file_ops", ((".", "llseek"),), ("v", "sock_lseek")) in got
    assert ("socket_file_ops", ((".", "read"),), ("v", "sock_read")) in got
    assert ("fake", ((".", "dst"), (".", "output")), ("v", "ip_output")) in got
    assert ("inetsw_array", (("#", 1), (".", "prot")), ("a", ("v", "udp_prot"))) in got
    assert ("inetsw_array", (("#", 0), (".", "type")), ("v", "SOCK_STREAM")) in got
    assert ("ip_packet_type", ((".", "type"),), ("c", "cpu_to_be16", (("v", "ETH_P_IP"),))) in got
    g = {x.name: (x.type, x.static, x.array) for x in ff.globals}
    assert g["inetsw_array"] == ("s:inet_protosw", True, True)


def test_assignments_of_functions_and_tables(facts_of):
    ff = facts_of("""
static struct rtable *rt_dst_alloc(struct net_device *dev)
{
	struct rtable *rt = kzalloc(sizeof(*rt));
	rt->dst.output = ip_output;
	rt->rt_flags = flags;
	return rt;
}
static int unix_create(struct socket *sock)
{
	switch (sock->type) {
	case SOCK_STREAM:
		sock->ops = &unix_stream_ops;
		break;
	case SOCK_DGRAM:
		sock->ops = &unix_dgram_ops;
		break;
	}
	WRITE_ONCE(sk->sk_prot, sk->sk_prot_creator);
	sock->ops = answer->ops;
	getfrag = is_udplite ? udplite_getfrag : ip_generic_getfrag;
	err = do_something(sk);
	return 0;
}
""")
    got = [(a.lhs, a.rhs, a.guard) for a in ff.assigns]
    assert (("f", ("f", ("v", "rt"), "dst"), "output"), ("v", "ip_output"), None) in got
    assert (("f", ("v", "sock"), "ops"), ("a", ("v", "unix_stream_ops")), ("case", "sock->type", ("SOCK_STREAM",))) in got
    assert (("f", ("v", "sock"), "ops"), ("a", ("v", "unix_dgram_ops")), ("case", "sock->type", ("SOCK_DGRAM",))) in got
    assert (("f", ("v", "sk"), "sk_prot"), ("f", ("v", "sk"), "sk_prot_creator"), None) in got
    assert (("f", ("v", "sock"), "ops"), ("f", ("v", "answer"), "ops"), None) in got
    assert (("v", "getfrag"), ("?", ("v", "udplite_getfrag"), ("v", "ip_generic_getfrag")), None) in got
    assert not any(a.lhs == ("v", "err") for a in ff.assigns)  # a return value, not a stored function


def test_preprocessor_conditions(facts_of):
    ff = facts_of("""
#ifndef _LINUX_NETFILTER_H
#define _LINUX_NETFILTER_H
#ifdef CONFIG_NETFILTER
static inline int NF_HOOK(int pf, int (*okfn)(int)) { return okfn(1); }
#elif defined(CONFIG_OTHER)
static inline int NF_HOOK(int pf, int (*okfn)(int)) { return 2; }
#else
static inline int NF_HOOK(int pf, int (*okfn)(int)) { return okfn(3); }
#endif
#if 0
int dead(void) { return 0; }
#endif
#endif
""", "include/linux/netfilter.h")
    assert [f.cond for f in ff.functions] == ["CONFIG_NETFILTER", "!CONFIG_NETFILTER && defined(CONFIG_OTHER)",
                                              "!CONFIG_NETFILTER && !(defined(CONFIG_OTHER))", "0"]


def test_macros_calling_parameters_aliases_and_container_types(facts_of):
    ff = facts_of("""
#define NF_HOOK(pf, hook, skb, indev, outdev, okfn) \\
	(nf_hook(pf, hook, skb, indev, outdev, okfn) ?: (okfn)(skb))
#define sk_prot __sk_common.skc_prot
#define tcp_sk(ptr) container_of(ptr, struct tcp_sock, inet_conn.icsk_inet.sk)
#define FOO 42
""", "include/linux/x.h")
    m = {x.name: x for x in ff.macros}
    assert m["NF_HOOK"].params == ("pf", "hook", "skb", "indev", "outdev", "okfn")
    assert [c[0] for c in m["NF_HOOK"].calls] == ["nf_hook", "okfn"]
    assert m["NF_HOOK"].calls[0][1][5] == ("v", "okfn")
    assert m["sk_prot"].alias == ("f", ("v", "__sk_common"), "skc_prot")
    assert m["tcp_sk"].type == "s:tcp_sock"
    assert "FOO" not in m


def test_bad_c_is_counted_not_fatal(facts_of):
    ff = facts_of("int ok(void) { return good(); }\n@@@ garbage ((( {{ ;\nint also(void) { fine(); }\n")
    assert ff.error_count > 0 and ff.error_bytes > 0
    assert {f.name for f in ff.functions} >= {"ok"}
    assert any(c.callee == ("v", "good") for c in ff.calls)


def test_locals_and_params_typed(facts_of):
    ff = facts_of("""
static int __sock_create(struct net *net, int family)
{
	const struct net_proto_family *pf;
	struct socket *sock, **res;
	int err;
	pf = rcu_dereference(net_families[family]);
	return pf->create(net, sock, protocol, kern);
}
""")
    locs = {(loc.name, loc.type) for loc in ff.locals}
    assert {("net", "s:net"), ("family", "p"), ("pf", "s:net_proto_family"), ("sock", "s:socket"),
            ("res", "s:socket")} <= locs
    assert (("v", "pf"), ("i", ("v", "net_families"))) in {(a.lhs, a.rhs) for a in ff.assigns}


def test_guards_fall_through_and_if_branches(facts_of):
    ff = facts_of("""
static int unix_create(struct net *net, struct socket *sock, int protocol, int kern)
{
	switch (sock->type) {
	case SOCK_STREAM:
		sock->ops = &unix_stream_ops;
		break;
	case SOCK_RAW:
		sock->type = SOCK_DGRAM;
		fallthrough;
	case SOCK_DGRAM:
		sock->ops = &unix_dgram_ops;
		break;
	}
	if (sock->type == SOCK_PACKET)
		sock->ops = &packet_ops_spkt;
	if (type == SOCK_STREAM)
		sk = sk_alloc(net, PF_UNIX, GFP_KERNEL, &unix_stream_proto, kern);
	else
		sk = sk_alloc(net, PF_UNIX, GFP_KERNEL, &unix_dgram_proto, kern);
	return 0;
}
""")
    guards = {a.rhs[1][1]: a.guard for a in ff.assigns if a.rhs[0] == "a"}
    assert guards["unix_stream_ops"] == ("case", "sock->type", ("SOCK_STREAM",))
    assert guards["unix_dgram_ops"] == ("case", "sock->type", ("SOCK_RAW", "SOCK_DGRAM"))
    assert guards["packet_ops_spkt"] == ("if", "sock->type == SOCK_PACKET", True)
    allocs = [(c.args.split(",")[3].strip(), c.guard) for c in ff.calls if c.callee == ("v", "sk_alloc")]
    assert allocs == [("&unix_stream_proto", ("if", "type == SOCK_STREAM", True)),
                      ("&unix_dgram_proto", ("if", "type == SOCK_STREAM", False))]


def test_definition_after_file_scope_macro_invocations(facts_of):
    # macros expanding to definitions, invoked without a semicolon, must not swallow the next function
    ff = facts_of("DEV_STATS_INC(rx_dropped)\nDEV_STATS_INC(tx_dropped)\n\n"
                  "static inline int __dev_forward(struct net_device *dev, struct sk_buff *skb)\n"
                  "{\n\treturn dev_xmit(skb);\n}\n", "include/linux/netdevice.h")
    assert [f.name for f in ff.functions] == ["__dev_forward"]
    assert [c.callee for c in calls_in(ff, "__dev_forward")] == [("v", "dev_xmit")]
    assert ff.error_count == 0


def test_definition_after_define_with_comments_in_its_body(facts_of):
    # a comment inside a multi-line #define must not end the macro and spill its body into code
    ff = facts_of("#define REASONS(R)\t\\\n\tR(A)\t\\\n\t/* 0x10 */\t\\\n\tR(B)\t\\\n\tR(C)\n"
                  "int f(void) { return g(); }\n")
    assert [f.name for f in ff.functions] == ["f"]
    assert [c.callee for c in calls_in(ff, "f")] == [("v", "g")]


def test_callee_chosen_by_a_conditional_expression(facts_of):
    # 3.10's ___sys_recvmsg: err = (nosec ? sock_recvmsg_nosec : sock_recvmsg)(sock, msg_sys, len, flags);
    ff = facts_of("""
int f(struct socket *sock, int nosec)
{
	return (nosec ? sock_recvmsg_nosec : sock_recvmsg)(sock, 0, 1, 2);
}
""")
    named = sorted(c.callee[1] for c in ff.calls if c.callee[0] == "v")
    assert named == ["sock_recvmsg", "sock_recvmsg_nosec"]
    assert all(c.args == "sock, 0, 1, 2" for c in ff.calls)


def test_label_right_before_endif_keeps_the_next_call_outside_the_block(facts_of):
    # net/core/dev.c before 5.x: "ncls:" is the last line of an #ifdef block; the statement that
    # follows the #endif runs whatever the config, and must not inherit CONFIG_NET_CLS_ACT
    ff = facts_of("""
int receive(struct sk_buff *skb)
{
#ifdef CONFIG_NET_CLS_ACT
	if (skb_tc_skip(skb))
		goto ncls;
	tc_classify(skb);
ncls:
#endif
	deliver(skb);
	switch (skb->len) {
#ifdef CONFIG_X
	default:
#endif
		other(skb);
	}
	return 0;
}
""")
    conds = {c.callee[1]: c.cond for c in calls_in(ff, "receive")}
    assert conds["tc_classify"] == "CONFIG_NET_CLS_ACT"
    assert conds["deliver"] in ("", None)
    assert ff.error_count == 0

"""clean: same length, same lines; annotations blanked; macro forms rewritten."""

from ksrcgraph.clean import clean


def same_shape(a: bytes, b: bytes) -> bool:
    return len(a) == len(b) and [i for i, c in enumerate(a) if c == 10] == [i for i, c in enumerate(b) if c == 10]


def test_annotations_blanked_length_and_lines_kept():
    src = b"static int __net_init foo(struct sock __rcu *sk,\n\t\tvoid __user *p) __must_hold(&lock)\n{\n}\n"
    out = clean(src)
    assert same_shape(src, out)
    assert b"__rcu" not in out and b"__user" not in out and b"__net_init" not in out
    assert b"__must_hold" not in out and b"&lock" not in out
    assert b"struct sock" in out and b"foo(" in out


def test_annotation_with_arguments_over_lines():
    src = b"void __printf(2,\n  3) warn(int a, const char *fmt, ...);\n"
    out = clean(src)
    assert same_shape(src, out)
    assert out.split() == [b"void", b"warn(int", b"a,", b"const", b"char", b"*fmt,", b"...);"]


def test_directive_lines_left_alone():
    src = b"#define __rcu\n#ifdef __user\nint x __rcu;\n#endif\n"
    out = clean(src)
    assert out.startswith(b"#define __rcu\n#ifdef __user\n")
    assert b"int x      ;" in out


def test_identifier_containing_annotation_is_kept():
    src = b"int __init_or_whatever(void); int my__user;\n"
    assert clean(src) == src


def test_syscall_define_becomes_function_head():
    src = (b"SYSCALL_DEFINE6(sendto, int, fd, void __user *, buff, size_t, len,\n"
           b"\t\tunsigned int, flags, struct sockaddr __user *, addr,\n\t\tint, addr_len)\n{\n}\n")
    out = clean(src)
    assert same_shape(src, out)
    head = out.split(b"{")[0]
    assert b" ".join(head.split()) == (b"long sys_sendto(int fd,void * buff,size_t len,unsigned int flags,"
                                       b"struct sockaddr * addr,int addr_len)")


def test_syscall_define0_and_compat():
    out = clean(b"SYSCALL_DEFINE0(getpid)\n{\n}\nCOMPAT_SYSCALL_DEFINE2(socketcall, int, call, u32 __user *, args)\n{}\n")
    assert b"long sys_getpid(void)" in out
    assert b"long compat_sys_socketcall(int call,u32 * args)" in out


def test_loop_macros_become_while():
    src = (b"void f(void)\n{\n\tlist_for_each_entry(pos, head, list) {\n\t\tg(pos);\n\t}\n"
           b"\tif (x)\n\t\thlist_for_each_entry_rcu(a, b, c)\n\t\t\th(a);\n}\n")
    out = clean(src)
    assert same_shape(src, out)
    assert out.count(b"while") == 2
    assert b"list_for_each_entry" not in out


def test_loop_macro_names_not_rewritten_in_definitions_and_declarations():
    src = (b"#define list_for_each_entry(pos, head, member) \\\n\tfor (;;)\n"
           b"static int inet_for_each_thing(int a) { return a; }\n"
           b"int n = count_for_each(x);\n")
    assert clean(src) == src


def test_file_scope_macro_invocations_blanked():
    src = (b"}\n\nDEV_STATS_INC(rx_dropped)\nDEV_STATS_INC(tx_dropped) /* both */\n"
           b"BTF_ID(func,\n       my_kfunc)\nstatic int forward(struct sk_buff *skb)\n{\n\treturn 0;\n}\n")
    out = clean(src)
    assert same_shape(src, out)
    assert b"DEV_STATS_INC" not in out and b"BTF_ID" not in out and b"my_kfunc" not in out
    assert b"/* both */" in out and b"static int forward(struct sk_buff *skb)\n{" in out


def test_function_heads_and_statements_in_column_0_kept():
    # the type on the line before, attributes after, a body next: a function head, not a macro
    heads = (b"static int\nfoo(int a)\n{\n}\n"
             b"struct sock *\nbar(int a,\n    int b)\n{\n}\n"
             b"int x;\nbaz(int a)\n{\n}\n")
    assert clean(heads) == heads
    # statements and expressions in column 0; a macro definition's continuation lines
    other = (b"int f(void)\n{\nif (x)\n\tg();\nfoo(a)\n\t+ 1;\n}\n"
             b"#define M(x) \\\nN(x)\nint y;\n"
             b"int g(void);\nDEFINE_X(a) = 1;\nLIST(b);\n")
    assert clean(other) == other


def test_comment_inside_multiline_define_blanked():
    src = (b"#define REASONS(R)\t\\\n\t/* 0x00 */\t\\\n\tR(A) /* a */ x /* b */ \\\n\tR(B)\n"
           b"int f(void) { return g(); } /* kept: no continuation */\n")
    out = clean(src)
    assert same_shape(src, out)
    assert b"0x00" not in out and b"/* b */" not in out
    assert b"/* a */ x" in out  # only a comment the continuation follows; never code between two
    assert b"/* kept: no continuation */" in out

"""Attachability (issue 11): a built kernel's symbol table read (System.map, kallsyms,
available_filter_functions), the prediction from source, and ``ksrcgraph probes``.

The kernel test checks facts read by hand in the System.map of Debian's 6.1.192-3 amd64 build
(linux-image-6.1.0-57-amd64-dbg; tests/debian_symbols.py fetches it once into the cache)."""

from __future__ import annotations

import json
import os

import pytest
from test_cli import run

from ksrcgraph import attach, symbols
from ksrcgraph.errors import UsageError
from ksrcgraph.extract import extract
from ksrcgraph.link import Program

from conftest import FIXTURES

MINI = str(FIXTURES / "minikernel")

SYSTEM_MAP = """\
ffffffff81000000 T _stext
ffffffff81001000 T __x64_sys_sendto
ffffffff81001030 T __ia32_sys_sendto
ffffffff81001100 T __sys_sendto
ffffffff81001200 t udp_send_skb.isra.0
ffffffff81001280 t dst_output
ffffffff81001300 T ip_output
ffffffff81001380 t dst_output
ffffffff81001400 t __ip_finish_output.part.0
ffffffff81001500 t ip_finish_output2.cold
ffffffff81001600 T inet_sendmsg
ffffffff81001700 T udp_sendmsg
ffffffff81001800 T ip_send_skb
ffffffff81001900 T ip_local_out
ffffffff81001a00 t ip_finish_output
ffffffff81001b00 t neigh_hh_output
ffffffff81001c00 t sock_sendmsg_nosec
ffffffff81002000 T __noinstr_text_start
ffffffff81002010 T exc_page_fault
ffffffff81002100 T __noinstr_text_end
ffffffff81003000 T _sinittext
ffffffff81003010 t inet_init
ffffffff81003100 T _einittext
ffffffff81004000 d init_net
ffffffff81004100 d _kbl_addr_neigh_hh_output
ffffffff81004200 d _kbl_addr_sock_sendmsg_nosec
"""


# -- symbol tables -----------------------------------------------------------------------------------
def test_clone_suffixes_split_from_the_source_name():
    assert symbols.split_name("udp_send_skb.isra.0") == ("udp_send_skb", ("isra",))
    assert symbols.split_name("ip_rcv_finish_core.constprop.0.cold") == ("ip_rcv_finish_core", ("constprop", "cold"))
    assert symbols.split_name("tcp_add_reno_sack.part.0") == ("tcp_add_reno_sack", ("part",))
    assert symbols.split_name("__func__.12") == ("__func__.12", ())  # not a known suffix: not a copy
    assert symbols.split_name("dev_queue_xmit") == ("dev_queue_xmit", ())


def test_system_map_symbols_by_source_name():
    t = symbols.SymbolTable.parse(SYSTEM_MAP, "test.map")
    assert t.kinds == ["map"] and t.traceable is None
    assert [(s.name, s.where) for s in t.of("udp_send_skb")] == [("udp_send_skb.isra.0", "")]
    assert [s.addr for s in t.of("dst_output")] == [0xFFFFFFFF81001280, 0xFFFFFFFF81001380]
    assert [(s.name, s.where) for s in t.of("__ip_finish_output")] == [("__ip_finish_output.part.0", "partial")]
    assert [(s.name, s.where) for s in t.of("ip_finish_output2")] == [("ip_finish_output2.cold", "cold")]
    assert [(s.name, s.where) for s in t.of("exc_page_fault")] == [("exc_page_fault", "no")]
    assert [(s.name, s.where) for s in t.of("inet_init")] == [("inet_init", "init")]
    assert [(s.name, s.where) for s in t.of("neigh_hh_output")] == [("neigh_hh_output", "no")]
    assert t.of("init_net") == [] and t.of("sock_sendmsg") == []  # data symbols are not functions
    assert len(t) == 23


def test_kallsyms_modules_and_filter_functions_merge():
    kallsyms = ("ffffffffc0a01000 t nft_do_chain\t[nf_tables]\nffffffff81001300 T ip_output\n"
                "ffffffff81001380 t ip_finish_output2\n")
    filters = "ip_output\nnft_do_chain [nf_tables]\n"
    t = symbols.SymbolTable.parse(kallsyms, "kallsyms").merge(symbols.SymbolTable.parse(filters, "filters"))
    assert t.kinds == ["filter", "map"] and t.label == "kallsyms + filters"
    assert [(s.name, s.module) for s in t.of("nft_do_chain", module=None)] == [("nft_do_chain", "nf_tables")]
    assert t.of("nft_do_chain") == []  # vmlinux only by default
    assert attach.from_symbols(["nft_do_chain"], t).reason == "out of line in module nf_tables"
    assert (t.is_traceable("ip_output"), t.is_traceable("ip_finish_output2")) == (True, False)
    a = attach.from_symbols(["ip_finish_output2"], t)
    assert a == attach.Attach("yes", "out of line; not in available_filter_functions: kprobe only, no fentry",
                              ("ip_finish_output2",), False, True)
    only = symbols.SymbolTable.parse(filters, "filters")
    assert attach.from_symbols(["ip_finish_output2"], only).reason == \
        "not in available_filter_functions (inlined, notrace, or not built)"


def test_kallsyms_without_privileges_has_no_addresses():
    t = symbols.SymbolTable.parse("0000000000000000 T ip_output\n0000000000000000 t inet_init\n")
    assert [(s.name, s.addr, s.where) for s in t.of("inet_init")] == [("inet_init", -1, "")]


@pytest.mark.parametrize("text", ["", "# nothing\n", "hello world this is not a map\n"])
def test_malformed_symbol_files_are_usage_errors(text):
    with pytest.raises(UsageError):
        symbols.SymbolTable.parse(text, "bad")


def test_binary_verdicts():
    t = symbols.SymbolTable.parse(SYSTEM_MAP, "test.map")
    got = {n: attach.from_symbols(attach_names(n), t) for n in
           ("sys_sendto", "udp_send_skb", "dst_output", "__ip_finish_output", "ip_finish_output2", "inet_init",
            "neigh_hh_output", "dev_queue_xmit")}
    assert {n: (a.verdict, a.reason, a.symbols) for n, a in got.items()} == {
        "sys_sendto": ("yes", "out of line as __x64_sys_sendto, __ia32_sys_sendto", ("__x64_sys_sendto", "__ia32_sys_sendto")),
        "udp_send_skb": ("yes", "out of line as udp_send_skb.isra.0", ("udp_send_skb.isra.0",)),
        "dst_output": ("yes", "out of line (2 copies)", ("dst_output",)),
        "__ip_finish_output": ("maybe", "only __ip_finish_output.part.0: .part: the outlined part of a partially inlined "
                               "function (gcc -fpartial-inlining) (the rest is inlined into its callers)",
                               ("__ip_finish_output.part.0",)),
        "ip_finish_output2": ("no", "ip_finish_output2.cold: .cold: the cold fragment of a function (gcc hot/cold "
                              "splitting): not an entry point", ()),
        "inet_init": ("no", "inet_init: .init.text: freed after boot", ()),
        "neigh_hh_output": ("no", "neigh_hh_output: NOKPROBE_SYMBOL: on the kprobe blacklist", ()),
        "dev_queue_xmit": ("no", "no symbol: inlined into its callers, or not built in this configuration", ()),
    }
    assert all(a.binary for a in got.values())


def attach_names(name: str) -> list[str]:
    class G:  # the two things symbol_names reads of a graph
        meta: dict = {}

        @staticmethod
        def name(nid):
            return nid

    return attach.symbol_names(G, name)


# -- the prediction from source ------------------------------------------------------------------------
SOURCE = """\
struct ops { int (*f)(int); };
static int helper_once(int x) { return x + 1; }
static int helper_many(int x) { return x * 2; }
static int handler(int x) { return helper_once(x); }
static const struct ops my_ops = { .f = handler };
static __always_inline int fast(int x) { return x; }
static int __init setup(void) { return 0; }
static noinline int kept_apart(int x) { return x; }
static int passed(int x) { return x; }
static int big(int x)
{
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	x += 1; x += 2; x += 3; x += 4; x += 5; x += 6; x += 7; x += 8; x += 9; x += 10;
	return x;
}
__visible noinstr void entry_work(void) { }
static inline int small_inline(int x) { return x; }
int api(int x)
{
	return helper_many(x) + helper_many(x) + fast(x) + kept_apart(x) + register_cb(passed) + big(x) + big(1)
	       + small_inline(x);
}
EXPORT_SYMBOL_GPL(api);
#ifdef CONFIG_FOO
int plain(void) { return 0; }
#endif
late_initcall(setup);
static void work_fn(struct work_struct *w) { }
static DECLARE_WORK(my_work, work_fn);
static int pasted_show(char *buf) { return 0; }
"""


def test_features_and_predictions_from_source():
    prog = Program([extract("net/core/t.c", SOURCE.encode())])
    feats = attach.features(prog)
    conds = {fid: info.primary.cond for fid, info in prog.funcs.items()}
    got = {fid.split("::")[-1]: (attach.predict(t, conds[fid]).verdict, attach.predict(t, conds[fid]).reason)
           for fid, t in feats.items()}
    assert got == {
        "api": ("yes", "EXPORT_SYMBOL_GPL: exported, so an out-of-line copy exists"),
        "big": ("yes", "static, 2 call sites, 34 lines: too big to inline everywhere"),
        "entry_work": ("no", "noinstr: in .noinstr.text, where kprobes are refused"),
        "fast": ("no", "__always_inline: always inlined, no symbol"),
        "handler": ("yes", "its address is taken (used 1× as a value: in a table, an assignment, an argument, a "
                    "file-scope macro), so an out-of-line copy exists"),
        "helper_many": ("no", "static, 2 call sites, 1 lines, 0 calls of its own: probably small enough to be inlined"),
        "helper_once": ("no", "static with one call site: inlined into its caller"),
        "kept_apart": ("yes", "noinline: never inlined"),
        "passed": ("yes", "its address is taken (used 1× as a value: in a table, an assignment, an argument, a "
                   "file-scope macro), so an out-of-line copy exists"),
        "work_fn": ("yes", "its address is taken (used 1× as a value: in a table, an assignment, an argument, a "
                    "file-scope macro), so an out-of-line copy exists"),
        "pasted_show": ("yes", "static, no call and no use of its name seen: used through a macro that pastes its "
                        "name (DEVICE_ATTR_RO(x) makes x_show), which takes its address"),
        "plain": ("yes", "a global function: emitted out of line; only when CONFIG_FOO"),
        "setup": ("no", "__init: in .init.text, freed after boot"),
        "small_inline": ("no", "declared inline: inlined into its callers"),
    }
    f = attach.Features._make(feats["net/core/t.c::helper_many"])
    assert (f.static, f.calls, f.callers, f.taken, f.lines, f.out) == (True, 2, 1, 0, 1, 0)
    assert attach.Features._make(feats["net/core/t.c::setup"]).attrs == "__init late_initcall()"
    assert attach.Features._make(feats["api"]).out == 8


def test_function_attrs_keep_what_clean_blanks():
    fns = {f.name: f.attrs for f in extract("t.c", SOURCE.encode()).functions}
    assert fns["fast"] == "__always_inline" and fns["entry_work"] == "__visible noinstr"
    assert fns["kept_apart"] == "noinline" and fns["api"] == "EXPORT_SYMBOL_GPL()" and fns["helper_once"] == ""
    assert fns["work_fn"] == "DECLARE_WORK()" and fns["setup"] == "__init late_initcall()"


def test_merge_hops_and_nearest():
    assert attach.merge_hops([["a", "b", "c", "d"], ["a", "c", "x", "d"], ["a", "y", "d"]]) == \
        ["a", "b", "c", "x", "y", "d"]
    assert attach.nearest([True, False, False, True], 1) == 0  # caller side first
    assert attach.nearest([True, False, False, True], 2) == 3
    assert attach.nearest([False, False], 0) is None


# -- the command -------------------------------------------------------------------------------------------
def test_probes_text_with_symbols(tmp_path):
    m = tmp_path / "System.map"
    m.write_text(SYSTEM_MAP)
    r = run("probes", "sendto", "dev_queue_xmit", "--kernel", MINI, "--socket", "inet:dgram:udp",
            "--symbols", str(m), check_rc=0)
    rows = r.stdout.split("\n\n")[1].splitlines()
    assert rows == [
        "hop                 " + MINI,
        "sys_sendto          yes __x64_sys_sendto,__ia32_sys_sendto",
        "__sys_sendto        yes __sys_sendto",
        "__sock_sendmsg      no",
        "sock_sendmsg_nosec  no",
        "inet_sendmsg        yes inet_sendmsg",
        "udp_sendmsg         yes udp_sendmsg",
        "udp_send_skb        yes udp_send_skb.isra.0",
        "ip_send_skb         yes ip_send_skb",
        "ip_local_out        yes ip_local_out",
        "dst_output          yes dst_output",
        "ip_output           yes ip_output",
        "ip_finish_output    yes ip_finish_output",
        "__ip_finish_output  maybe __ip_finish_output.part.0",
        "ip_finish_output2   no",
        "neigh_output        no",
        "neigh_hh_output     no",
        "dev_queue_xmit      no",
    ]
    assert "  __sock_sendmsg: attach to __sys_sendto (the nearest on the caller side)\n" in r.stdout
    assert "  sock_sendmsg_nosec [" + MINI + "] no: sock_sendmsg_nosec: NOKPROBE_SYMBOL: on the kprobe blacklist; " \
        "attach to inet_sendmsg instead\n" in r.stdout
    assert r.stderr == ""


def test_probes_json_and_bpftrace_predicted():
    doc = json.loads(run("probes", "sendto", "dev_queue_xmit", "--kernel", MINI, "--socket", "inet:dgram:udp",
                         "-f", "json", check_rc=0).stdout)
    hops = {h["function"]: h["versions"][MINI] for h in doc["hops"]}
    assert hops["udp_send_skb"]["prediction"] == "no" and hops["udp_send_skb"]["instead"] == "udp_sendmsg"
    assert hops["udp_send_skb"]["source"] == "predicted"
    assert hops["sys_sendto"]["symbols"] == ["__x64_sys_sendto"]
    assert doc["attachable_everywhere"][:3] == ["sys_sendto", "__sys_sendto", "inet_sendmsg"]
    assert {"hop": "udp_send_skb", "use": "udp_sendmsg", "side": "caller",
            "why": {MINI: "no: static with one call site: inlined into its caller"}} in doc["instead"]
    script = run("probes", "sendto", "dev_queue_xmit", "--kernel", MINI, "--socket", "inet:dgram:udp",
                 "-f", "bpftrace", check_rc=0).stdout
    assert script.startswith("#!/usr/bin/env bpftrace\n")
    assert 'kprobe:__x64_sys_sendto\n{\n  printf("%-7d %-16s sys_sendto\\n", tid, comm);\n}\n' in script
    assert 'printf("%-7d %-16s           udp_sendmsg\\n", tid, comm);' in script
    assert "udp_send_skb" not in script


@pytest.mark.parametrize("args,message", [
    (["--symbols", "9.9=/nonexistent"], "Error: --symbols 9.9=...: 9.9 is not one of the --kernel values"),
    (["--symbols", "/nonexistent/System.map"], "Error: cannot read /nonexistent/System.map"),
    ([], "Error: probes needs at least one --kernel"),
])
def test_probes_usage_errors(args, message):
    kernel = [] if not args else ["--kernel", MINI]
    r = run("probes", "sendto", "dev_queue_xmit", *kernel, *args, check_rc=2)
    assert r.stderr.startswith(message), r.stderr
    assert "\nHint: " in r.stderr and r.stdout == ""


def test_probes_malformed_symbols_and_unknown_function(tmp_path):
    bad = tmp_path / "map"
    bad.write_text("not a symbol table at all\n")
    r = run("probes", "sendto", "dev_queue_xmit", "--kernel", MINI, "--symbols", str(bad), check_rc=2)
    assert r.stderr.startswith(f"Error: {bad} is neither a System.map") and "\nHint: " in r.stderr
    r = run("probes", "sendto", "no_such_function_here", "--kernel", MINI, check_rc=1)
    assert r.stderr.startswith("Error: no function 'no_such_function_here'")


# -- a real build --------------------------------------------------------------------------------------------
def debian_map(version: str):
    """The System.map of Debian's build of linux-source-<version>: cached, else downloaded when kernels are
    required (CI) or KSRCGRAPH_FETCH_SYMBOLS=1; else the test is skipped (the download is ~1 GB)."""
    import debian_symbols

    required = bool(os.environ.get("KSRCGRAPH_REQUIRE_KERNELS"))
    try:
        if not (required or os.environ.get("KSRCGRAPH_FETCH_SYMBOLS")):
            want = debian_symbols.cache_root() / f"System.map-{debian_symbols.source_version(version)}-amd64.xz"
            if not want.is_file():
                pytest.skip(f"no cached System.map of {version} (python tests/debian_symbols.py {version}, "
                            "or KSRCGRAPH_FETCH_SYMBOLS=1)")
        return symbols.read(debian_symbols.system_map(version))
    except debian_symbols.Unavailable as e:
        if required:
            pytest.fail(f"the System.map of Debian's {version} build is required: {e}")
        pytest.skip(str(e))


@pytest.mark.kernel
def test_debian_6_1_system_map_facts(kernel_graph):
    t = debian_map("6.1")
    cg = kernel_graph("6.1")
    got = {n: attach.of_node(cg, cg.lookup(n), t) for n in
           ("dev_queue_xmit", "sock_sendmsg_nosec", "udp_send_skb", "dst_output", "sendto", "neigh_output",
            "ip_rcv_finish_core", "ip_route_input_rcu", "inet_init")}
    assert {n: (a.verdict, a.symbols) for n, a in got.items()} == {
        "dev_queue_xmit": ("yes", ("dev_queue_xmit",)),  # a header inline Debian's build emits once
        "sock_sendmsg_nosec": ("no", ()),
        "udp_send_skb": ("yes", ("udp_send_skb",)),
        "dst_output": ("yes", ("dst_output",)),
        "sendto": ("yes", ("__x64_sys_sendto", "__ia32_sys_sendto")),
        "neigh_output": ("no", ()),
        "ip_rcv_finish_core": ("yes", ("ip_rcv_finish_core.constprop.0",)),
        "ip_route_input_rcu": ("maybe", ("ip_route_input_rcu.part.0",)),
        "inet_init": ("no", ()),
    }
    assert got["dst_output"].reason == "out of line (8 copies: one in each file that kept one out of line)"
    assert got["inet_init"].reason == "inet_init: .init.text: freed after boot"
    pred = {n: attach.of_node(cg, cg.lookup(n)).verdict for n in ("sock_sendmsg_nosec", "neigh_output", "inet_init",
                                                                   "dst_output", "__sys_sendto", "udp_sendmsg")}
    assert pred == {"sock_sendmsg_nosec": "no", "neigh_output": "no", "inet_init": "no", "dst_output": "yes",
                    "__sys_sendto": "yes", "udp_sendmsg": "yes"}


def test_graph_json_nodes_say_whether_they_can_be_attached_to():
    r = run("graph", "--source", str(FIXTURES / "minikernel"), "--format", "json", check_rc=0)
    nodes = {n["name"]: n["attach"] for n in json.loads(r.stdout)["nodes"]}
    assert nodes["INIT_LIST_HEAD"]["prediction"] == "no"  # static inline in a header
    assert nodes["__sock_create"] == {"prediction": "yes", "reason": "a global function: emitted out of line",
                                      "symbols": ["__sock_create"], "traceable": None, "source": "predicted"}
    assert nodes["calloc"]["prediction"] == "maybe" and "widen --scope" in nodes["calloc"]["reason"]  # external

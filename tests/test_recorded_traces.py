"""Recorded truth: call chains a real kernel ran (Debian's own image booted under QEMU, traced with
ftrace's function_graph; tests/traces/ records them, tests/data/recorded_traces_V.json keeps them).

For each scenario, ``path FROM TO --socket S`` (k = 5) must print the recorded chain among its first 3
paths, and as its first path in at least 90% of the scenarios (issue 13). A printed path shows the
recorded chain when every recorded function the graph defines appears on it, in that order: ftrace
shows only what was not inlined, so a printed hop missing from the record may have been inlined at
that call (ip_local_out into ip_send_skb), while a recorded function missing from the path is a
different path. A function outside the scope (kernel/, mm/, arch/) is not on a path the graph can
print and is left out. When the target is a static inline (dev_queue_xmit in 6.x), the record ends
at the function it called, which is left out too.

A miss at rank 1 is listed in FIRST_MISSES with why (checked against the source)."""

from __future__ import annotations

import json
import re

import pytest

from ksrcgraph.refstack.socket_paths import socket_paths

from conftest import ROOT

pytestmark = pytest.mark.kernel

DATA = ROOT / "tests" / "data"
KERNELS = sorted(p.stem.removeprefix("recorded_traces_") for p in DATA.glob("recorded_traces_*.json"))
SCENARIOS = [(v, s) for v in KERNELS
             for s in json.loads((DATA / f"recorded_traces_{v}.json").read_text())["scenarios"]]
RANK_WITHIN = 3
FIRST_SHARE = 0.9

_MCAST6 = ("__udp6_lib_rcv returns __udp6_lib_mcast_deliver(...) when ipv6_addr_is_multicast(daddr), one call like "
           "the unicast udp6_unicast_rcv_skb; nothing in the source marks that test as the rare case (IPv4's "
           "rt_flags & RTCF_MULTICAST is a flag test, which is)")
_FIONREAD = ("FIONREAD is one of the commands do_vfs_ioctl handles itself (for a socket it calls vfs_ioctl from its "
             "switch); the first path printed is the one every other command takes (do_vfs_ioctl returns "
             "-ENOIOCTLCMD, sys_ioctl calls vfs_ioctl); the command is not part of the socket configuration")
_CONNECT = ("release_sock -> __release_sock -> sk_backlog_rcv -> tcp_v*_do_rcv -> tcp_v*_send_reset (the backlog, "
            "a reset on an error label) is a shorter resolving path than the SYN's tcp_v*_connect -> tcp_connect -> "
            "__tcp_transmit_skb, whose two pointers (sk_prot->connect, 13 targets; icsk_af_ops->queue_xmit, 4) "
            "keep their ambiguity cost under --socket although the configuration confirms them")
_PUSH = ("tcp_sendmsg_locked calls __tcp_push_pending_frames itself inside its copy loop when forced_push() (half a "
         "window unpushed), one call shorter than the end-of-send tcp_push -> __tcp_push_pending_frames; nothing "
         "in the source marks forced_push as the rare case")
_HDRINCL = ("raw_sendmsg takes raw_send_hdrinc when inet->hdrincl (set by inet_create for IPPROTO_RAW only), else "
            "ip_append_data + ip_push_pending_frames, two calls longer; the model does not follow flags the "
            "create path sets, so inet:raw does not decide the branch")
# (kernel, scenario id) -> why the recorded chain is not the first path printed (but among the first 3)
FIRST_MISSES: dict[tuple[str, str], str] = {
    **{(v, "udp6-sendto-udp-rcv"): _MCAST6 for v in ("6.1", "6.12")},
    **{(v, "udp4-ioctl-fionread"): _FIONREAD for v in ("6.1", "6.12")},
}
# ... and beyond the first 3 (expected to fail, strictly: a fix makes the test fail until the entry goes)
BEYOND_THREE: dict[tuple[str, str], str] = {
    **{(v, s): _CONNECT for v in ("6.1", "6.12") for s in ("tcp4-connect-xmit", "tcp6-connect-xmit")},
    **{(v, s): _PUSH for v in ("6.1", "6.12") for s in ("tcp4-sendto-transmit", "tcp4-sendto-xmit")},
    **{(v, "raw4-udp-sendto-xmit"): _HDRINCL for v in ("6.1", "6.12")},
}

_CLONE = re.compile(r"\.(?:isra|constprop|part|cold|llvm)\.?\d*.*$")
_SYSCALL = re.compile(r"^(?:__x64_|__ia32_|__se_|__do_|__arm64_)(?:compat_)?sys_(\w+)$")


def graph_name(traced: str) -> str:
    """The source name of a traced function: gcc's clone suffixes dropped, a system call's entry
    stubs (__x64_sys_sendto, __se_sys_sendto, __do_sys_sendto) named as the graph names them."""
    name = _CLONE.sub("", traced.split()[0])
    m = _SYSCALL.match(name)
    return f"sys_{m.group(1)}" if m else name


def collapse(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        if not out or out[-1] != n:
            out.append(n)
    return out


def recorded(cg, sc: dict) -> tuple[str, list[str]]:
    """(start, chain): the recorded chain as the graph names it. After a function outside the scope
    (an asynchronous hand-over: the loopback's receive in softirq, close's deferred fput) the chain
    is compared from the function that follows; when the target is a static inline, the record's
    last function (what the inline called) is left out."""
    defined = {n.name for n in cg.nodes.values() if not n.external}
    names = collapse([graph_name(x) for x in sc["chain"]])
    gaps = [i for i, n in enumerate(names) if n not in defined]
    start = sc["from"]
    if gaps:
        names = names[gaps[-1] + 1 :]
        start = names[0]
    target = sc["to"]
    return start, names[: names.index(target) + 1] if target in names else names[:-1]


def shows(path: list[str], want: list[str]) -> bool:
    """Is want a subsequence of path?"""
    it = iter(path)
    return all(any(p == w for p in it) for w in want)


# system calls whose entry lies in fs/ (the scope needs it, as README says: add fs for read/write/ioctl)
FS_ENTRIES = {"read", "write", "ioctl", "close", "readv", "writev"}


def scope_of(sc: dict) -> tuple[str, ...]:
    return tuple(sc.get("scope") or (("net", "include", "fs") if sc["from"] in FS_ENTRIES else ("net", "include")))


def rank_of(kernel_graph, version: str, sc: dict) -> tuple[int | None, list[list[str]], list[str]]:
    cg = kernel_graph(version, scope_of(sc))
    start, want = recorded(cg, sc)
    res = socket_paths(cg, cg.lookup(start), cg.lookup(sc["to"]), k=5, socket=sc["socket"])
    shown = [[cg.name(n) for n in p.nodes] for p, _r, _cs in res.ordered()]
    rank = next((i + 1 for i, got in enumerate(shown) if shows(got, want)), None)
    return rank, shown, want


_RANKS: dict[tuple[str, str], int | None] = {}


@pytest.mark.parametrize("version,sc", SCENARIOS, ids=[f"{v}-{s['id']}" for v, s in SCENARIOS])
def test_recorded_chain_is_among_the_first_paths(request, kernel_graph, version, sc):
    why = BEYOND_THREE.get((version, sc["id"]))
    if why:
        request.applymarker(pytest.mark.xfail(reason=why, strict=True))
    rank, shown, want = rank_of(kernel_graph, version, sc)
    _RANKS[(version, sc["id"])] = rank
    first = shown[0] if shown else []
    assert rank is not None and rank <= RANK_WITHIN, (
        f"recorded:\n {' > '.join(want)}\nfirst printed:\n {' > '.join(first)}")
    if rank > 1:
        assert (version, sc["id"]) in FIRST_MISSES, f"rank {rank}: a new miss; first printed:\n {' > '.join(first)}"
    else:
        assert (version, sc["id"]) not in FIRST_MISSES, "now first: remove it from FIRST_MISSES"


@pytest.mark.xfail(reason="68 of 82 today (83%): see FIRST_MISSES and BEYOND_THREE", strict=True)
def test_recorded_chain_is_the_first_path_in_most_scenarios(kernel_graph):
    assert len(SCENARIOS) >= 12
    ranks = [_RANKS.get((v, s["id"])) or rank_of(kernel_graph, v, s)[0] for v, s in SCENARIOS]
    first = sum(1 for r in ranks if r == 1)
    assert first / len(ranks) >= FIRST_SHARE, f"first in {first} of {len(ranks)}"

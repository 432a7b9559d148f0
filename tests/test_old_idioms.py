"""Older kernels' idioms, on fixtures written in their style: 2.4 (asmlinkage entries,
sys_socketcall's switch, GNU initializers, sk->prot, net_families[family]->create) and 3.x
(SYSCALL_DEFINE entries calling each other by their sys_ names, COMPAT_SYSCALL_DEFINE)."""

import pytest

from ksrcgraph import pipeline, query

from conftest import FIXTURES, edges_between, kinds_between


@pytest.fixture(scope="module")
def old():
    return pipeline.open_graph(None, str(FIXTURES / "oldkernel"), ("net", "include"))


@pytest.fixture(scope="module")
def k3():
    return pipeline.open_graph(None, str(FIXTURES / "kernel3x"), ("net", "include"))


def test_asmlinkage_entries_and_socketcall_switch(old):
    assert old.lookup("socketcall") == "sys_socketcall"
    callees = {old.name(i.node) for i in query.walk(old, "sys_socketcall", 1, "out")[1:]}
    assert {"sys_socket", "sys_send", "sys_sendto"} <= callees


def test_sk_prot_and_gnu_initializers(old):
    (e,) = edges_between(old, "inet_sendmsg", "udp_sendmsg")
    assert (e.kind, e.text, e.evidence[0][1]) == ("ops", "sk->prot->sendmsg", "udp_prot")
    (e,) = edges_between(old, "sock_sendmsg", "inet_sendmsg")
    assert {s[1] for s in e.evidence} == {"inet_stream_ops", "inet_dgram_ops"}
    (e,) = edges_between(old, "sock_create", "inet_create")
    assert e.text == "net_families[family]->create" and e.evidence[0][1] == "inet_family_ops"


def test_old_chain_send_to_udp(old):
    p = query.find_paths(old, old.lookup("send"), old.lookup("udp_sendmsg"), k=3)
    assert [old.name(n) for n in p[0].nodes] == ["sys_send", "sys_sendto", "sock_sendmsg", "inet_sendmsg",
                                                 "udp_sendmsg"]


def test_syscall_define_calling_sys_entry_is_a_syscall_edge(k3):
    (e,) = edges_between(k3, "sys_send", "sys_sendto")
    assert e.kind == "syscall" and e.evidence[0][1] == "SYSCALL_DEFINE6 sys_sendto"
    assert k3.lookup("socketcall") == "compat_sys_socketcall"  # no sys_socketcall in this tree
    assert kinds_between(k3, "compat_sys_socketcall", "sys_send") == {"syscall"}
    p = query.find_paths(k3, k3.lookup("send"), k3.lookup("inet_sendmsg"), k=1)
    assert [k3.name(n) for n in p[0].nodes] == ["sys_send", "sys_sendto", "sock_sendmsg", "__sock_sendmsg_nosec",
                                                "inet_sendmsg"]

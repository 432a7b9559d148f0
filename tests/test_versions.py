"""Kernel versions: diff's change classes on fixture pairs, diff per socket configuration (what is
a change of the path for a socket, what is only a note) on copies of the minikernel, git tags read
without a checkout, kernel.org downloads (from a local HTTP server), cache info and prune."""

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from ksrcgraph import diff, pipeline, sources
from ksrcgraph.cli.queries import Best, PathQuery, compare_given, compare_paths
from ksrcgraph.errors import SourceError

from conftest import FIXTURES

# A tiny two-file "kernel" in the shape of the send path; each test edits one thing in version B.
BASE = {
    "include/linux/net.h": """
struct socket { const struct proto_ops *ops; };
struct proto_ops { int (*sendmsg)(struct socket *sock, int len); };
int sock_sendmsg(struct socket *sock, int len);
""",
    "net/socket.c": """#include <linux/net.h>
int sock_sendmsg(struct socket *sock, int len)
{
	return sock->ops->sendmsg(sock, len);
}
long sys_sendto(int fd, int len)
{
	struct socket *sock = lookup(fd);

	return sock_sendmsg(sock, len);
}
""",
    "net/ipv4/af_inet.c": """#include <linux/net.h>
static int inet_sendmsg(struct socket *sock, int len)
{
	return xmit_one(len);
}
const struct proto_ops inet_dgram_ops = {
	.sendmsg = inet_sendmsg,
};
int xmit_one(int len)
{
	return dev_queue_xmit(len);
}
int dev_queue_xmit(int len)
{
	return len;
}
""",
}


def tree(tmp_path: Path, name: str, edits: dict[str, str | None]) -> str:
    root = tmp_path / name
    files = {**BASE, **edits}
    for rel, text in files.items():
        if text is None:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(root)


def changes(tmp_path, edits_b, edits_a=None):
    a = pipeline.open_graph(None, tree(tmp_path, "a", edits_a or {}), ("net", "include"))
    b = pipeline.open_graph(None, tree(tmp_path, "b", edits_b), ("net", "include"))
    d = compare_paths(a, b, PathQuery("sys_sendto", "dev_queue_xmit"))
    return [(c.kind, c.function) for c in d.changes], d


def test_identical_versions_have_no_change(tmp_path):
    got, d = changes(tmp_path, {})
    assert got == [] and not d.changed
    assert d.a_in_b == diff.Survival(exists=True, resolves=None, breaks_at=None, socket=None)


def test_renamed_hop(tmp_path):
    sock = BASE["net/socket.c"].replace("sock_sendmsg", "__sock_sendmsg")
    got, d = changes(tmp_path, {"net/socket.c": sock, "include/linux/net.h": BASE["include/linux/net.h"].replace(
        "sock_sendmsg", "__sock_sendmsg")})
    assert got == [("renamed", "__sock_sendmsg")]
    assert d.changes[0].detail == "sock_sendmsg → __sock_sendmsg: the name differs only by prefix or suffix"
    assert d.a_in_b.breaks_at["why"] == "sock_sendmsg is not defined in this kernel's scope"


def test_hop_added_and_removed(tmp_path):
    inet = BASE["net/ipv4/af_inet.c"].replace("return xmit_one(len);", "return dev_queue_xmit(len);")
    got, _ = changes(tmp_path, {"net/ipv4/af_inet.c": inet})
    assert got == [("removed", "xmit_one")]
    got, _ = changes(tmp_path, {}, edits_a={"net/ipv4/af_inet.c": inet})
    assert got == [("added", "xmit_one")]


def test_moved_to_a_header_inline(tmp_path):
    inet = "#include <linux/netdevice.h>\n" + BASE["net/ipv4/af_inet.c"].replace(
        "int dev_queue_xmit(int len)\n{\n\treturn len;\n}\n", "")
    hdr = "static inline int dev_queue_xmit(int len)\n{\n\treturn len;\n}\n"
    got, d = changes(tmp_path, {"net/ipv4/af_inet.c": inet, "include/linux/netdevice.h": hdr})
    assert got == [("moved", "dev_queue_xmit")]
    assert d.changes[0].detail == ("dev_queue_xmit: net/ipv4/af_inet.c:13 → include/linux/netdevice.h:1 "
                                   "(now a static inline in a header)")
    # netdevice.h counts because af_inet.c includes it
    assert d.b.stats["files"] == 4


def test_resolution_changed(tmp_path):
    # the table entry disappears; inet_sendmsg is now stored by an assignment
    inet = BASE["net/ipv4/af_inet.c"].replace("\t.sendmsg = inet_sendmsg,\n", "") + \
        "void inet_setup(struct socket *sock)\n{\n\tsock->ops->sendmsg = inet_sendmsg;\n}\n"
    got, d = changes(tmp_path, {"net/ipv4/af_inet.c": inet})
    assert got == [("resolution changed", "inet_sendmsg")]
    assert d.changes[0].detail.startswith("sock_sendmsg → inet_sendmsg: ops via inet_dgram_ops at net/socket.c:4  →  "
                                          "assign via sock->ops->sendmsg = inet_sendmsg at net/socket.c:4")


def test_condition_changed(tmp_path):
    inet = BASE["net/ipv4/af_inet.c"].replace("\treturn xmit_one(len);", "#ifdef CONFIG_XMIT\n\treturn xmit_one(len);\n#endif")
    got, d = changes(tmp_path, {"net/ipv4/af_inet.c": inet})
    assert got == [("condition changed", "xmit_one")]
    assert d.changes[0].detail == "the call inet_sendmsg → xmit_one is under #if (none) → #if CONFIG_XMIT"


def test_signature_changed(tmp_path):
    inet = BASE["net/ipv4/af_inet.c"].replace("int xmit_one(int len)", "int xmit_one(int len, int flags)")
    got, d = changes(tmp_path, {"net/ipv4/af_inet.c": inet})
    assert got == [("signature changed", "xmit_one")]
    assert d.changes[0].detail == "int xmit_one(int len)  →  int xmit_one(int len, int flags)"


def test_path_removed(tmp_path):
    inet = BASE["net/ipv4/af_inet.c"].replace("return xmit_one(len);", "return 0;")
    got, _ = changes(tmp_path, {"net/ipv4/af_inet.c": inet})
    assert got == [("path removed", "dev_queue_xmit")]


def run(*args, env=None):
    r = subprocess.run([sys.executable, "-m", "ksrcgraph", *args], capture_output=True, text=True,
                       env={**os.environ, "KSRCGRAPH_NO_PROGRESS": "1", **(env or {})}, timeout=300)
    assert "Traceback" not in r.stderr
    return r


def test_diff_command_exit_status_and_formats(tmp_path):
    a = tree(tmp_path, "a", {})
    b = tree(tmp_path, "b", {"net/ipv4/af_inet.c": BASE["net/ipv4/af_inet.c"].replace(
        "int xmit_one(int len)", "int xmit_one(int len, int flags)")})
    same = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", a)
    assert same.returncode == 0 and "no change" in same.stdout
    r = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--format", "json")
    assert r.returncode == 3
    doc = json.loads(r.stdout)
    assert doc["changed"] and [x["socket"] for x in doc["sockets"]] == [None]  # no socket model in this tree
    assert doc["sockets"][0]["changes"][0]["class"] == "signature changed"
    md = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--format", "markdown")
    assert md.returncode == 3 and "| signature changed | `xmit_one` |" in md.stdout
    g = run("diff", "--graph", "--from", a, "--to", b, "--format", "json")
    assert g.returncode == 3
    assert json.loads(g.stdout)["functions"]["signature_changed"][0]["id"] == "xmit_one"
    bad = run("diff", "sendto", "dev_queue_xmit", "--from", "nonsense!", "--to", b)
    assert bad.returncode == 2 and bad.stderr.startswith("Error: 'nonsense!' is neither a kernel version")


# -- per socket configuration, on copies of fixtures/minikernel (a socket model: inet, unix, packet) --------
UDP = "inet:dgram:udp"


def mini(tmp_path: Path, name: str, edits: dict | None = None) -> str:
    """A copy of the minikernel; edits: path -> new text, None (delete) or a function of the old text."""
    root = tmp_path / name
    shutil.copytree(FIXTURES / "minikernel", root)
    for rel, edit in (edits or {}).items():
        p = root / rel
        if edit is None:
            p.unlink()
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(edit(p.read_text()) if callable(edit) else edit)
    return str(root)


def replacing(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)
    return edit


# ip_mc_output: a second function the route code stores in dst->output, alike in name to ip_output
MC_OUTPUT = """
int ip_mc_output(struct sock *sk, struct sk_buff *skb)
{
	skb->dev = skb_dst(skb)->dev;
	return NF_HOOK_COND(NFPROTO_IPV4, NF_INET_POST_ROUTING, sk, skb, ip_finish_output, 1);
}
"""
MC = {
    "net/ipv4/route.c": replacing("\trt->dst.output = ip_output;\n",
                                  "\trt->dst.output = ip_output;\n\tif (dev->mc)\n\t\trt->dst.output = ip_mc_output;\n"),
    "net/ipv4/ip_output.c": lambda t: t + MC_OUTPUT,
    "include/net/dst.h": replacing("int ip_output(struct sock *sk, struct sk_buff *skb);\n",
                                   "int ip_output(struct sock *sk, struct sk_buff *skb);\n"
                                   "int ip_mc_output(struct sock *sk, struct sk_buff *skb);\n"),
}


def graphs(tmp_path, edits_b, edits_a=None):
    a = pipeline.open_graph(None, mini(tmp_path, "a", edits_a), ("net", "include"))
    b = pipeline.open_graph(None, mini(tmp_path, "b", edits_b), ("net", "include"))
    return a, b


def udp_paths(cg, k):
    from ksrcgraph.refstack.socket_paths import socket_paths

    return socket_paths(cg, cg.lookup("sendto"), cg.lookup("dev_queue_xmit"), k=k, socket=UDP).paths


def test_another_member_of_a_pointer_set_is_no_rename(tmp_path):
    # A's path goes dst_output -> ip_output, B's dst_output -> ip_mc_output: both functions exist in
    # both versions, and a UDP socket can take either route in either
    a, b = graphs(tmp_path, MC, MC)
    pa = udp_paths(a, 1)[0]
    pb = next(p for p in udp_paths(b, 2) if "ip_mc_output" in p.nodes)
    assert "ip_output" in pa.nodes and "ip_output" not in pb.nodes
    d = compare_given(a, b, Best(pa), Best(pb), UDP)
    assert d.changes == [] and not d.changed
    assert [(c.kind, c.function) for c in d.notes] == [("another route", "ip_mc_output")]
    assert d.notes[0].detail.startswith("dst_output → ip_output → ip_finish_output  /  "
                                        "dst_output → ip_mc_output → ip_finish_output: both versions (for inet:dgram:udp)")
    # without the reference stack's replays: no note, and still no rename (ip_output is not gone)
    bare = diff.diff_paths(a, b, pa, pb)
    assert sorted((c.kind, c.function) for c in bare.changes) == [("added", "ip_mc_output"), ("removed", "ip_output")]
    # ip_mc_output now goes on through a new function: another member chosen (a note), and the calls
    # A could not make are the change
    mc_finish = MC_OUTPUT.replace("ip_finish_output, 1)", "ip_mc_finish, 1)") + \
        "\nint ip_mc_finish(struct sock *sk, struct sk_buff *skb)\n{\n\treturn __ip_finish_output(sk, skb);\n}\n"
    b2 = pipeline.open_graph(None, mini(tmp_path, "b2", {**MC, "net/ipv4/ip_output.c": lambda t: t + mc_finish}),
                             ("net", "include"))
    pb2 = next(p for p in udp_paths(b2, 2) if "ip_mc_output" in p.nodes)
    d2 = compare_given(a, b2, Best(pa), Best(pb2), UDP)
    assert [(c.kind, c.function) for c in d2.notes] == [("another member", "ip_mc_output")]
    assert [(c.kind, c.function) for c in d2.changes] == [("added", "ip_mc_finish"), ("added", "__ip_finish_output")]
    assert d2.changes[0].detail.startswith("the call ip_mc_output → ip_mc_finish is new (for inet:dgram:udp): "
                                           "before, missing")


def test_other_family_table_is_a_note_not_a_change(tmp_path):
    # another family's proto_ops table lists inet_sendmsg too: the edge's evidence changes, the
    # binding of a UDP socket (sock->ops = inet_dgram_ops) does not
    inet6 = ("#include <linux/net.h>\n#include <net/inet_common.h>\n\n"
             "const struct proto_ops inet6_dgram_ops = {\n\t.family = PF_INET6,\n\t.sendmsg = inet_sendmsg,\n};\n")
    a = mini(tmp_path, "a")
    b = mini(tmp_path, "b", {"net/ipv6/af_inet6.c": inet6})
    r = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--socket", UDP, "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    sec, = json.loads(r.stdout)["sockets"]
    assert sec["socket"] == UDP and sec["changes"] == [] and not sec["changed"]
    note, = sec["notes"]
    assert note["class"] == "other tables changed" and note["function"] == "inet_sendmsg"
    assert note["detail"] == ("sock_sendmsg_nosec → inet_sendmsg: now also inet6_dgram_ops; the binding (for "
                              "inet:dgram:udp) is unchanged (confirmed: sock->ops = inet_dgram_ops "
                              "(net/ipv4/af_inet.c:73): .sendmsg = inet_sendmsg)")
    text = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--socket", UDP)
    assert text.returncode == 0 and "no change\nnotes (not changes of the path):\n  other tables changed" in text.stdout
    bad = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--socket", "bogus:dgram")
    assert bad.returncode == 2 and bad.stderr.startswith("Error: unknown socket family 'bogus'")


def test_other_function_stored_in_the_pointer_is_a_note(tmp_path):
    # the route code may now also store ip_rt_bug in dst->output: the hop dst_output -> ip_output is
    # still bound by the same store
    bug = {"net/ipv4/route.c": replacing("\trt->dst.output = ip_output;\n", "\trt->dst.output = ip_output;\n"
                                         "\tif (!dev)\n\t\trt->dst.output = ip_rt_bug;\n"),
           "net/ipv4/ip_output.c": lambda t: t + "\nint ip_rt_bug(struct sock *sk, struct sk_buff *skb)\n{\n\treturn 0;\n}\n",
           "include/net/dst.h": replacing("int ip_local_deliver(", "int ip_rt_bug(struct sock *sk, struct sk_buff *skb);\n"
                                          "int ip_local_deliver(")}
    r = run("diff", "sendto", "dev_queue_xmit", "--from", mini(tmp_path, "a"), "--to", mini(tmp_path, "b", bug),
            "--socket", UDP)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("notes (not changes of the path):\n  other stores changed  dst_output → ip_output: the pointer may now also "
            "hold ip_rt_bug; the binding (for inet:dgram:udp) is unchanged (confirmed: dst.output ∋ ip_output set by "
            "rt->dst.output = ip_output (net/ipv4/route.c))\n") in r.stdout


def test_binding_change_for_the_socket_is_a_change(tmp_path):
    # UDP sockets now get inet_sockraw_ops: same function, same tables listing it, another binding
    a = mini(tmp_path, "a")
    b = mini(tmp_path, "b", {"net/ipv4/af_inet.c": replacing("\t\t.prot =\t\t&udp_prot,\n\t\t.ops =\t\t&inet_dgram_ops,",
                                                             "\t\t.prot =\t\t&udp_prot,\n\t\t.ops =\t\t&inet_sockraw_ops,")})
    r = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--socket", UDP, "--format", "markdown")
    assert r.returncode == 3, r.stdout + r.stderr
    assert ("| resolution changed | `inet_sendmsg` | sock_sendmsg_nosec → inet_sendmsg: confirmed: sock->ops = "
            "inet_dgram_ops (net/ipv4/af_inet.c:73): .sendmsg = inet_sendmsg  →  confirmed: sock->ops = "
            "inet_sockraw_ops (net/ipv4/af_inet.c:82): .sendmsg = inet_sendmsg |") in r.stdout
    # a table moving down the file is no change
    moved = mini(tmp_path, "moved", {"net/ipv4/af_inet.c": replacing("#define EPROTONOSUPPORT\t93\n",
                                                                     "#define EPROTONOSUPPORT\t93\n\n\n\n")})
    r = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", moved, "--socket", UDP)
    assert r.returncode == 0 and "\nno change\n" in r.stdout, r.stdout


def test_same_version_on_both_sides_is_empty(tmp_path):
    a = mini(tmp_path, "a", MC)
    for args in ([], ["--socket", UDP]):
        r = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", a, "--format", "json", *args)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert not doc["changed"] and all(s["changes"] == [] and s["notes"] == [] for s in doc["sockets"])


def test_without_socket_a_section_per_realising_configuration(tmp_path):
    # A's first path is realised by packet:dgram and packet:raw; B has no AF_PACKET, its first path
    # is inet:raw's
    a = mini(tmp_path, "a")
    b = mini(tmp_path, "b", {"net/packet/af_packet.c": None})
    r = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--format", "json")
    assert r.returncode == 3, r.stdout + r.stderr
    secs = json.loads(r.stdout)["sockets"]
    assert [s["socket"] for s in secs] == ["packet:dgram", "packet:raw", "inet:raw"]
    assert [[c["class"] for c in s["changes"]] for s in secs] == [["path removed"], ["path removed"], []]
    assert secs[0]["no_path_because"] == {"from": None, "to": "unknown socket family 'packet' in this kernel"}
    assert secs[2]["paths"]["from"]["hops"][4]["function"] == "inet_sendmsg"
    text = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b).stdout
    assert "\n== socket packet:dgram\n" in text and "\n== socket inet:raw\n" in text
    same = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", mini(tmp_path, "a2"))
    assert same.returncode == 0 and same.stdout.count("no change") == 2  # packet:dgram, packet:raw


# -- git ------------------------------------------------------------------------------------------
def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_tags_read_without_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    repo = Path(tree(tmp_path, "repo", {}))
    (repo / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 99\nSUBLEVEL = 0\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    git(repo, "tag", "v6.99")
    (repo / "net" / "socket.c").write_text(BASE["net/socket.c"].replace("sock_sendmsg", "__sock_sendmsg"))
    git(repo, "commit", "-qam", "rename")
    git(repo, "tag", "v6.100")
    (repo / "net" / "socket.c").write_text("/* uncommitted work in progress */\n")
    old = sources.open_tree("6.99", str(repo), ("net", "include"))  # "6.99" finds the tag v6.99
    assert old.origin.startswith("git ") and old.version == "6.99.0"
    assert "sock_sendmsg(sock, len)" in (old.root / "net" / "socket.c").read_text()
    new = sources.open_tree("v6.100", str(repo), ("net", "include"))
    assert "__sock_sendmsg" in (new.root / "net" / "socket.c").read_text()
    with pytest.raises(SourceError, match="no tag 'v7'"):
        sources.open_tree("v7", str(repo), ("net",))
    r = run("diff", "sendto", "dev_queue_xmit", "--from", f"{repo}@v6.99", "--to", f"{repo}@v6.100",
            env={"KSRCGRAPH_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 3, r.stderr
    assert "renamed" in r.stdout and "sock_sendmsg → __sock_sendmsg" in r.stdout


# -- downloads ------------------------------------------------------------------------------------------
def kernel_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for rel, text in {**BASE, "Makefile": "VERSION = 9\nPATCHLEVEL = 8\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"linux-9.8/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Mirror:
    """kernel.org's layout on 127.0.0.1: /pub/linux/kernel/v9.x/{linux-9.8.tar.xz, sha256sums.asc}."""

    def __init__(self, body: bytes, sums: str, declared: int | None = None):
        self.body, self.sums, self.declared = body, sums, declared
        self.hits: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                mirror.hits.append(self.path)
                if self.path.endswith("sha256sums.asc"):
                    data = mirror.sums.encode()
                elif self.path.endswith("linux-9.8.tar.xz"):
                    data = mirror.body
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(mirror.declared or len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def with_mirror(monkeypatch, tmp_path, body, sums, declared=None):
    m = Mirror(body, sums, declared)
    monkeypatch.setenv("KSRCGRAPH_MIRROR", m.url)
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KSRCGRAPH_SRC_DIRS", str(tmp_path / "nothing"))
    return m


def test_download_verified_and_used_once(tmp_path, monkeypatch):
    body = kernel_tarball()
    m = with_mirror(monkeypatch, tmp_path, body, f"{hashlib.sha256(body).hexdigest()}  linux-9.8.tar.xz\n")
    try:
        t = sources.open_tree("9.8", None, ("net", "include"))
        assert t.version == "9.8" and (t.root / "net" / "socket.c").is_file()
        assert (tmp_path / "cache" / "downloads" / "linux-9.8.tar.xz").is_file()
        hits = len(m.hits)
        sources.open_tree("9.8", None, ("net", "include"))  # cached: no network
        assert len(m.hits) == hits
        monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
        assert pipeline.open_graph("9.8", None, ("net", "include")).lookup("sendto") == "sys_sendto"
    finally:
        m.close()


def test_download_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    body = kernel_tarball()
    m = with_mirror(monkeypatch, tmp_path, body, f"{'0' * 64}  linux-9.8.tar.xz\n")
    try:
        with pytest.raises(SourceError, match="does not match its published sha256"):
            sources.open_tree("9.8", None, ("net",))
    finally:
        m.close()
    assert not list((tmp_path / "cache" / "downloads").iterdir())
    assert not (tmp_path / "cache" / "trees" / "9.8" / "net").exists()


def test_truncated_download_leaves_nothing(tmp_path, monkeypatch):
    body = kernel_tarball()
    m = with_mirror(monkeypatch, tmp_path, body[: len(body) // 2], f"{hashlib.sha256(body).hexdigest()}  linux-9.8.tar.xz\n",
                    declared=len(body))
    try:
        with pytest.raises(SourceError, match="truncated|failed after"):
            sources.open_tree("9.8", None, ("net",))
    finally:
        m.close()
    assert not list((tmp_path / "cache" / "downloads").iterdir())


def test_unknown_version_on_mirror_and_offline(tmp_path, monkeypatch):
    m = with_mirror(monkeypatch, tmp_path, b"", "0" * 64 + "  linux-9.8.tar.xz\n")
    try:
        with pytest.raises(SourceError, match="lists no linux-9.7.tar.xz"):
            sources.open_tree("9.7", None, ("net",))
        monkeypatch.setenv("KSRCGRAPH_OFFLINE", "1")
        hits = len(m.hits)
        with pytest.raises(SourceError, match="KSRCGRAPH_OFFLINE forbids downloading"):
            sources.open_tree("9.8", None, ("net",))
        assert len(m.hits) == hits
    finally:
        m.close()


def test_sources_cache_info_and_prune(tmp_path, monkeypatch):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    a = tree(tmp_path, "a", {})
    gone = tree(tmp_path, "gone", {"net/extra.c": "int extra(void) { return 1; }\n"})
    env = {"KSRCGRAPH_CACHE_DIR": str(tmp_path / "cache")}
    assert run("fetch", "x", "--source", a, env=env).returncode == 0
    assert run("stats", "--source", gone, env=env).returncode == 0
    info = json.loads(run("cache", "info", "--format", "json", env=env).stdout)
    assert len(info["manifests"]) == 2 and info["blobs"] == 4  # the three shared files once, extra.c
    shutil.rmtree(gone)
    out = run("cache", "prune", env=env)
    assert out.returncode == 0 and out.stdout.startswith("removed 1 manifests, 1 file facts, 1 graphs")
    info = json.loads(run("cache", "info", "--format", "json", env=env).stdout)
    assert len(info["manifests"]) == 1 and info["blobs"] == 3
    listing = run("sources", env=env).stdout
    assert "x          " in listing and a in listing


def test_same_binding_written_differently_is_no_change(tmp_path):
    # 2.6.32 -> 3.10: `rth->u.dst.output = ip_output` became `rth->dst.output = ip_output`; the local
    # renamed, the #ifdef __KERNEL__ around a header dropped, `unsigned` spelt `unsigned int`: the path
    # did not change
    a = mini(tmp_path, "a", {
        "net/ipv4/route.c": replacing("\trt->dst.output = ip_output;\n", "\tstruct rtable *rth = rt;\n\n"
                                      "\trth->dst.output = ip_output;\n"),
        "include/net/dst.h": lambda t: "#ifdef __KERNEL__\n" + t + "\n#endif\n"})
    b = mini(tmp_path, "b")
    r = run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--socket", UDP)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "condition changed" not in r.stdout and "resolution changed" not in r.stdout

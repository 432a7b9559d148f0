"""Many versions at once: ``index`` over several trees (each distinct file content parsed once), and
``matrix`` — a row per version with diff's change classes — on copies of the minikernel with known
changes; one run on the real kernels (5.10, 6.1, 6.12, 7.2) checked against their sources."""

import json

import pytest
from test_versions import UDP, mini, replacing, run

from conftest import kernel_available

# Each version edits the one before: a rename, a hop added, the socket's binding, then no UDP path at all.
RENAME = {"net/ipv4/udp.c": replacing("udp_send_skb(", "udp_send_skb_one(")}
ADDED = {"net/ipv4/ip_output.c": replacing(
    "int ip_send_skb(struct sk_buff *skb)\n{\n\treturn ip_local_out(skb->sk, skb);\n}\n",
    "static int ip_send_prepare(struct sk_buff *skb)\n{\n\treturn ip_local_out(skb->sk, skb);\n}\n\n"
    "int ip_send_skb(struct sk_buff *skb)\n{\n\treturn ip_send_prepare(skb);\n}\n")}
RAW_OPS = {"net/ipv4/af_inet.c": replacing("\t\t.prot =\t\t&udp_prot,\n\t\t.ops =\t\t&inet_dgram_ops,",
                                           "\t\t.prot =\t\t&udp_prot,\n\t\t.ops =\t\t&inet_sockraw_ops,")}
NO_SEND = {"net/ipv4/udp.c": replacing("\t.sendmsg\t= udp_sendmsg,\n", "")}


def chain(*edits: dict) -> dict:
    """The edits of several versions applied one after the other (per file, in order)."""
    out: dict = {}
    for e in edits:
        for rel, f in e.items():
            prev = out.get(rel)
            out[rel] = f if prev is None else (lambda t, f=f, prev=prev: f(prev(t)))
    return out


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("matrix")
    steps = [{}, RENAME, ADDED, RAW_OPS, NO_SEND]
    return [mini(tmp, f"v{i}", chain(*steps[: i + 1])) for i in range(len(steps))]


def kernels(paths):
    return [x for p in paths for x in ("--kernel", p)]


def test_matrix_rows_and_change_classes(versions):
    r = run("matrix", "sendto", "dev_queue_xmit", *kernels(versions), "--socket", UDP, "--format", "json")
    assert r.returncode == 3, r.stderr  # the last version has no path a UDP socket takes
    doc = json.loads(r.stdout)
    assert r.stdout == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"  # stable, sorted keys
    rows = doc["rows"]
    assert doc["socket"] == UDP and doc["socket_chosen_from"] is None and not doc["all_resolve"]
    assert [r_["spec"] for r_ in rows] == versions
    assert [(r_["exists"], r_["resolves"]) for r_ in rows] == [(True, True)] * 4 + [(True, False)]
    assert [None if r_["changes"] is None else [(c["class"], c["function"]) for c in r_["changes"]] for r_ in rows] == [
        None,
        [("renamed", "udp_send_skb_one")],
        [("added", "ip_send_prepare")],
        [("resolution changed", "inet_sendmsg")],
        [("path removed", "dev_queue_xmit")],
    ]
    hops = [[h["function"] for h in r_["path"]["hops"]] if r_["path"] else None for r_ in rows]
    assert hops[0] == ["sys_sendto", "__sys_sendto", "__sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg",
                       "udp_sendmsg", "udp_send_skb", "ip_send_skb", "ip_local_out", "dst_output", "ip_output",
                       "ip_finish_output", "__ip_finish_output", "ip_finish_output2", "neigh_output",
                       "neigh_hh_output", "dev_queue_xmit"]
    assert hops[1] == [h.replace("udp_send_skb", "udp_send_skb_one") for h in hops[0]]
    assert hops[2] == hops[1][:8] + ["ip_send_prepare"] + hops[1][8:] == hops[3]
    assert hops[4] is None and rows[4]["no_path_because"] == f"no path a {UDP} socket takes"
    inet = rows[0]["path"]["hops"][4]
    assert (inet["kind"], inet["verdict"], inet["state"]) == (
        "ops", "confirmed", "confirmed: sock->ops = inet_dgram_ops (net/ipv4/af_inet.c:73): .sendmsg = inet_sendmsg")
    assert rows[3]["path"]["hops"][4]["state"].startswith("confirmed: sock->ops = inet_sockraw_ops")
    assert inet["attach"] == {"prediction": "yes", "symbols": ["inet_sendmsg"]}  # where a probe can go
    # the previous version's path replayed here: the rename breaks it, the binding change does not
    assert rows[1]["previous_path_here"]["breaks_at"]["why"] == "udp_send_skb is not defined in this kernel's scope"
    assert rows[3]["previous_path_here"] == {"breaks_at": None, "exists": True, "resolves": True, "socket": UDP}


def test_matrix_path_is_the_first_path_shows(versions):
    m = json.loads(run("matrix", "sendto", "dev_queue_xmit", *kernels(versions[2:4]), "--socket", UDP, "-f", "json").stdout)
    for spec, row in zip(versions[2:4], m["rows"]):
        p = json.loads(run("path", "sendto", "dev_queue_xmit", "--source", spec, "--socket", UDP, "-f", "json").stdout)
        first = p["paths"][0]
        assert [(h["function"], h["file"], h["line"]) for h in row["path"]["hops"]] == \
            [(h["function"], h["file"], h["line"]) for h in first["hops"]]
        assert [h["verdict"] for h in row["path"]["hops"][1:]] == [h["verdict"] for h in first["replay"]["hops"]]


def test_matrix_changes_are_what_diff_reports(versions):
    a, b = versions[2], versions[3]
    m = json.loads(run("matrix", "sendto", "dev_queue_xmit", *kernels([a, b]), "--socket", UDP, "-f", "json").stdout)
    d = json.loads(run("diff", "sendto", "dev_queue_xmit", "--from", a, "--to", b, "--socket", UDP, "-f", "json").stdout)
    assert m["rows"][1]["changes"] == d["sockets"][0]["changes"]


def test_matrix_text_markdown_html(versions, tmp_path):
    args = ["matrix", "sendto", "dev_queue_xmit", *kernels(versions[:4]), "--socket", UDP]
    text = run(*args)
    assert text.returncode == 0, text.stderr  # every version has a resolving path
    lines = text.stdout.splitlines()
    assert lines[0] == f"sendto → dev_queue_xmit  (socket {UDP})"
    assert lines[2].split() == ["kernel", "path", "resolves", "calls", "changes", "from", "the", "previous", "version"]
    assert [x.split()[1:] for x in lines[3:7]] == [["yes", "yes", "16", "(first)"],
                                                   ["yes", "yes", "16", "renamed", "udp_send_skb_one"],
                                                   ["yes", "yes", "17", "added", "ip_send_prepare"],
                                                   ["yes", "yes", "17", "resolution", "changed", "inet_sendmsg"]]
    assert f"\n== {versions[3]}\n  the same functions as {versions[2]}\n  changes:\n    resolution changed  " \
           "sock_sendmsg_nosec → inet_sendmsg: confirmed: sock->ops = inet_dgram_ops" in text.stdout
    md = run(*args, "--format", "markdown").stdout.splitlines()
    assert md[0] == f"### `sendto` → `dev_queue_xmit` over 4 kernels (socket `{UDP}`)"
    assert md[2:4] == ["| kernel | path | resolves | calls | changes from the previous version |", "|---|---|---|---|---|"]
    assert md[4:8] == [f"| {versions[0]} | ✅ | ✅ | 16 | — |", f"| {versions[1]} | ✅ | ✅ | 16 | renamed `udp_send_skb_one` |",
                       f"| {versions[2]} | ✅ | ✅ | 17 | added `ip_send_prepare` |",
                       f"| {versions[3]} | ✅ | ✅ | 17 | resolution changed `inet_sendmsg` |"]
    assert md.count("</details>") == 4
    out = tmp_path / "m.html"
    r = run(*args, "--format", "html", "-o", str(out))
    assert r.returncode == 0 and r.stdout == ""
    page = out.read_text()
    assert page.startswith("<!doctype html>") and page.count("<tr>") == 5 and "<style>" in page
    assert not any(x in page for x in ("<script", "<link", "src=", "href=", "http:", "https:"))  # self-contained
    assert "<li><b>renamed</b> <code>udp_send_skb_one</code>" in page


def test_matrix_without_socket_replays_every_row_for_one_configuration(versions):
    r = run("matrix", "sendto", "dev_queue_xmit", *kernels(versions[:2]), "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # the first path `path` shows on v0 is AF_PACKET's (the shortest a configuration realises)
    assert doc["socket"] == "packet:dgram" and doc["socket_chosen_from"] == versions[0]
    assert [c["class"] for c in doc["rows"][1]["changes"]] == []  # the UDP-only rename is not on its path
    assert doc["rows"][0]["path"]["hops"][4]["function"] == "packet_sendmsg"


def test_matrix_errors(versions, tmp_path):
    none = run("matrix", "sendto", "dev_queue_xmit")
    assert none.returncode == 2 and none.stderr.startswith("Error: matrix needs at least one --kernel\nHint: ")
    unknown = run("matrix", "sendto", "no_such_fn", *kernels(versions[:2]))
    assert unknown.returncode == 1 and unknown.stderr.startswith("Error: no function 'no_such_fn'")
    bad = run("matrix", "sendto", "dev_queue_xmit", *kernels(versions[:2]), "--socket", "bogus:dgram")
    assert bad.returncode == 2 and bad.stderr.startswith("Error: unknown socket family 'bogus'")
    missing = run("matrix", "sendto", "dev_queue_xmit", "--kernel", versions[0], "--kernel", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "Hint: " in missing.stderr
    # a name one version lacks is a result there, not an error
    part = run("matrix", "sendto", "ip_send_prepare", *kernels(versions[1:3]), "--socket", UDP, "-f", "json")
    assert part.returncode == 3
    rows = json.loads(part.stdout)["rows"]
    assert [(x["exists"], x["resolves"]) for x in rows] == [(False, False), (True, True)]
    assert rows[0]["no_path_because"].startswith("no function 'ip_send_prepare'")
    assert [c["class"] for c in rows[1]["changes"]] == ["path added"]


def test_index_several_versions_parses_each_content_once(versions, tmp_path):
    env = {"KSRCGRAPH_CACHE_DIR": str(tmp_path / "cache")}
    r = run("index", *kernels(versions[:3]), "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    files = [v["files"] for v in doc["versions"]]
    assert files == [37, 37, 37]
    # v1 changes udp.c, v2 also ip_output.c: 37 + 1 + 1 distinct contents, each parsed once
    assert doc["total"] == {**doc["total"], "files": 111, "distinct_contents": 39, "parsed": 39}
    assert [(v["parsed"], v["reused"], v["linked"]) for v in doc["versions"]] == [(37, 0, True), (1, 36, True),
                                                                                 (1, 36, True)]
    assert [x.split(":")[0] for x in r.stderr.splitlines()] == [
        "sources 1/3", "sources 2/3", "sources 3/3", "parse 1/3", "parse 2/3", "parse 3/3", "link 1/3", "link 2/3",
        "link 3/3"]
    # again, with one more version: only its changed files are parsed, the others are all in the cache
    again = json.loads(run("index", *kernels(versions[:4]), "-f", "json", "--quiet", env=env).stdout)
    assert [(v["parsed"], v["linked"]) for v in again["versions"]] == [(0, False), (0, False), (0, False), (1, True)]
    assert again["total"]["parsed"] == 1 and again["total"]["distinct_contents"] == 40
    text = run("index", *kernels(versions[:2]), "--quiet", env=env)
    assert text.returncode == 0 and text.stderr == ""
    assert text.stdout.splitlines()[-1].startswith("2 versions, scope net,include: 74 files, 38 distinct contents; "
                                                   "0 parsed in this run;")


# -- the real kernels ---------------------------------------------------------------------------------------
REAL = ["5.10", "6.1", "6.12", "7.2"]
UDP_SEND = ["sys_sendto", "__sys_sendto", "__sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "udp_sendmsg",
            "udp_send_skb", "ip_send_skb", "ip_local_out", "dst_output", "ip_output", "ip_finish_output",
            "__ip_finish_output", "ip_finish_output2", "neigh_output", "neigh_hh_output", "dev_queue_xmit"]
# read by hand in Debian's trees (checked where the version is the one read): the call at each hop is in
# the function before it (__sys_sendto: `return __sock_sendmsg(sock, &msg)` / `err = __sock_sendmsg(...)`;
# sock_sendmsg_nosec: INDIRECT_CALL_INET(sock->ops->sendmsg, ...); inet_sendmsg:
# INDIRECT_CALL_2(sk->sk_prot->sendmsg, ...), in 7.2 through `prot = READ_ONCE(sk->sk_prot)`; dst_output:
# skb_dst(skb)->output, set by `rt->dst.output = ip_output` in route.c; ip_output: NF_HOOK_COND(...,
# ip_finish_output, ...); neigh_hh_output: `return dev_queue_xmit(skb)`)
HOPS = {
    "5.10.223": {"__sock_sendmsg": "net/socket.c:658", "udp_sendmsg": "net/ipv4/udp.c:1051",
                 "ip_output": "net/ipv4/ip_output.c:430", "dev_queue_xmit": "net/core/dev.c:4214"},
    "6.1.192": {"inet_sendmsg": "net/ipv4/af_inet.c:834", "ip_send_skb": "net/ipv4/ip_output.c:1612",
                "dst_output": "include/net/dst.h:454", "dev_queue_xmit": "include/linux/netdevice.h:3058"},
    "6.12.117": {"__sys_sendto": "net/socket.c:2161", "udp_send_skb": "net/ipv4/udp.c:971",
                 "neigh_output": "include/net/neighbour.h:534", "dev_queue_xmit": "include/linux/netdevice.h:3150"},
    "7.2.13": {"sock_sendmsg_nosec": "net/socket.c:773", "udp_sendmsg": "net/ipv4/udp.c:1253",
               "ip_finish_output2": "net/ipv4/ip_output.c:199", "dev_queue_xmit": "include/linux/netdevice.h:3453"},
}


@pytest.mark.kernel
def test_matrix_on_real_kernels():
    missing = [v for v in REAL if not kernel_available(v)]
    if missing:
        pytest.skip(f"kernel sources missing: {', '.join(missing)}")
    r = run("matrix", "sendto", "dev_queue_xmit", *kernels(REAL), "--socket", UDP, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["rows"]
    assert [x["spec"] for x in rows] == REAL and all(x["exists"] and x["resolves"] for x in rows)
    for row in rows:
        hops = row["path"]["hops"]
        assert [h["function"] for h in hops] == UDP_SEND, row["spec"]
        kinds = {h["function"]: (h["kind"], h["verdict"]) for h in hops}
        assert kinds["inet_sendmsg"] == kinds["udp_sendmsg"] == ("ops", "confirmed")
        assert kinds["ip_output"] == ("assign", "confirmed") and kinds["ip_finish_output"][0] == "param"
        attachable = {h["function"]: h["attach"]["prediction"] for h in hops}  # source-only prediction
        assert attachable["udp_sendmsg"] == attachable["ip_output"] == "yes"  # global functions
        assert attachable["neigh_hh_output"] == "no"  # static inline in a header
        where = {h["function"]: f"{h['file']}:{h['line']}" for h in hops}
        assert where["dev_queue_xmit"].startswith("net/core/dev.c:" if row["spec"] == "5.10" else
                                                  "include/linux/netdevice.h:")
        for fn, at in HOPS.get(row["kernel"]["version"], {}).items():
            assert where[fn] == at, (row["spec"], fn)
    # dev_queue_xmit became a static inline around __dev_queue_xmit in 6.0; nothing else on the path changed
    assert [None if x["changes"] is None else [(c["class"], c["function"]) for c in x["changes"]] for x in rows] == \
        [None, [("moved", "dev_queue_xmit")], [], []]
    assert rows[1]["changes"][0]["detail"].endswith("(now a static inline in a header)")
    # 7.2 dropped DCCP and UDP-Lite (other tables that listed the same functions): notes, not changes
    assert any("no longer udplite_prot" in n["detail"] for n in rows[3]["notes"])

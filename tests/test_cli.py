"""The command as users run it: output formats, exit statuses, one-line errors with hints."""

import json
import os
import shutil
import subprocess
import sys

from conftest import FIXTURES

MINI = str(FIXTURES / "minikernel")


def run(*args, check_rc=None):
    r = subprocess.run([sys.executable, "-m", "ksrcgraph", *args], capture_output=True, text=True,
                       env={**os.environ, "KSRCGRAPH_NO_PROGRESS": "1"}, timeout=600)
    assert "Traceback" not in r.stderr, r.stderr
    if check_rc is not None:
        assert r.returncode == check_rc, (r.returncode, r.stdout, r.stderr)
    return r


def test_path_text_shows_chain_and_resolution():
    r = run("path", "sendto", "dev_queue_xmit", "--source", MINI, "--scope", "net,include,fs", "--via",
            "udp_sendmsg", check_rc=0)
    out = r.stdout
    assert out.startswith("sendto → dev_queue_xmit")
    assert "READ_ONCE(sock->ops)->sendmsg → inet_sendmsg via inet_stream_ops (net/ipv4/af_inet.c:69); inet_dgram_ops (net/ipv4/af_inet.c:77)" in out
    assert "skb_dst(skb)->output → ip_output: rt->dst.output = ip_output (net/ipv4/route.c:15)" in out
    assert "ip_finish_output passed as okfn to NF_HOOK_COND, which calls it (include/linux/netfilter.h:27)" in out
    assert r.stderr == ""


def test_path_json_schema():
    r = run("path", "sendto", "dev_queue_xmit", "--source", MINI, "--via", "udp_sendmsg", "-k", "2",
            "--format", "json", check_rc=0)
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 1
    assert doc["kernel"]["scope"] == ["net", "include"]
    assert 1 <= len(doc["paths"]) <= 2
    hops = doc["paths"][0]["hops"]
    assert hops[0]["function"] == "sys_sendto" and hops[0]["edge"] is None
    for h in hops[1:]:
        assert set(h) >= {"function", "file", "line", "edge"}
        assert set(h["edge"]) >= {"kind", "site", "evidence"}
    inet = next(h for h in hops if h["function"] == "inet_sendmsg")
    assert inet["edge"]["kind"] == "ops" and inet["edge"]["site"] == "net/socket.c:115"
    assert inet["edge"]["evidence"][0] == {"via": "ops", "what": "inet_stream_ops", "at": "net/ipv4/af_inet.c:69"}
    assert inet["edge"]["also"][0]["kind"] == "indirect_candidate"


def test_graph_json_and_dot():
    doc = json.loads(run("graph", "--source", MINI, "--format", "json", check_rc=0).stdout)
    assert {"id", "name", "file", "line"} <= set(doc["nodes"][0])
    assert {"from", "to", "kind", "site"} <= set(doc["edges"][0])
    ids = {n["id"] for n in doc["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in doc["edges"])
    assert doc["nodes"] == sorted(doc["nodes"], key=lambda n: n["id"])
    dot = run("graph", "--source", MINI, "--around", "ip_output", "--depth", "1", "--format", "dot", check_rc=0).stdout
    assert dot.startswith('digraph "1 calls around ip_output')
    assert '"ip_output" -> "net/ipv4/ip_output.c::ip_finish_output" [style=dotted, color=purple, label="param"];' in dot
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
        assert svg.returncode == 0 and "<svg" in svg.stdout


def test_callers_text():
    r = run("callers", "dev_queue_xmit", "--source", MINI, check_rc=0)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("dev_queue_xmit  include/linux/netdevice.h:")
    assert any(line.strip().startswith("neigh_hh_output  include/net/neighbour.h:") for line in lines)


def test_unknown_function_suggests_names():
    r = run("path", "sendtoo", "dev_queue_xmit", "--source", MINI, check_rc=1)
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"Error: no function 'sendtoo' in {MINI} (net,include)"
    assert lines[1].startswith("Hint: did you mean ") and "sendto" in lines[1]


def test_ambiguous_function_lists_candidates(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "include").mkdir()
    (tmp_path / "net" / "a.c").write_text("static int helper(void) { return 0; }\nint a(void) { return helper(); }\n")
    (tmp_path / "net" / "b.c").write_text("static int helper(void) { return 1; }\n")
    r = run("callers", "helper", "--source", str(tmp_path), check_rc=1)
    assert r.stderr.startswith("Error: 'helper' is ambiguous: net/a.c::helper (net/a.c:1), net/b.c::helper (net/b.c:1)")
    assert "Hint: name one of them exactly, e.g. 'net/a.c::helper'" in r.stderr
    ok = run("callers", "net/a.c::helper", "--source", str(tmp_path), check_rc=0)
    assert "a  net/a.c:2" in ok.stdout


def test_no_path_is_a_result_not_an_error():
    r = run("path", "dev_queue_xmit", "sendto", "--source", MINI, check_rc=0)
    assert "no path found" in r.stdout
    doc = json.loads(run("path", "dev_queue_xmit", "sendto", "--source", MINI, "--format", "json", check_rc=0).stdout)
    assert doc["paths"] == []


def test_missing_and_bad_sources():
    r = run("path", "a", "b", "--kernel", "9.99", check_rc=1)
    assert r.stderr.startswith("Error: no sources for kernel 9.99: not in the cache, not in /usr/src, and "
                               "http://127.0.0.1:9 cannot be reached")
    assert "Hint: install Debian's linux-source-9.99" in r.stderr
    r = run("path", "a", "b", "--kernel", "six", check_rc=2)
    assert r.stderr.startswith("Error: invalid kernel version 'six'")
    r = run("path", "a", "b", "--source", "/nonexistent/tree", check_rc=1)
    assert r.stderr.startswith("Error: source /nonexistent/tree does not exist")
    r = run("path", "a", "b", "--source", MINI, "--scope", "../etc", check_rc=2)
    assert r.stderr.startswith("Error: invalid scope directory '../etc'")
    r = run("path", "a", "b", "--source", MINI, "--scope", "net,sound", check_rc=1)
    assert "lacks scope directory sound" in r.stderr
    r = run("path", "a", "b", "--bogus", check_rc=2)
    assert "No such option" in r.stderr


def _without_file_capabilities() -> None:
    """Root reads any directory through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: drop both from the
    bounding set before exec, so the command (still uid 0) meets permission bits like any user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_directory(tmp_path):
    d = tmp_path / "tree"
    (d / "net").mkdir(parents=True)
    d.chmod(0)
    try:
        r = subprocess.run([sys.executable, "-m", "ksrcgraph", "stats", "--source", str(d)], capture_output=True,
                           text=True, env={**os.environ, "KSRCGRAPH_NO_PROGRESS": "1"}, timeout=600,
                           preexec_fn=_without_file_capabilities if os.geteuid() == 0 else None)
        assert "Traceback" not in r.stderr, r.stderr
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert r.stderr.startswith("Error: cannot read directory"), r.stderr
    finally:
        d.chmod(0o755)


def test_stats_reports_counts():
    r = run("stats", "--source", MINI, "--scope", "net,include,fs", "--format", "json", check_rc=0)
    st = json.loads(r.stdout)["stats"]
    assert st["files"] == len([p for p in (FIXTURES / "minikernel").rglob("*.[ch]")
                               if p.parts[len(FIXTURES.parts) + 1] in ("net", "include", "fs")])
    assert st["indirect_sites"] > 10 and st["resolved_ops"] > 5 and st["error_nodes"] == 0


def test_report_files(tmp_path):
    for fmt in ("text", "json", "dot", "html", "svg"):
        out = tmp_path / f"r.{fmt}"
        r = run("report", "sendto", "dev_queue_xmit", "--source", MINI, "--socket", "inet:dgram:udp", "-k", "1",
                "--format", fmt, "-o", str(out))
        if fmt in ("html", "svg") and not shutil.which("dot"):
            assert r.returncode == 1 and "needs Graphviz" in r.stderr
            continue
        assert r.returncode == 0, r.stderr
        body = out.read_text()
        assert {"text": "udp_sendmsg", "json": '"schema_version": 1', "dot": "digraph", "html": "<svg",
                "svg": "<svg"}[fmt] in body


def test_output_file_is_written_safely(tmp_path):
    # -o used to rename a temporary file over whatever it named: a symlink became a file, a FIFO or a
    # device node was replaced, a private file's mode 600 became 644
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    args = ("report", "sendto", "dev_queue_xmit", "--source", MINI, "-k", "1", "--format", "text")
    run(*args, "-o", str(link), check_rc=0)
    assert link.is_symlink() and "udp_sendmsg" in real.read_text()
    private = tmp_path / "private.txt"
    private.write_text("")
    private.chmod(0o600)
    run(*args, "-o", str(private), check_rc=0)
    assert private.stat().st_mode & 0o777 == 0o600 and "udp_sendmsg" in private.read_text()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run(*args, "-o", str(fifo), check_rc=1)
    assert r.stderr.startswith("Error: refusing to write") and "Hint:" in r.stderr
    assert fifo.exists() and not fifo.is_file()


def test_diff_of_names_no_version_has_is_an_error():
    r = run("diff", "nosuch1", "nosuch2", "--from", MINI, "--to", MINI, check_rc=1)
    assert r.stderr.startswith("Error: no function 'nosuch1'") and "Hint:" in r.stderr and r.stdout == ""


def test_replay_with_a_bad_socket_is_a_usage_error(tmp_path):
    saved = tmp_path / "p.json"
    saved.write_text(run("path", "sendto", "dev_queue_xmit", "--source", MINI, "-k", "1", "--format", "json",
                         check_rc=0).stdout)
    for bad in ("bad:::x", "nosuchfam:dgram"):
        r = run("replay", str(saved), "--source", MINI, "--socket", bad, check_rc=2)
        assert r.stderr.startswith("Error: ") and "Hint:" in r.stderr and r.stdout == ""

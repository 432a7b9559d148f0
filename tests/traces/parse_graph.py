#!/usr/bin/env python3
"""Turn the recorder's serial stream (see init.c) into call chains.

The stream holds, per traced syscall, ftrace function_graph output framed by
`@@ BEGIN <trace-id> <graph functions>` / `@@ END <trace-id>`, plus the
kernel's available_filter_functions (trace-id `__filters__`).

For each scenario below, the chain is the list of functions open on the
graph's stack at the FIRST entry of the target function, in order, ending
with the target: the syscall entry, its callees down to the target.
Entries reached inside a hardware interrupt (a timer tick that happened to
land there) are skipped; softirq work run synchronously from
local_bh_enable (loopback receive) is part of the syscall and kept.

Standard library only.  Usage:

    parse_graph.py DATA.log --kernel 6.1 --package NAME=VER --qemu CMD \
        -o recorded_traces_6.1.json --traceable traceable_6.1.txt.gz
"""
import argparse
import gzip
import json
import re
import sys

# (id, trace-id, from, [targets, preferred first], socket, syscall, start)
# `targets`: the first name of the list that occurs in the trace is used, so
# a `static inline` (never traced) falls back to the function it wraps.
# `start`: for a sub-chain, the function the chain starts at (else the root).
XMIT = ["dev_queue_xmit", "__dev_queue_xmit"]
SCENARIOS = [
    ("udp4-sendto-xmit", "udp4-sendto", "sendto", XMIT, "inet:dgram:udp", "sendto", None),
    ("udp4-sendto-udp-rcv", "udp4-sendto", "sendto", ["udp_queue_rcv_skb"], "inet:dgram:udp", "sendto", None),
    ("udp4-sendto-enqueue", "udp4-sendto", "sendto", ["__udp_enqueue_schedule_skb"], "inet:dgram:udp", "sendto", None),
    ("netif-receive-udp-rcv", "udp4-sendto", "__netif_receive_skb", ["udp_queue_rcv_skb"], "inet:dgram:udp", "sendto", "__netif_receive_skb"),
    ("udp4-sendmsg-xmit", "udp4-sendmsg", "sendmsg", XMIT, "inet:dgram:udp", "sendmsg", None),
    ("udp6-sendto-xmit", "udp6-sendto", "sendto", XMIT, "inet6:dgram:udp", "sendto", None),
    ("udp6-sendto-udp-rcv", "udp6-sendto", "sendto", ["udpv6_queue_rcv_skb"], "inet6:dgram:udp", "sendto", None),
    ("udp4-recvfrom-recv", "udp4-recvfrom", "recvfrom", ["__skb_recv_udp"], "inet:dgram:udp", "recvfrom", None),
    ("udp4-recvfrom-copy", "udp4-recvfrom-big", "recvfrom", ["skb_copy_datagram_iter"], "inet:dgram:udp", "recvfrom", None),
    ("udp4-recvmsg", "udp4-recvmsg", "recvmsg", ["udp_recvmsg"], "inet:dgram:udp", "recvmsg", None),
    ("udp4-write-sendmsg", "udp4-write", "write", ["udp_sendmsg"], "inet:dgram:udp", "write", None),
    ("udp4-write-xmit", "udp4-write", "write", XMIT, "inet:dgram:udp", "write", None),
    ("udp4-ioctl-fionread", "udp4-ioctl-fionread", "ioctl", ["udp_ioctl"], "inet:dgram:udp", "ioctl", None),
    ("udp4-ioctl-siocgifflags", "udp4-ioctl-siocgifflags", "ioctl", ["dev_ioctl"], "inet:dgram:udp", "ioctl", None),
    ("tcp4-socket-create", "tcp4-socket", "socket", ["inet_create"], "inet:stream:tcp", "socket", None),
    ("tcp4-socket-init", "tcp4-socket", "socket", ["tcp_v4_init_sock"], "inet:stream:tcp", "socket", None),
    ("tcp4-bind", "tcp4-bind", "bind", ["inet_bind"], "inet:stream:tcp", "bind", None),
    ("tcp4-listen", "tcp4-listen", "listen", ["inet_listen"], "inet:stream:tcp", "listen", None),
    ("tcp4-setsockopt-nodelay", "tcp4-setsockopt", "setsockopt", ["tcp_setsockopt"], "inet:stream:tcp", "setsockopt", None),
    ("tcp4-connect", "tcp4-connect", "connect", ["tcp_connect"], "inet:stream:tcp", "connect", None),
    ("tcp4-connect-xmit", "tcp4-connect", "connect", XMIT, "inet:stream:tcp", "connect", None),
    ("tcp4-accept", "tcp4-accept", "accept", ["inet_accept"], "inet:stream:tcp", "accept", None),
    ("tcp4-sendto-transmit", "tcp4-sendto", "sendto", ["tcp_transmit_skb", "__tcp_transmit_skb"], "inet:stream:tcp", "sendto", None),
    ("tcp4-sendto-xmit", "tcp4-sendto", "sendto", XMIT, "inet:stream:tcp", "sendto", None),
    ("tcp4-sendto-tcp-rcv", "tcp4-sendto", "sendto", ["tcp_v4_rcv"], "inet:stream:tcp", "sendto", None),
    ("tcp4-read", "tcp4-read", "read", ["tcp_recvmsg"], "inet:stream:tcp", "read", None),
    ("tcp4-read-copy", "tcp4-read", "read", ["skb_copy_datagram_iter"], "inet:stream:tcp", "read", None),
    ("tcp4-shutdown", "tcp4-shutdown", "shutdown", ["tcp_shutdown"], "inet:stream:tcp", "shutdown", None),
    ("tcp4-close", "tcp4-close", "close", ["tcp_close"], "inet:stream:tcp", "close", None),
    ("tcp6-connect", "tcp6-connect", "connect", ["tcp_connect"], "inet6:stream:tcp", "connect", None),
    ("tcp6-connect-xmit", "tcp6-connect", "connect", XMIT, "inet6:stream:tcp", "connect", None),
    ("ping4-sendto-xmit", "ping4-sendto", "sendto", XMIT, "inet:dgram:icmp", "sendto", None),
    ("raw4-udp-sendto-xmit", "raw4-udp-sendto", "sendto", XMIT, "inet:raw", "sendto", None),
    ("raw4-hdrincl-sendto-xmit", "raw4-hdrincl-sendto", "sendto", XMIT, "inet:raw", "sendto", None),
    ("packet-sendto-xmit", "packet-sendto", "sendto", XMIT, "packet:raw", "sendto", None),
    ("unix-socketpair", "unix-socketpair", "socketpair", ["unix_socketpair"], "unix:stream", "socketpair", None),
    ("unix-stream-sendmsg-wakeup", "unix-stream-sendmsg", "sendmsg", ["sock_def_readable"], "unix:stream", "sendmsg", None),
    ("unix-stream-recvmsg", "unix-stream-recvmsg", "recvmsg", ["unix_stream_recvmsg"], "unix:stream", "recvmsg", None),
    ("unix-stream-recvmsg-copy", "unix-stream-recvmsg", "recvmsg", ["skb_copy_datagram_iter"], "unix:stream", "recvmsg", None),
    ("unix-dgram-sendto-wakeup", "unix-dgram-sendto", "sendto", ["sock_def_readable"], "unix:dgram", "sendto", None),
    ("unix-dgram-recvfrom", "unix-dgram-recvfrom", "recvfrom", ["unix_dgram_recvmsg"], "unix:dgram", "recvfrom", None),
]

# Frames that mean "we are in a hardware interrupt that happened to arrive".
HARDIRQ = re.compile(r"^(__)?sysvec_|^(__)?common_interrupt$|^irq_exit(_rcu)?$|^asm_")

ENTRY = re.compile(r"^([A-Za-z_][\w.]*)\(\) \{$")      # foo() {
LEAF = re.compile(r"^([A-Za-z_][\w.]*)\(\);$")          # foo();
CLOSE = re.compile(r"^\}(?: /\* ([\w.]+) \*/)?$")       # }  or  } /* foo */


def split_stream(text):
    """{trace-id: (graph functions, [lines])} and the UNAME line."""
    blocks, uname, cur = {}, None, None
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith("@@ UNAME "):
            uname = line[len("@@ UNAME "):]
        elif line.startswith("@@ BEGIN "):
            _, _, tid, graph = line.split(" ", 3)
            cur = blocks[tid] = (graph, [])
        elif line.startswith("@@ END "):
            cur = None
        elif line.startswith("@@ "):
            print(line, file=sys.stderr)              # WARN / FATAL from init
        elif cur is not None:
            cur[1].append(line)
    return blocks, uname


def entries(lines):
    """Yield (stack, name) for each function entry, stack = open callers."""
    stack = []
    for raw in lines:
        if raw.startswith("#"):
            continue
        # with the cpu/duration columns on, the call text follows the last '|'
        text = raw.rsplit("|", 1)[-1].strip()
        m = ENTRY.match(text)
        if m:
            yield tuple(stack), m.group(1)
            stack.append(m.group(1))
            continue
        m = LEAF.match(text)
        if m:
            yield tuple(stack), m.group(1)
            continue
        m = CLOSE.match(text)
        if m and stack:
            name = m.group(1)
            if name is None:
                stack.pop()
            elif name in stack:                       # pop through it
                while stack.pop() != name:
                    pass
            # a closer for a function entered before tracing began: ignore
        # anything else ("==========>", "-----", "=>") carries no nesting


def chain(lines, targets, start=None):
    """(chain, matched name) at the first usable entry of a target, or None."""
    seen = [(st, n) for st, n in entries(lines)]
    names = {n for _, n in seen}
    for target in targets:
        if target not in names:
            continue
        for stack, name in seen:
            if name != target or any(HARDIRQ.match(f) for f in stack):
                continue
            if start is not None:
                if start not in stack:
                    continue
                stack = stack[len(stack) - 1 - stack[::-1].index(start):]
            return list(stack) + [name], target
    return None


def traceable(lines):
    """available_filter_functions -> sorted unique names, ` [mod]` dropped."""
    out = set()
    for line in lines:
        name = line.split(" ", 1)[0].strip()
        if name and not name.startswith("#"):
            out.add(name)
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--package", required=True, help="NAME=VERSION of the image")
    ap.add_argument("--qemu", required=True, help="the qemu command line used")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--traceable", help="write the traceable names here (.gz)")
    a = ap.parse_args()

    with open(a.data, encoding="utf-8", errors="replace") as f:
        blocks, uname = split_stream(f.read())

    scenarios, problems = [], []
    for sid, tid, frm, targets, socket, syscall, start in SCENARIOS:
        if tid not in blocks:
            problems.append(f"{sid}: no trace {tid!r} recorded")
            continue
        graph, lines = blocks[tid]
        found = chain(lines, targets, start)
        if found is None:
            problems.append(f"{sid}: none of {targets} under {graph}")
            continue
        ch, matched = found
        entry = {"id": sid, "from": frm, "to": targets[0], "socket": socket,
                 "syscall": syscall, "chain": ch}
        if matched != targets[0]:
            entry["traced_to"] = matched
            entry["note"] = (f"{targets[0]} is not traced in this kernel (static inline or "
                             f"notrace, see traceable list); the chain ends at {matched}, "
                             f"which it wraps")
        if ch[0] == "task_work_run":
            # 6.1's close: the last fput() queues ____fput with task_work_add,
            # and sock_close runs from task_work_run at syscall exit, outside
            # __x64_sys_close.  Report what the close call itself queued too.
            q = chain(lines, ["task_work_add"])
            entry["note"] = ("fput() queues ____fput with task_work_add; it runs in "
                             "task_work_run on the way back to user space, outside the "
                             "syscall entry's graph, so the chain starts at task_work_run; "
                             "queued_by is the chain under the syscall entry that queued it")
            if q:
                entry["queued_by"] = q[0]
        scenarios.append(entry)

    doc = {
        "about": ("Call chains recorded on a real kernel: Debian's image booted under QEMU "
                  "(command in `qemu`), an initramfs whose /init (tests/traces/init.c) performs each "
                  "syscall with ftrace function_graph limited to that syscall entry "
                  "(set_graph_function) and to its own pid (set_ftrace_pid). Each chain is the "
                  "stack of traced functions at the first entry of the target, from the "
                  "syscall entry down to it; names as ftrace prints them (.isra/.constprop "
                  "suffixes kept). Functions the compiler inlined or that are notrace do not "
                  "appear: a missing hop that is absent from traceable_<kernel>.txt.gz was "
                  "inlined or notrace, not skipped. Loopback transmit runs the receive path "
                  "in softirq inside the same syscall, so receive chains are nested in send "
                  "chains. Recorded with tests/traces/record.sh; parsed with "
                  "tests/traces/parse_graph.py."),
        "kernel": a.kernel,
        "package": a.package,
        "uname": uname,
        "qemu": a.qemu,
        "tracer": "function_graph (funcgraph-tail, funcgraph-irqs; max_graph_depth 0)",
        "scenarios": scenarios,
    }
    if problems:
        doc["skipped"] = problems
    with open(a.output, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    if a.traceable:
        names = traceable(blocks.get("__filters__", ("", []))[1])
        with gzip.GzipFile(a.traceable, "wb", mtime=0) as f:
            f.write(("\n".join(names) + "\n").encode())
        print(f"{len(names)} traceable functions -> {a.traceable}", file=sys.stderr)
    for p in problems:
        print("skipped:", p, file=sys.stderr)
    print(f"{len(scenarios)} chains -> {a.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build and run fixtures/minikernel with gcc -finstrument-functions; read back what it executed.

Used by tests: ``run_minikernel(configs, watch)`` returns, per scenario, the executed caller→callee
edges (function names, from nm) and the call stacks at each entry of a watched function.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

MINI = Path(__file__).resolve().parent.parent / "fixtures" / "minikernel"


def have_gcc() -> bool:
    return shutil.which("gcc") is not None and shutil.which("nm") is not None


def build(workdir: Path) -> Path:
    objs = []
    for src in sorted([*(MINI / "net").rglob("*.c"), *(MINI / "fs").rglob("*.c")]):
        obj = workdir / (str(src.relative_to(MINI)).replace("/", "_")[:-2] + ".o")
        subprocess.run(["gcc", "-O0", "-g", "-no-pie", "-fno-inline", "-finstrument-functions", "-I", str(MINI / "include"),
                        "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
        objs.append(str(obj))
    exe = workdir / "minikernel"
    subprocess.run(["gcc", "-O0", "-g", "-no-pie", "-I", str(MINI / "include"), str(MINI / "user" / "main.c"),
                    str(MINI / "user" / "trace.c"), *objs, "-o", str(exe)], check=True, capture_output=True)
    return exe


def symbols(exe: Path) -> tuple[dict[int, str], dict[str, list[int]]]:
    out = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    by_addr: dict[int, str] = {}
    by_name: dict[str, list[int]] = defaultdict(list)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            by_addr[int(parts[0], 16)] = parts[2]
            by_name[parts[2]].append(int(parts[0], 16))
    return by_addr, by_name


def run_minikernel(workdir: Path, configs: list[str], watch: list[str]) -> tuple[dict, dict]:
    exe = build(workdir)
    by_addr, by_name = symbols(exe)
    trace = workdir / "trace.txt"
    env = {**os.environ, "MK_TRACE": str(trace),
           "MK_WATCH": ",".join(hex(a) for w in watch for a in by_name.get(w, []))}
    subprocess.run([str(exe), *configs], env=env, check=True, capture_output=True, timeout=60)
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    stacks: dict[str, list[list[str]]] = defaultdict(list)
    for line in trace.read_text().splitlines():
        kind, scenario, *addrs = line.split()
        names = [by_addr.get(int(a, 16), a) for a in addrs]
        if kind == "E":
            edges[scenario].add((names[0], names[1]))
        else:
            stacks[scenario].append(names)
    return edges, stacks

"""ksrcgraph benchmark: cold index, warm queries, second version, memory — against cscope and a raw
tree-sitter parse measured in the same run, on the same machine and files.

    .venv/bin/python bench/run.py --kernel 6.1 --second 6.12 [--repeat 3] [--out bench/results/6.1.json]

Measures (each repeated, reported as min and median wall seconds):
 * ``cscope -b -q -k`` over every .c/.h file in scope (installed with apt-get when missing);
 * tree-sitter-c parsing those files, in 1 process and in N (= CPUs) processes;
 * ksrcgraph cold index (fresh cache): parse, extract, store, link — what a first query waits for —
   with its default file selection (the .c files and the headers they include) and with --all-headers;
 * warm ``ksrcgraph path sendto dev_queue_xmit`` from process start (grouped by socket, and with
   --socket inet:dgram:udp);
 * indexing the second version after the first, in the same cache, against indexing it cold;
 * peak resident memory of the cold index (the ksrcgraph process and its workers).
Prints each figure with its ratio to cscope and to the raw parse, and writes a JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measured(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in kB of the process and the children it waited for, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    out = p.stdout.read() if p.stdout else b""
    err = p.stderr.read() if p.stderr else b""
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0, 3):
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({p.returncode}): {err.decode(errors='replace')[-800:]}")
    return wall, usage.ru_maxrss, out.decode(errors="replace")


def stats(values: list[float]) -> dict:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "runs": [round(v, 3) for v in values]}


def file_list(tree_root: Path, scope: tuple[str, ...]) -> list[str]:
    from ksrcgraph import sources

    tree = sources.SourceTree(tree_root, "bench", scope, "directory", False)
    return [ap for _, ap, _, _ in sources.list_files(tree)]


def ensure_cscope() -> str:
    path = shutil.which("cscope")
    if path:
        return path
    print("bench: installing cscope with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "cscope"], check=True, capture_output=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    path = shutil.which("cscope")
    if not path:
        raise SystemExit("bench: cscope is not installed and apt-get could not install it")
    return path


def _parse_chunk(paths: list[str]) -> int:
    import tree_sitter_c
    from tree_sitter import Language, Parser

    parser = Parser(Language(tree_sitter_c.language()))
    n = 0
    for p in paths:
        with open(p, "rb") as fh:
            parser.parse(fh.read())
        n += 1
    return n


def raw_parse(files: list[str], procs: int) -> float:
    t0 = time.perf_counter()
    if procs <= 1:
        _parse_chunk(files)
    else:
        chunks = [files[i::procs * 8] for i in range(procs * 8)]
        with ProcessPoolExecutor(max_workers=procs) as pool:
            list(pool.map(_parse_chunk, chunks))
    return time.perf_counter() - t0


def tree_of(version: str, scope: tuple[str, ...]) -> Path:
    """The version's extracted tree (ksrcgraph extracts it into its cache the first time)."""
    from ksrcgraph import sources

    return sources.open_tree(version, None, scope).root


def ksrc(*args: str) -> list[str]:
    return [sys.executable, "-m", "ksrcgraph", *args]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", default="6.1", help="kernel version to measure (Debian linux-source-V)")
    ap.add_argument("--second", default="6.12", help="a second version, indexed after the first")
    ap.add_argument("--scope", default="net,include")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warm-repeat", type=int, default=5)
    ap.add_argument("--out", default=None, help="JSON result file [bench/results/<kernel>.json]")
    args = ap.parse_args()
    scope = tuple(args.scope.split(","))
    procs = len(os.sched_getaffinity(0))
    result: dict = {"kernel": args.kernel, "second": args.second, "scope": list(scope), "cpus": procs,
                    "machine": platform.platform(), "python": platform.python_version(),
                    "date": time.strftime("%Y-%m-%d %H:%M:%S")}

    from ksrcgraph import sources
    from ksrcgraph.errors import KsrcError

    print(f"preparing trees ({args.kernel}, {args.second}) ...", file=sys.stderr)
    try:
        root = tree_of(args.kernel, scope)
    except KsrcError as e:
        raise SystemExit(f"bench: {e.message} ({e.hint})") from e
    root2 = None
    if args.second:
        if sources.system_tarball(args.second) or (Path(sources.paths.trees_dir()) / args.second).is_dir():
            root2 = tree_of(args.second, scope)
        else:
            print(f"bench: no sources for {args.second}: the second-version measure is skipped "
                  f"(apt-get install linux-source-{args.second})", file=sys.stderr)
    files = file_list(root, scope)
    result["files"] = len(files)
    result["bytes"] = sum(os.path.getsize(f) for f in files)

    # the steady state of an installed package: its modules byte-compiled (pip does this at install;
    # an environment with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile them on every start)
    import compileall

    import ksrcgraph

    compileall.compile_dir(str(Path(ksrcgraph.__file__).parent), quiet=1)

    cscope = ensure_cscope()
    work = Path(tempfile.mkdtemp(prefix="ksrcgraph-bench-"))
    (work / "files.txt").write_text("\n".join(files) + "\n")
    cs = []
    for _ in range(args.repeat):
        for f in work.glob("cscope.*"):
            f.unlink()
        cs.append(measured([cscope, "-b", "-q", "-k", "-i", str(work / "files.txt")], cwd=str(work))[0])
    result["cscope_build"] = stats(cs)
    print(f"cscope -b -q -k: {result['cscope_build']}", file=sys.stderr)

    result["raw_parse_1"] = stats([raw_parse(files, 1) for _ in range(args.repeat)])
    result[f"raw_parse_{procs}"] = stats([raw_parse(files, procs) for _ in range(args.repeat)])
    print(f"raw tree-sitter parse: 1 process {result['raw_parse_1']}, {procs}: {result[f'raw_parse_{procs}']}",
          file=sys.stderr)

    def cold(tree: Path, extra: tuple[str, ...] = ()) -> tuple[float, int, dict]:
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
        env = {**os.environ, "KSRCGRAPH_CACHE_DIR": str(cache), "KSRCGRAPH_NO_PROGRESS": "1"}
        wall, rss, out = measured(ksrc("stats", "--source", str(tree), "--scope", args.scope, "--format", "json",
                                       "-q", *extra), env)
        shutil.rmtree(cache, ignore_errors=True)
        return wall, rss, json.loads(out)

    runs = [cold(root) for _ in range(args.repeat)]
    result["cold_index"] = stats([r[0] for r in runs])
    result["cold_index_peak_rss_mb"] = round(max(r[1] for r in runs) / 1024, 1)
    last = runs[-1][2]
    result["cold_index_detail"] = {k: last["run"].get(k) for k in ("index_seconds", "link_seconds", "total_seconds")}
    result["indexed_files"] = last["stats"]["files"]
    result["indexed_bytes"] = last["stats"]["bytes"]
    print(f"ksrcgraph cold index: {result['cold_index']}, peak RSS {result['cold_index_peak_rss_mb']} MB "
          f"({result['indexed_files']} files)", file=sys.stderr)
    runs_all = [cold(root, ("--all-headers",)) for _ in range(args.repeat)]
    result["cold_index_all_headers"] = stats([r[0] for r in runs_all])
    result["cold_index_all_headers_peak_rss_mb"] = round(max(r[1] for r in runs_all) / 1024, 1)
    print(f"ksrcgraph cold index --all-headers: {result['cold_index_all_headers']}", file=sys.stderr)

    # warm queries, as users run them (--kernel): a cache of its own holding the extracted tree
    cache = work / "warm-cache"
    (cache / "trees").mkdir(parents=True)
    (cache / "trees" / args.kernel).symlink_to(root)
    env = {**os.environ, "KSRCGRAPH_CACHE_DIR": str(cache), "KSRCGRAPH_NO_PROGRESS": "1"}
    src = ["--kernel", args.kernel, "--scope", args.scope, "-q"]
    measured(ksrc("stats", *src), env)
    for label, extra in (("warm_path_grouped", ()), ("warm_path_socket", ("--socket", "inet:dgram:udp"))):
        result[label] = stats([measured(ksrc("path", "sendto", "dev_queue_xmit", *src, *extra), env)[0]
                               for _ in range(args.warm_repeat)])
        print(f"{label}: {result[label]}", file=sys.stderr)

    if root2 is not None:
        cold2 = [cold(root2)[0] for _ in range(args.repeat)]
        after = []
        parsed_after = None
        for _ in range(args.repeat):
            c = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
            e = {**os.environ, "KSRCGRAPH_CACHE_DIR": str(c), "KSRCGRAPH_NO_PROGRESS": "1"}
            measured(ksrc("stats", "--source", str(root), "--scope", args.scope, "-q"), e)
            wall, _, out = measured(ksrc("stats", "--source", str(root2), "--scope", args.scope, "--format", "json",
                                         "-q"), e)
            after.append(wall)
            parsed_after = json.loads(out)["run"]["index"]
            shutil.rmtree(c, ignore_errors=True)
        result["second_cold"] = stats(cold2)
        result["second_after_first"] = stats(after)
        result["second_after_first_fraction"] = round(min(after) / min(cold2), 3)
        result["second_after_first_parsed"] = {"parsed": parsed_after["parsed"], "files": parsed_after["files"]}
        print(f"{args.second} cold {result['second_cold']}, after {args.kernel}: {result['second_after_first']} "
              f"({result['second_after_first_fraction']:.0%}; parsed {parsed_after['parsed']} of "
              f"{parsed_after['files']} files)", file=sys.stderr)

    base = result["cscope_build"]["min"]
    rawn = result[f"raw_parse_{procs}"]["min"]
    result["ratios"] = {
        "cold_index_vs_cscope": round(result["cold_index"]["min"] / base, 2),
        "cold_index_vs_raw_parse": round(result["cold_index"]["min"] / rawn, 2),
        "cold_index_all_headers_vs_cscope": round(result["cold_index_all_headers"]["min"] / base, 2),
        "raw_parse_vs_cscope": round(rawn / base, 2),
    }
    shutil.rmtree(work, ignore_errors=True)

    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{args.kernel}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result, procs))
    print(f"(written to {out})")


def report(r: dict, procs: int) -> str:
    base = r["cscope_build"]["min"]
    rawn = r[f"raw_parse_{procs}"]["min"]

    def row(label: str, s: dict, extra: str = "") -> str:
        return (f"| {label} | {s['min']:.2f} | {s['median']:.2f} | {s['min'] / base:.2f}× | {s['min'] / rawn:.2f}× |"
                f" {extra} |")

    lines = [f"ksrcgraph benchmark — kernel {r['kernel']} {','.join(r['scope'])}: {r['files']} files, "
             f"{r['bytes'] / 1e6:.1f} MB; {procs} CPUs; {r['date']}", "",
             "| measure | min s | median s | ÷ cscope | ÷ raw parse | notes |", "|---|---|---|---|---|---|",
             row("cscope -b -q -k", r["cscope_build"]),
             row("tree-sitter parse, 1 process", r["raw_parse_1"]),
             row(f"tree-sitter parse, {procs} processes", r[f"raw_parse_{procs}"]),
             row("ksrcgraph cold index", r["cold_index"],
                 f"{r['indexed_files']} files ({r['indexed_bytes'] / 1e6:.1f} MB) indexed; peak RSS "
                 f"{r['cold_index_peak_rss_mb']:.0f} MB"),
             row("ksrcgraph cold index --all-headers", r["cold_index_all_headers"],
                 f"peak RSS {r['cold_index_all_headers_peak_rss_mb']:.0f} MB"),
             row("warm path sendto dev_queue_xmit", r["warm_path_grouped"], "grouped by socket configuration"),
             row("warm path ... --socket inet:dgram:udp", r["warm_path_socket"], "")]
    if "second_cold" in r:
        lines.append(row(f"{r['second']} cold index", r["second_cold"]))
        lines.append(row(f"{r['second']} after {r['kernel']}", r["second_after_first"],
                         f"{r['second_after_first_fraction']:.0%} of cold; parsed "
                         f"{r['second_after_first_parsed']['parsed']} of {r['second_after_first_parsed']['files']} files"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()

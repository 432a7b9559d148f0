"""Fixed-seed audit of pointer-edge precision (issue 16): sample the edges a pointer resolves, judge each by
reading the source, score the verdicts.

    ksrcgraph graph --kernel 6.1 --scope net,include,fs --format json -o /tmp/g61.json
    .venv/bin/python bench/precision_audit.py sample /tmp/g61.json   # (re)draw; keeps recorded verdicts
    .venv/bin/python bench/precision_audit.py score                  # per kind: feasible / type-only / tool-error

Audited kinds: every kind but the named calls (``rows.DIRECT_KINDS``): ops, assign, param,
indirect_candidate, fallback. Per kind, ``random.Random(SEED)`` draws PER_KIND edges from the edges sorted by
(caller, callee, file, line). An edge's id is kind:caller:file:line:callee. Re-sampling after a change keeps
the verdict of every id drawn again; judged edges no longer drawn (e.g. removed by a fix) move to "retired".

Verdicts (tests/data/precision_audit_6.1.json): "feasible" — the call at that site reaches that function
for some object that can be there; "type-only" — the types match but no object at that site carries that
value; "tool-error" — not even type-correct, or one of the classes named in CLASSES.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ksrcgraph.rows import DIRECT_KINDS, EDGE_KINDS  # noqa: E402

SEED = 16
PER_KIND = 40
VERDICTS = ROOT / "tests" / "data" / "precision_audit_6.1.json"
COMMAND = "ksrcgraph graph --kernel 6.1 --scope net,include,fs --format json -o /tmp/g61.json"
CLASSES = ("named-table", "nested-struct", "save-replace", "field-fallback", "signature", "other")
ABOUT = ("Issue 16 precision audit: a fixed-seed sample of the edges each pointer kind resolves on 6.1 "
         "(bench/precision_audit.py), each judged by reading the source. verdict: feasible | type-only | "
         "tool-error (class: " + " | ".join(CLASSES) + "); why cites the store or table that decides it.")
AUDITED = tuple(k for k in EDGE_KINDS if k not in DIRECT_KINDS)


def edge_id(e: dict) -> str:
    file, line = e["site"].rsplit(":", 1)
    return f"{e['kind']}:{e['from']}:{file}:{line}:{e['to']}"


def sort_key(e: dict) -> tuple:
    file, line = e["site"].rsplit(":", 1)
    return (e["from"], e["to"], file, int(line))


def draw(graph: dict, per_kind: int = PER_KIND, seed: int = SEED) -> list[dict]:
    """The sample: per audited kind, per_kind edges drawn with a fresh Random(seed) from the sorted edges."""
    by_kind = defaultdict(list)
    for e in graph["edges"]:
        if e["kind"] in AUDITED:
            by_kind[e["kind"]].append(e)
    out = []
    for kind in AUDITED:
        edges = sorted(by_kind[kind], key=sort_key)
        picked = random.Random(seed).sample(edges, min(per_kind, len(edges)))
        out += sorted(picked, key=sort_key)
    return out


def sample(graph_path: str, out: Path, lines: bool = False) -> None:
    """Draws the sample into out, keeping the verdicts out already records; lines: print JSON lines instead."""
    graph = json.loads(Path(graph_path).read_text())
    prev = load(out) if out.exists() else {"edges": []}
    old = {r["id"]: r for r in prev["edges"] + prev.get("retired", [])}
    rows = []
    for e in draw(graph):
        rid = edge_id(e)
        row = {"id": rid, "kind": e["kind"], "caller": e["from"], "callee": e["to"], "site": e["site"],
               "callee_expr": e.get("callee_expr", ""),
               "evidence": [f"{s.get('what', '')} ({s['at']})" if s.get("at") else s.get("what", "")
                            for s in e.get("evidence", [])][:3],
               "verdict": "", "class": "", "why": ""}
        for k in ("verdict", "class", "why"):
            row[k] = old.get(rid, {}).get(k, "")
        rows.append(row)
    if lines:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    drawn = {r["id"] for r in rows}
    retired = [r for r in old.values() if r["id"] not in drawn and r["verdict"]]  # judged before, not drawn now
    doc = {"about": ABOUT, "seed": SEED, "per_kind": PER_KIND, "command": COMMAND,
           "kernel": graph["kernel"].get("version", ""), "edges": rows, "retired": retired}
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    kept = sum(1 for r in rows if r["verdict"])
    print(f"{len(rows)} edges written to {out} ({kept} with a recorded verdict)")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def score(path: Path) -> int:
    """Prints the per-kind table; returns the number of edges still unjudged."""
    rows = load(path)["edges"]
    print(f"{'kind':20} {'n':>3} {'feasible':>9} {'type-only':>10} {'tool-error':>11}  error classes")
    for kind in AUDITED:
        judged = [r for r in rows if r["kind"] == kind and r["verdict"]]
        if not judged:
            continue
        n = len(judged)
        v = Counter(r["verdict"] for r in judged)
        cls = Counter(r["class"] for r in judged if r["verdict"] == "tool-error")
        pct = {k: f"{100 * v[k] / n:.0f}%" for k in ("feasible", "type-only", "tool-error")}
        print(f"{kind:20} {n:>3} {pct['feasible']:>9} {pct['type-only']:>10} {pct['tool-error']:>11}  "
              + ", ".join(f"{c} {m}" for c, m in cls.most_common()))
    missing = sum(1 for r in rows if not r["verdict"])
    if missing:
        print(f"({missing} sampled edges have no verdict yet)")
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("sample", "score"))
    ap.add_argument("graph", nargs="?", help="graph JSON (sample mode)")
    ap.add_argument("--verdicts", type=Path, default=VERDICTS)
    ap.add_argument("--lines", action="store_true", help="sample: print JSON lines, leave the verdict file alone")
    a = ap.parse_args(argv)
    if a.mode == "sample":
        if not a.graph:
            ap.error("sample needs the graph JSON")
        sample(a.graph, a.verdicts, a.lines)
        return 0
    score(a.verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

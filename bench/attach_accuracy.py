"""How well attachability predicted from source (ksrcgraph/attach.py, data/attach_rules.tsv) matches the
built kernel (issue 11): precision, recall and accuracy of "attachable" against the System.map of
Debian's amd64 build of the same source, for global and for static functions separately.

    .venv/bin/python bench/attach_accuracy.py 5.10 6.1 6.12 7.2            # scope net,include
    .venv/bin/python bench/attach_accuracy.py 6.1 --scope net,include,fs --errors 10

The System.map comes from Debian's linux-image-*-amd64-dbg package of the same version as the installed
linux-source-V (tests/debian_symbols.py: downloaded once, ~1 GB, the map kept xz-compressed in the cache).

Measured: the functions defined in .c files under MEASURED (fs/ too when the scope has it) whose file is
built into vmlinux — told by the binary itself: a file is built in when at least a quarter of its global
functions whose name is defined once in the scope have a symbol (a module's functions are not in
System.map; one of them may share its name with a built-in function elsewhere). A file of static
functions only is left out. Truth: the
function has an entry symbol a kprobe can use at run time (its name, or a gcc copy .isra/.constprop; not
only .part/.cold, not in .init.text, not blacklisted). Predicted attachable: verdict "yes" ("maybe"
counts as no; their number is shown). A static name defined in several built files with fewer symbols
than definitions cannot be told apart: such functions are left out (column "ambiguous").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import debian_symbols  # noqa: E402

from ksrcgraph import attach, pipeline, symbols  # noqa: E402

# A file is taken as built into vmlinux when this share of its global functions (those whose name the
# scope defines once) have a symbol: a module's file has none, or one whose name a built-in function shares.
BUILT_SHARE = 0.25
MEASURED = ("net/core/", "net/ipv4/", "net/ipv6/", "net/socket.c", "net/unix/", "net/netlink/", "fs/")


def measured_file(path: str | None, scope: tuple[str, ...]) -> bool:
    if not path or not path.endswith(".c"):
        return False
    return path.startswith(MEASURED) and (not path.startswith("fs/") or "fs" in scope)


def truth_table(cg, table, feats):  # type: ignore[no-untyped-def]
    """nid -> (truth, static) for the measured functions of built-in files, and the ambiguous count."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for nid, n in cg.nodes.items():
        if not n.external:
            by_name[n.name].append(nid)
    seen: dict[str, list[bool]] = defaultdict(list)  # file -> has a symbol, per global function of a unique name
    for nid, n in cg.nodes.items():
        if n.file and n.file.endswith(".c") and len(by_name[n.name]) == 1 and "::" not in nid:
            seen[n.file].append(bool(table.of(n.name)))
    built = {f for f, hits in seen.items() if sum(hits) >= max(1, BUILT_SHARE * len(hits))}
    out: dict[str, tuple[bool, bool]] = {}
    ambiguous = 0
    for nid, n in cg.nodes.items():
        if n.external or n.file not in built or not measured_file(n.file, tuple(cg.meta.get("scope", ()))):
            continue
        f = attach.Features._make(feats[nid])
        truth = attach.from_symbols(attach.symbol_names(cg, nid), table).verdict == "yes"
        same = [x for x in by_name[n.name] if cg.nodes[x].file in built]
        if f.static and len(same) > 1:
            entries = [s for s in table.of(n.name) if not s.where]
            if 0 < len(entries) < len(same):
                ambiguous += 1
                continue
        out[nid] = (truth, f.static)
    return out, ambiguous


def score(rows: list[tuple[bool, bool]]) -> dict:
    """rows: (truth, predicted)."""
    tp = sum(1 for t, p in rows if t and p)
    fp = sum(1 for t, p in rows if not t and p)
    fn = sum(1 for t, p in rows if t and not p)
    tn = sum(1 for t, p in rows if not t and not p)
    n = len(rows)
    return {"n": n, "attachable": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
            "accuracy": (tp + tn) / n if n else 1.0}


def measure(version: str, scope: tuple[str, ...], errors: int, dump: Path | None = None) -> list[str]:
    cg = pipeline.open_graph(version, None, scope)
    table = symbols.read(debian_symbols.system_map(version))
    feats = cg.part(attach.PART)
    truth, ambiguous = truth_table(cg, table, feats)
    if dump is not None:  # for tuning data/attach_rules.tsv without reopening the graph
        with dump.open("w") as fh:
            for nid, (t, _static) in sorted(truth.items()):
                fh.write(json.dumps([nid, feats[nid], t, cg.nodes[nid].cond]) + "\n")
    rows: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_rule: dict[tuple[str, str], Counter] = defaultdict(Counter)
    samples: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    maybes: Counter = Counter()
    for nid, (t, static) in sorted(truth.items()):
        a = attach.of_node(cg, nid)
        p = a.verdict == "yes"
        kind = "static" if static else "global"
        rows[kind].append((t, p))
        maybes[kind] += a.verdict == "maybe"
        outcome = "ok" if t == p else ("FP" if p else "FN")
        by_rule[(kind, a.rule)][outcome] += 1
        if outcome != "ok" and len(samples[(kind, a.rule, outcome)]) < errors:
            f = attach.Features._make(feats[nid])
            samples[(kind, a.rule, outcome)].append(f"{nid} {cg.nodes[nid].file}:{cg.nodes[nid].line} {f} "
                                                    f"cond={cg.nodes[nid].cond!r}")
    out = [f"kernel {version} ({cg.meta.get('version')}), scope {','.join(scope)}: {table.label}"]
    out.append(f"  {'':7} {'n':>6} {'attach':>6} {'prec':>6} {'recall':>6} {'acc':>6} {'maybe':>6}   (ambiguous static: {ambiguous})")
    for kind in ("global", "static"):
        s = score(rows[kind])
        out.append(f"  {kind:7} {s['n']:6d} {s['attachable']:6d} {s['precision']:6.1%} {s['recall']:6.1%} "
                   f"{s['accuracy']:6.1%} {maybes[kind]:6d}")
    if errors:
        out.append("  per rule (ok / FP / FN):")
        for (kind, rule), c in sorted(by_rule.items()):
            out.append(f"    {kind:6} {rule:40} {c['ok']:5d} {c['FP']:5d} {c['FN']:5d}")
        for (kind, rule, outcome), xs in sorted(samples.items()):
            out.append(f"  {outcome} {kind} [{rule}]:")
            out += [f"      {x}" for x in xs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("versions", nargs="+")
    ap.add_argument("--scope", default="net,include")
    ap.add_argument("--errors", type=int, default=0, help="print per-rule counts and this many errors per rule")
    ap.add_argument("--dump", type=Path, help="write each measured function (id, features, truth, #if) to DIR/V.jsonl")
    args = ap.parse_args()
    scope = tuple(args.scope.split(","))
    for v in args.versions:
        dump = args.dump / f"{v}.jsonl" if args.dump else None
        print("\n".join(measure(v, scope, args.errors, dump)), flush=True)


if __name__ == "__main__":
    main()

"""Tables: what was extracted and resolved, the socket configurations, kernel sources, the cache.

In: a ``CallGraph`` (its ``stats`` and ``meta``; the reference stack's model for sockets), or the
plain dicts ``sources`` and ``store`` give about this machine. Out: text tables and JSON documents.
"""

from __future__ import annotations

from ..graph import CallGraph
from ..refstack.model import Model
from .docs import SCHEMA_VERSION, dumps, kernel_doc

_RUN = ("warm", "index", "index_seconds", "link_seconds", "total_seconds")
_TIMES = ("index_seconds", "link_seconds", "total_seconds")


# -- stats ------------------------------------------------------------------------------------------------
def stats_json(cg: CallGraph) -> str:
    return dumps({"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "stats": dict(cg.stats),
                  "run": {k: cg.meta.get(k) for k in _RUN if k in cg.meta}})


def _by_count(counts: dict[str, int], fmt: str) -> str:
    return ", ".join(fmt.format(k=k, v=v) for k, v in sorted(counts.items(), key=lambda x: -x[1]))


def stats_text(cg: CallGraph) -> str:
    st = dict(cg.stats)
    ind = st.get("indirect_sites", 0)
    resolved = {k[9:]: v for k, v in st.items() if k.startswith("resolved_") and k != "resolved_targets"}
    nres = sum(resolved.values())
    mean = st.get("resolved_targets", 0) / max(nres - resolved.get("param_call", 0), 1)
    lines = [
        f"kernel {cg.meta.get('label')} ({cg.meta.get('version') or '?'}), scope {','.join(cg.meta.get('scope', []))}",
        f"files {st.get('files')}, {st.get('bytes', 0) / 1e6:.1f} MB; with parse errors after cleaning: "
        f"{st.get('files_with_errors')} files, {st.get('error_nodes')} error nodes, "
        f"{st.get('error_bytes')} bytes no construct could absorb",
        f"functions {st.get('functions')}, external callees {st.get('externals')}",
        f"call sites {st.get('call_sites')}: direct {st.get('direct_sites', 0)}, through macros "
        f"{st.get('macro_sites', 0)}, to functions outside scope {st.get('external_sites', 0)}, indirect {ind}",
        f"indirect sites resolved {nres} ({100 * nres / max(ind, 1):.1f}%): " + _by_count(resolved, "{k} {v}"),
        f"mean targets per resolved site (edges): {mean:.2f}",
        "unresolved: " + (_by_count(st.get("unresolved", {}), "{v} {k}") or "none"),
        "edges: " + ", ".join(f"{k} {v}" for k, v in st.get("edges_by_kind", {}).items()),
        "pointer targets dropped: " + (_by_count(st.get("dropped", {}), "{v} {k}") or "none"),
    ]
    lines += [f"{k.replace('_', ' ')}: {cg.meta[k]}" for k in _TIMES if cg.meta.get(k) is not None]
    return "\n".join(lines) + "\n"


# -- sockets ----------------------------------------------------------------------------------------------
def socket_rows(cg: CallGraph) -> list[dict]:
    """One row per socket configuration the reference stack finds: create function, proto_ops
    tables, proto, the tables behind them and where they are defined."""
    m = Model(cg)
    lab = m.label
    rows = []
    for c in m.configs():
        st = m.state(c)
        rows.append({"socket": str(c), "create": [cg.name(f) for f in st.create],
                     "entry": lab(st.entry) if st.entry else None, "ops": [lab(x) for x in st.ops],
                     "proto": [lab(x) for x in st.prot], "protocol_handler": [lab(x) for x in st.protocol_tables],
                     "packet_type": [lab(x) for x in st.ptype_tables], "af_ops": [lab(x) for x in st.af_ops],
                     "where": {lab(x): m.where(x) for x in [*st.ops, *st.prot] if x in m.tables}})
    return rows


def sockets_json(cg: CallGraph, rows: list[dict]) -> str:
    return dumps({"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "sockets": rows})


def sockets_text(rows: list[dict]) -> str:
    w1 = max((len(r["socket"]) for r in rows), default=6) + 2
    w2 = max((len(", ".join(r["create"])) for r in rows), default=6) + 2
    w3 = max((len(", ".join(r["ops"])) for r in rows), default=9) + 2
    lines = [f"{'socket'.ljust(w1)}{'create'.ljust(w2)}{'proto_ops'.ljust(w3)}proto"]
    for r in rows:
        lines.append(f"{r['socket'].ljust(w1)}{', '.join(r['create']).ljust(w2)}{', '.join(r['ops']).ljust(w3)}"
                     f"{', '.join(r['proto'])}".rstrip())
    if not rows:
        lines.append("(no socket family registered with sock_register in this scope)")
    return "\n".join(lines) + "\n"


# -- this machine: sources and the cache ------------------------------------------------------------------
def _tree_line(m: dict, indent: str) -> str:
    return f"{indent}{m['label']:<10} {m['version'] or '':<10} {m['scope']:<20} {m['root']}"


def sources_json(cache: str, available: list[dict], indexed: list[dict]) -> str:
    return dumps({"cache": cache, "available": available, "indexed": indexed})


def sources_text(cache: str, available: list[dict], indexed: list[dict]) -> str:
    """available: {version, where}; indexed: manifests {label, version, scope, root}."""
    lines = [f"cache: {cache}", "available:"]
    lines += [f"  {a['version']:<10} {a['where']}" for a in available] or ["  (none: apt-get install linux-source-6.1, "
                                                                          "or ksrcgraph fetch VERSION)"]
    lines.append("indexed:")
    lines += [_tree_line(m, "  ") for m in indexed] or ["  (none)"]
    return "\n".join(lines) + "\n"


def cache_info_json(info: dict) -> str:
    return dumps(info)


def _sizes(sizes: dict[str, int]) -> str:
    return ', '.join(f'{k} ({v / 1e6:.0f} MB)' for k, v in sizes.items()) or 'none'


def cache_info_text(cache: str, info: dict) -> str:
    """info: ``Store.info()`` plus the sizes of the extracted trees and downloads (name -> bytes)."""
    lines = [f"cache {cache}",
             f"  database {info['path']}: {info['file_bytes'] / 1e6:.1f} MB",
             f"  facts: {info['blobs']} distinct file contents, {info['blob_bytes'] / 1e6:.1f} MB",
             f"  linked graphs: {info['graphs']}, {info['graph_bytes'] / 1e6:.1f} MB",
             f"  manifests: {len(info['manifests'])}"]
    lines += [_tree_line(m, "    ") for m in info["manifests"]]
    lines.append(f"  extracted trees: {_sizes(info['trees'])}")
    lines.append(f"  downloads: {_sizes(info['downloads'])}")
    return "\n".join(lines) + "\n"

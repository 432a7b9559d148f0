"""Socket-aware path queries (what ``ksrcgraph path`` and ``ksrcgraph replay`` run).

In: a ``CallGraph``, the query, and optionally a socket configuration. Out: ``SocketPaths`` — the
paths, each with its replay and the configurations that realise it.

 * With a socket: the k best paths that socket can take (``replay.search``).
 * Without: the k best paths over all sockets, each replayed against every configuration the model
   knows; then, for every configuration none of them realises, that configuration's best path.
   ``groups()`` orders the result by the configurations that realise each path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import query
from ..graph import CallGraph
from ..rows import DIRECT_KINDS
from . import replay as R
from .model import Config, Model


@dataclass
class SocketPaths:
    model: Model
    socket: Config | None
    paths: list[query.Path] = field(default_factory=list)
    replays: list[R.Replay] = field(default_factory=list)
    realised: list[list[Config]] = field(default_factory=list)
    configs: list[Config] = field(default_factory=list)

    def extras(self) -> list[dict]:
        return [{"replay": r.doc(), "realised_by": [str(c) for c in cs]}
                for r, cs in zip(self.replays, self.realised)]

    def summary(self) -> dict:
        return {"sockets_known": [str(c) for c in self.configs]}

    def groups(self) -> list[tuple[str, list[int]]]:
        order: dict[str, list[int]] = {}
        for i, cs in enumerate(self.realised):
            label = ", ".join(str(c) for c in cs) if cs else ""
            order.setdefault(label, []).append(i)
        return sorted(order.items(), key=lambda kv: (kv[0] == "", kv[1][0]))

    def notes(self) -> list[list[str]]:
        return [[] for _ in self.paths]


def _best_replay(cg: CallGraph, model: Model, p: query.Path, configs: list[Config]) -> R.Replay:
    """The replay that comes closest to resolving (fewest contradicted, then unmodelled hops)."""
    best = None
    for c in configs:
        r = R.replay(cg, model, p.nodes, c, p.hops)
        key = (sum(h.verdict == "contradicted" for h in r.hops), sum(h.verdict == "unmodelled" for h in r.hops))
        if best is None or key < best[0]:
            best = (key, r)
    if best is None:  # no configuration known at all
        r = R.Replay("none")
        r.hops = [R.HopVerdict("direct") if any(e.kind in DIRECT_KINDS for e in h) else R.HopVerdict("unmodelled", "no socket model")
                  for h in p.hops]
        return r
    return best[1]


def socket_paths(cg: CallGraph, s: str, t: str, k: int = 5, via: list[str] | None = None,
                 avoid: list[str] | None = None, max_depth: int = query.DEFAULT_MAX_DEPTH,
                 socket: str | None = None) -> SocketPaths:
    model = Model(cg)
    if socket:
        c = model.parse(socket)
        out = SocketPaths(model, c, configs=[c])
        for p, r in R.search(cg, model, c, s, t, k, via, avoid, max_depth):
            out.paths.append(p)
            out.replays.append(r)
            out.realised.append([c])
        return out
    configs = model.configs()
    out = SocketPaths(model, None, configs=configs)
    for p in query.find_paths(cg, s, t, k=k, via=via, avoid=avoid, max_depth=max_depth):
        ok = [c for c in configs if R.replay(cg, model, p.nodes, c, p.hops).resolves]
        out.paths.append(p)
        out.realised.append(ok)
    covered = {c for cs in out.realised for c in cs}
    index = {tuple(p.nodes): i for i, p in enumerate(out.paths)}
    universe = None
    pairs = None
    for c in configs:
        if c in covered:
            continue
        if universe is None:  # searched once: the part of the graph within MARGIN of the best path
            universe = R.region(cg, s, t, via, avoid)
            pairs = R.candidate_pairs(cg, universe)
        for p, _r in R.search(cg, model, c, s, t, 1, via, avoid, max_depth, within=universe, pairs=pairs):
            key = tuple(p.nodes)
            if key in index:
                out.realised[index[key]].append(c)
            else:
                index[key] = len(out.paths)
                out.paths.append(p)
                out.realised.append([c])
    for p, cs in zip(out.paths, out.realised):
        out.replays.append(R.replay(cg, model, p.nodes, cs[0], p.hops) if cs else _best_replay(cg, model, p, configs))
    return out


def replay_saved(cg: CallGraph, saved: list[dict], socket: str | None) -> list[dict]:
    """Replay paths saved by ``path --format json`` on this graph (maybe another kernel)."""
    model = Model(cg)
    results = []
    for i, doc in enumerate(saved):
        hops = doc.get("hops", [])
        conf_text = socket or (doc.get("replay") or {}).get("socket") or ""
        nodes: list[str | None] = []
        for h in hops:
            nid = h.get("id") if h.get("id") in cg.nodes else None
            if nid is None:
                try:
                    nid = cg.lookup(h.get("function", ""))
                except Exception:  # noqa: BLE001 - a function that no longer exists is a result
                    nid = None
            nodes.append(nid)
        config = None
        problem = ""
        if conf_text and conf_text != "none":
            try:
                config = model.parse(conf_text)
            except Exception as e:  # noqa: BLE001
                problem = getattr(e, "message", str(e))
        verdicts: list[R.HopVerdict] = []
        for j in range(1, len(hops)):
            a, b = nodes[j - 1], nodes[j]
            name_a, name_b = hops[j - 1].get("function"), hops[j].get("function")
            if b is None:
                verdicts.append(R.HopVerdict("missing", f"{name_b} is not defined in this kernel's scope"))
                continue
            if a is None:
                verdicts.append(R.HopVerdict("missing", f"{name_a} is not defined in this kernel's scope"))
                continue
            edges = cg.edges_between(a, b)
            if not edges:
                verdicts.append(R.HopVerdict("missing", f"{name_a} no longer calls {name_b}"))
                continue
            if config is None:
                verdicts.append(R.HopVerdict("direct") if any(e.kind in DIRECT_KINDS for e in edges)
                                else R.HopVerdict("unmodelled", problem or "no socket configuration"))
                continue
            verdicts.append(R.judge(model, config, edges, b, nodes[j - 2] if j >= 2 else None))
        rep = R.Replay(conf_text or "none", verdicts)
        broken = rep.broken
        results.append({
            "rank": doc.get("rank", i + 1),
            "functions": [h.get("function") for h in hops],
            "replay": rep.doc(),
            "breaks_at": None if broken is None else {"hop": broken + 1, "from": hops[broken].get("function"),
                                                      "to": hops[broken + 1].get("function"),
                                                      "why": verdicts[broken].state},
        })
    return results

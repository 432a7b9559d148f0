"""Socket-aware path queries (what ``ksrcgraph path`` and ``ksrcgraph replay`` run).

In: a ``CallGraph``, the query, and optionally a socket configuration. Out: ``SocketPaths`` — the
paths, each with its replay and the configurations that realise it.

 * With a socket: the k best paths that socket can take (``replay.search``).
 * Without: the best paths over all sockets, each replayed against every configuration the model
   knows, until k of them are realised by some configuration; then, for every configuration none of
   them realises, that configuration's best path. Realised paths come first, grouped by the
   configurations that realise them; paths no configuration realises come only after them, and only
   when asked (``unrealised``) or when nothing is realised. ``paths`` is in that order, the one text
   and JSON show (``groups()`` gives its runs).
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

    def add(self, p: query.Path, r: R.Replay, cs: list[Config]) -> None:
        self.paths.append(p)
        self.replays.append(r)
        self.realised.append(cs)

    def ordered(self) -> list[tuple[query.Path, R.Replay, list[Config]]]:
        """(path, replay, realising configurations), in the order text and JSON show them."""
        return list(zip(self.paths, self.replays, self.realised))

    def extras(self) -> list[dict]:
        return [{"replay": r.doc(), "realised_by": [str(c) for c in cs]}
                for r, cs in zip(self.replays, self.realised)]

    def summary(self) -> dict:
        return {"sockets_known": [str(c) for c in self.configs]}

    def groups(self) -> list[tuple[str, list[int]]]:
        """(label of the realising configurations, path indices): runs of paths that share them, in
        the paths' order ("" for the paths no configuration realises)."""
        out: list[tuple[str, list[int]]] = []
        for i, cs in enumerate(self.realised):
            label = _label(cs)
            if out and out[-1][0] == label:
                out[-1][1].append(i)
            else:
                out.append((label, [i]))
        return out

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
                 socket: str | None = None, unrealised: bool = False) -> SocketPaths:
    """The paths s -> t, in the order they are shown (see the module docstring)."""
    model = Model(cg)
    if socket:
        c = model.parse(socket)
        out = SocketPaths(model, c, configs=[c])
        for p, r in R.search(cg, model, c, s, t, k, via, avoid, max_depth):
            out.add(p, r, [c])
        return out
    configs = model.configs()
    found = _realised_candidates(cg, model, configs, s, t, k, via, avoid, max_depth)
    _cover_the_rest(cg, model, configs, found, s, t, via, avoid, max_depth)
    out = SocketPaths(model, None, configs=configs)
    for p, cs in _show_order(found, unrealised):
        out.add(p, R.replay(cg, model, p.nodes, cs[0], p.hops) if cs else _best_replay(cg, model, p, configs), cs)
    return out


class _Found(dict):
    """Paths found so far, by their functions: (path, the configurations that realise it)."""

    def add(self, p: query.Path, cs: list[Config]) -> None:
        key = tuple(p.nodes)
        if key in self:
            self[key][1].extend(c for c in cs if c not in self[key][1])
        else:
            self[key] = (p, list(cs))


def _realised_candidates(cg: CallGraph, model: Model, configs: list[Config], s: str, t: str, k: int,
                         via: list[str] | None, avoid: list[str] | None, max_depth: int) -> _Found:
    """The best paths over all sockets, each with the configurations whose replay it resolves for,
    searched until k of them are realised (or there are no more)."""
    found = _Found()
    for want in (k, 3 * k):
        paths = query.find_paths(cg, s, t, k=want, via=via, avoid=avoid, max_depth=max_depth)
        for p in paths:
            if tuple(p.nodes) not in found:
                found.add(p, [c for c in configs if R.replay(cg, model, p.nodes, c, p.hops).resolves])
        if sum(1 for _p, cs in found.values() if cs) >= k or len(paths) < want:
            break
    return found


def _cover_the_rest(cg: CallGraph, model: Model, configs: list[Config], found: _Found, s: str, t: str,
                    via: list[str] | None, avoid: list[str] | None, max_depth: int) -> None:
    """For every configuration none of the paths found realises, its own best path."""
    covered = {c for _p, cs in found.values() for c in cs}
    universe = pairs = None
    for c in configs:
        if c in covered:
            continue
        if universe is None:  # searched once: the part of the graph within MARGIN of the best path
            universe = R.region(cg, s, t, via, avoid)
            pairs = R.candidate_pairs(cg, universe)
        # each configuration's best path at the graph's own costs: the order shown compares them
        for p, _r in R.search(cg, model, c, s, t, 1, via, avoid, max_depth, within=universe, pairs=pairs,
                              bound=False):
            found.add(p, [c])


def _show_order(found: _Found, unrealised: bool) -> list[tuple[query.Path, list[Config]]]:
    """Realised paths first, grouped by the configurations that realise them (the group of the
    cheapest path first, each group cheapest first); paths no configuration realises after them,
    only when asked or when nothing is realised."""
    entries = sorted(found.values(), key=lambda e: (e[0].cost, len(e[0].nodes), _site_order(e[0]), e[0].nodes))
    realised = [e for e in entries if e[1]]
    groups: dict[str, list[tuple[query.Path, list[Config]]]] = {}
    for e in realised:
        groups.setdefault(_label(e[1]), []).append(e)
    shown = [e for members in groups.values() for e in members]
    if unrealised or not shown:
        shown += [e for e in entries if not e[1]]
    return shown


def _site_order(p: query.Path) -> tuple[tuple[int, str], ...]:
    """query.site_order from the hops the path already holds."""
    return tuple((query.last_call(h), b) for h, b in zip(p.hops, p.nodes[1:]))


def _label(cs: list[Config]) -> str:
    return ", ".join(str(c) for c in cs)


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
        verdicts = _saved_verdicts(cg, model, hops, nodes, config, problem)
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


def _saved_verdicts(cg: CallGraph, model: Model, hops: list[dict], nodes: list[str | None], config: Config | None,
                    problem: str) -> list[R.HopVerdict]:
    """The verdict on each hop of a saved path: the full replay when every function is still there
    (as ``path`` replays: branches the path's constants turn off, per-family state); else hop by hop,
    a missing function or call first."""
    if config is not None and all(n is not None for n in nodes):
        return R.replay(cg, model, [n for n in nodes if n is not None], config).hops
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
    return verdicts

"""Replay: walk a path hop by hop against the state a socket configuration binds.

In: a ``CallGraph``, its ``Model``, a path (node ids, and for each hop the edges that realise it),
and a ``Config``. Out: a ``Replay`` — per hop a verdict:
 * ``direct``       — a plain call (or a system call entry): nothing to check;
 * ``confirmed``    — the state binds the pointer to this function (with how: the table, the
                      assignment), or the caller passes this very function as the parameter the
                      callee calls (``param``);
 * ``contradicted`` — the state binds the pointer to something else (and to what);
 * ``unmodelled``   — no rule maps the pointer to model state.
A path *resolves* when nothing is contradicted and every indirect hop is confirmed.

``search`` finds paths for one configuration: the hops its state contradicts are removed from the
graph before the k-best search, and only paths that resolve are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import query
from ..graph import CallGraph, site_cost
from ..rows import DIRECT_KINDS, Edge
from .model import ANY_FAMILY, Config, Model


@dataclass
class HopVerdict:
    verdict: str  # direct | confirmed | contradicted | unmodelled | missing
    state: str = ""
    slot: str = ""


@dataclass
class Replay:
    socket: str
    hops: list[HopVerdict] = field(default_factory=list)

    @property
    def resolves(self) -> bool:
        return all(h.verdict in ("direct", "confirmed") for h in self.hops)

    @property
    def broken(self) -> int | None:
        """Index (into hops) of the first hop that is contradicted or missing."""
        for i, h in enumerate(self.hops):
            if h.verdict in ("contradicted", "missing"):
                return i
        return None

    def doc(self) -> dict:
        return {"socket": self.socket, "resolves": self.resolves,
                "hops": [{"verdict": h.verdict, "state": h.state or None, **({"slot": h.slot} if h.slot else {})}
                         for h in self.hops]}


def judge(model: Model, config: Config, edges: list[Edge], callee: str, before: str | None = None,
          family: str | None = None) -> HopVerdict:
    """The verdict for one hop, given the edges between its two functions (and the function the
    path came from before the caller, for a call through a parameter; and the family whose code the
    path ran last, see Model.code_family)."""
    if not edges:
        return HopVerdict("missing", "no call between these functions in this kernel")
    if any(e.kind in DIRECT_KINDS for e in edges):
        return HopVerdict("direct")
    for e in edges:
        if e.kind == "param" and not e.through_param:
            return HopVerdict("confirmed", e.evidence[0][1] if e.evidence else "passed as an argument", "")
    if before is not None and any(e.through_param for e in edges):
        # NF_HOOK -> okfn: confirmed when the path's previous caller passes this very function
        passed = [e for e in model.cg.edges_between(before, callee) if e.kind == "param" and not e.through_param]
        if passed:
            return HopVerdict("confirmed", f"the parameter holds {model.cg.name(callee)}: "
                                           f"{model.cg.name(before)} {passed[0].evidence[0][1]}", "")
    st = model.state(config)
    slotted = [e for e in edges if e.slot and "." in e.slot and not e.slot.startswith("?.") and not e.through_param]
    verdicts = []
    for e in slotted:
        b = model.binding(st, e.slot, family)
        if b is None:
            continue
        how = model.describe(b, st, callee)
        verdicts.append(HopVerdict("confirmed" if callee in b.functions else "contradicted", how, e.slot))
    for v in verdicts:
        if v.verdict == "confirmed":
            return v
    if verdicts:
        return verdicts[0]
    slot = next((e.slot for e in edges if e.slot), "")
    kinds = ", ".join(sorted({e.kind for e in edges}))
    return HopVerdict("unmodelled", f"no rule for {slot or 'this pointer'} ({kinds})", slot)


def replay(cg: CallGraph, model: Model, nodes: list[str], config: Config,
           hops: list[list[Edge]] | None = None) -> Replay:
    r = Replay(str(config))
    files = [cg.location(n)[0] for n in nodes]
    earlier: list[list[Edge]] = []  # the path's hops so far, last first
    for i, (a, b) in enumerate(zip(nodes, nodes[1:])):
        edges = hops[i] if hops is not None else cg.edges_between(a, b)
        why = (branch_not_taken(edges, earlier, cg.name(a)) if earlier else None) or socket_rules_out(config, edges)
        v = HopVerdict("contradicted", why) if why else judge(
            model, config, edges, b, nodes[i - 1] if i > 0 else None, model.code_family(files[: i + 1]))
        if v.verdict == "unmodelled":
            v = stored_on_path(model, edges, nodes[: i + 1]) or v
        r.hops.append(v)
        earlier.insert(0, edges)
    return r


def stored_on_path(model: Model, edges: list[Edge], ran: list[str]) -> HopVerdict | None:
    """A pointer no rule models is confirmed when the path itself stored the callee there: the
    assignment that put it in the pointer lies in a function the path ran before the call
    (``unix_stream_recvmsg`` fills ``state.recv_actor = unix_stream_read_actor`` and passes
    ``&state`` down to ``unix_stream_read_generic``, which calls ``state->recv_actor``)."""
    mine = set(ran)
    for e in edges:
        for step in e.evidence:
            if step[0] != "assign":
                continue
            fn = model.cg.function_at(step[2], step[3])
            if fn in mine:
                return HopVerdict("confirmed", f"set on this path: {step[1]} ({step[2]}:{step[3]}) in "
                                               f"{model.cg.name(fn)}", e.slot or "")
    return None


def socket_rules_out(config: Config, edges: list[Edge]) -> str | None:
    """Why none of these calls can run for a socket of this configuration: each sits under a test of
    the socket's type or family that it fails (sk_ioctl calls ipmr_sk_ioctl only if
    sk->sk_type == SOCK_RAW && sk->sk_family == AF_INET). None when one of them can run."""
    why = None
    for e in edges:
        why = _failed_test(config, e.sock) if not e.through_param else None
        if why is None:
            return None
    return why


def _failed_test(config: Config, tests: tuple) -> str | None:
    have = {"type": f"SOCK_{config.type.upper()}" if config.type else None,
            "family": f"AF_{config.family.upper()}" if config.family else None}
    for prop, const, equal in tests:
        if have[prop] is not None and (have[prop] == const) != equal:
            return f"the call sits under sk_{prop} {'==' if equal else '!='} {const}; this socket's is {have[prop]}"
    return None


def branch_not_taken(edges: list[Edge], earlier: list[list[Edge]], fn: str) -> str | None:
    """Why none of these calls (out of fn) can run on this path: each sits in a branch that needs a
    parameter of fn set (or unset), and the path's earlier calls pass fn the opposite constant there
    (directly, or through parameters passed on as they are: ``__sys_recvmsg`` passes 0 to
    ``___sys_recvmsg``'s nosec, which never calls ``sock_recvmsg_nosec`` under ``nosec ?``).
    earlier: the edges of the path's previous hops, the one into fn first. None when one of the
    calls can run."""
    why = None
    for e in edges:
        why = next((w for k, name, truthy in e.needs if (w := _opposite(k, name, truthy, earlier, fn))), None)
        if why is None:
            return None
    return why


def _passed(k: int, earlier: list[list[Edge]]) -> str:
    """The constant ("0", "1") the path passes as parameter k of the function it has reached, or "?"."""
    got = {e.lits[k] if k < len(e.lits) else "?" for e in earlier[0]} if earlier and earlier[0] else {"?"}
    if len(got) != 1:
        return "?"
    x = got.pop()
    return _passed(int(x[1:]), earlier[1:]) if x.startswith("p") else x


def _opposite(k: int, name: str, truthy: bool, earlier: list[list[Edge]], fn: str) -> str | None:
    if _passed(k, earlier) != ("0" if truthy else "1"):
        return None
    return (f"the call sits under {'' if truthy else '!'}{name}, and the path passes {fn}'s {name} = "
            f"{'0' if truthy else 'a non-zero constant'}")


def candidate_pairs(cg: CallGraph, within: set[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """Caller/callee pairs among within that a socket may not be able to take: every usable edge
    between them goes through a pointer (no plain call, no function passed as an argument); with
    the slots of those pointers."""
    pp = cg.pointer_pairs
    return [(a, b, slots) for a in sorted(within) for b, slots in pp.get(a, ()) if b in within]


def socket_view(cg: CallGraph, model: Model, config: Config, within: set[str],
                pairs: list[tuple[str, str, tuple[str, ...]]] | None = None, bound_costs: bool = True
                ) -> tuple[set[tuple[str, str]], dict[tuple[str, str], float]]:
    """What this configuration's state changes in the graph, among the functions within (also the
    pairs whose every call tests the socket's type or family, and fails: socket_rules_out):
     * removed — caller/callee pairs no hop of a resolving path can take: every usable edge between
       them is a pointer its state contradicts, or one no rule models (a path through it would not
       resolve either) — unless an assignment put the callee there, which the path itself may have
       run (see stored_on_path);
     * costs — pairs whose pointer the state binds to the callee alone: the hop costs as much as a
       plain call through a pointer, not as one with every value the graph knows
       (``sk->sk_prot->connect`` of a TCP socket is ``tcp_v4_connect``, not one of 13). A pointer
       bound to a set keeps its cost: the graph's own ranking of the set's members (INDIRECT_CALL's
       named candidates first) says more than the set's size."""
    st = model.state(config)
    bindings: dict[str, object] = {}
    removed: set[tuple[str, str]] = set()
    bound: dict[tuple[str, str], set[str]] = {}
    for a, b, slots in (pairs if pairs is not None else candidate_pairs(cg, within)):
        dead = True
        for slot in slots:
            if not slot or "." not in slot or slot.startswith("?."):
                continue  # a local, a global or an untyped pointer: never confirmed
            if slot not in bindings:  # the family the path will be in is not known yet: any
                bindings[slot] = model.binding(st, slot, ANY_FAMILY)
            bnd = bindings[slot]
            if bnd is not None and b in bnd.functions:  # type: ignore[attr-defined]
                dead = False
                if len(bnd.functions) == 1:  # type: ignore[attr-defined]
                    bound.setdefault((a, b), set()).add(slot)
                break
            if bnd is None and _stored_somewhere(cg, a, b, slot):  # the path may store it (stored_on_path)
                dead = False
                break
        if dead:
            removed.add((a, b))
    for a, b, tests in cg.socket_guarded:
        if a in within and b in within and all(_failed_test(config, t) for t in tests):
            removed.add((a, b))
    return removed, _bound_costs(cg, bound) if bound_costs else {}


def _bound_costs(cg: CallGraph, bound: dict[tuple[str, str], set[str]]) -> dict[tuple[str, str], float]:
    """The cost of each pair whose pointer the state binds to the callee alone: its cheapest edge
    through such a slot, as if that site called one function (graph.site_cost)."""
    cg.rows(sorted({cg.index[a] for a, _b in bound}))  # fetched at once
    costs: dict[tuple[str, str], float] = {}
    for (a, b), slots in bound.items():
        now = cg.weight(a, b)
        best = min((site_cost(e, 1) for e in cg.edges_between(a, b) if e.slot in slots and not e.through_param),
                   default=now)
        if best < now:
            costs[(a, b)] = best
    return costs


def _stored_somewhere(cg: CallGraph, a: str, b: str, slot: str) -> bool:
    return any(e.slot == slot and any(step[0] == "assign" for step in e.evidence) for e in cg.edges_between(a, b))


# A socket's paths are searched among the functions that can lie on a path costing at most the best
# path over all sockets plus this (a hop costs 1; a pointer with 2^n targets adds n): a TCP send path
# may be ~10 longer than a packet socket's. Widened once when it holds too few.
MARGIN = 24.0


def region(cg: CallGraph, src: str, dst: str, via: list[str] | None, avoid: list[str] | None,
           margin: float = MARGIN) -> set[str]:
    stops = [src, *(via or []), dst]
    out: set[str] = set()
    for a, b in zip(stops, stops[1:]):
        out |= query.relevant(cg, a, b, margin, avoid)
    return out


def search(cg: CallGraph, model: Model, config: Config, src: str, dst: str, k: int = 5, via: list[str] | None = None,
           avoid: list[str] | None = None, max_depth: int = query.DEFAULT_MAX_DEPTH,
           within: set[str] | None = None, pairs: list | None = None, bound: bool = True
           ) -> list[tuple[query.Path, Replay]]:
    """The k best paths a socket of this configuration can take, each with its replay (among the
    functions within; by default the region around the best paths, see MARGIN). bound: hops
    through pointers the state binds to one function cost what socket_view says (their costs are
    then this configuration's, not comparable with another's)."""
    if within is None:
        found = search(cg, model, config, src, dst, k, via, avoid, max_depth, region(cg, src, dst, via, avoid),
                       bound=bound)
        if len(found) < k:
            found = search(cg, model, config, src, dst, k, via, avoid, max_depth,
                           region(cg, src, dst, via, avoid, 2 * MARGIN), bound=bound)
        return found
    removed, costs = socket_view(cg, model, config, within, pairs, bound)
    cg = cg.reweighted(costs) if costs else cg
    if k == 1:
        # one path wanted: plain Dijkstra, segment by segment; Yen only when that path is not simple
        stops = [src, *(via or []), dst]
        nodes: list[str] = []
        cost = 0.0
        for a, b in zip(stops, stops[1:]):
            sp = cg.shortest_path(a, b, frozenset(avoid or ()), frozenset(removed), within)
            if sp is None:
                return []
            cost += sp[0]
            nodes.extend(sp[1] if not nodes else sp[1][1:])
        if len(nodes) - 1 <= max_depth and len(set(nodes)) == len(nodes):
            p = query.Path(nodes, round(cost, 3), [cg.edges_between(a, b) for a, b in zip(nodes, nodes[1:])])
            r = replay(cg, model, p.nodes, config, p.hops)
            if r.resolves:
                return [(p, r)]
    found: list[tuple[query.Path, Replay]] = []
    want = k
    for factor in (2, 6):
        paths = query.find_paths(cg, src, dst, k=want * factor, via=via, avoid=avoid, max_depth=max_depth,
                                 restrict=query.Restriction(frozenset(removed), frozenset(within)))
        found = []
        for p in paths:
            r = replay(cg, model, p.nodes, config, p.hops)
            if r.resolves:
                found.append((p, r))
                if len(found) >= k:
                    return found
        if len(paths) < want * factor:
            break
    return found

"""Query-time part of the reference stack: socket configurations and the state each one binds.

In: a ``CallGraph`` whose ``model`` part ``refstack.tables`` built (from that kernel's facts).
Out: ``Model.configs()`` (what ``ksrcgraph sockets`` lists), ``Model.state(config)`` — the tables a
socket of that configuration ends up with, computed the way the kernel computes them — and
``Model.binding(state, slot)`` — which functions a pointer of that slot can hold for that socket
(None when no rule covers the slot: ``unmodelled``), and ``Model.describe`` — how a verdict says so.

The kernel's own algorithms (the ``inet_create`` wildcard match on (type, protocol), the last
``sock->ops =`` assignment that applies to the socket type) are code here; every table comes from
the extracted source, every mapping from a receiver to state from ``data/refstack_*.tsv`` (through
``refstack.states``: what each state key binds, where it is read, how it is named).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property

from .. import kdata
from ..errors import UsageError
from . import states
from .guards import eval_type_cond, guard_holds, type_const
from .sockets import Binding, Config, SocketState, short
from .tables import Alloc, Assignment, Exit, Registration, Store, model_part

# What each kind of state (refstack_state.tsv's binds column) binds a pointer to: the tables of a
# socket's state (or of the whole socket layer) whose field holds the function. "stores" is apart:
# the functions stored into the pointer's own slot (Model.stored).
_BOUND_TABLES = {
    "ops": lambda m, st: st.ops,
    "prot": lambda m, st: st.prot,
    "family": lambda m, st: [st.family_table] if st.family_table else [],
    "af_ops": lambda m, st: st.af_ops,
    "protocol": lambda m, st: st.protocol_tables,
    "ptype": lambda m, st: st.ptype_tables,
    "file": lambda m, st: m.socket_file_tables,
}
assert set(_BOUND_TABLES) | {"stores"} == set(states.BINDS), "refstack.states.BINDS and Model disagree"


# How deep, in direct calls from the family's create function, stores into a socket's pointers are
# looked for (unix_create -> unix_create1 -> sock_init_data -> sock_init_data_uid sets sk_data_ready).
CREATE_STORE_DEPTH = 4
# binding(..., family=ANY_FAMILY): state kept per family, for a path not known yet (the search's pruning)
ANY_FAMILY = "*"


class Model:
    def __init__(self, cg) -> None:  # type: ignore[no-untyped-def]
        self.cg = cg
        m = model_part(cg)
        self.tables: dict[str, dict] = m.get("tables", {})
        self.registrations = [Registration._make(r) for r in m.get("registrations", [])]
        self.assigns = [Assignment._make(r) for r in m.get("assigns", [])]
        self.allocs = [Alloc._make(r) for r in m.get("allocs", [])]
        self.stores = {slot: [Store._make(r) for r in recs] for slot, recs in m.get("stores", {}).items()}
        self.exits = [Exit._make(r) for r in m.get("exits", [])]
        self.fn_stores = [Assignment._make(r) for r in m.get("fn_stores", [])]
        self.states = states.table()
        self.rules = states.rules()
        self.fam_data = kdata.refstack_families()
        self._states: dict[Config, SocketState] = {}
        self._create_paths: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self._bindings: dict[tuple[Config, str], Binding | None] = {}

    # -- tables ----------------------------------------------------------------------------------
    def fns(self, table: str, fld: str) -> list[str]:
        t = self.tables.get(table)
        if not t:
            return []
        return [v[1] for v in t["fields"].get(fld, []) if v[0] == "fn"]

    def ref(self, table: str, fld: str) -> list[str]:
        t = self.tables.get(table)
        if not t:
            return []
        return [v[1] for v in t["fields"].get(fld, []) if v[0] == "table"]

    def const(self, table: str, fld: str) -> str | None:
        t = self.tables.get(table)
        if not t:
            return None
        for v in t["fields"].get(fld, []):
            if v[0] == "const":
                return v[1]
        return None

    def where(self, table: str) -> str:
        t = self.tables.get(table)
        return f"{t['file']}:{t['line']}" if t else "?"

    @staticmethod
    def label(table: str) -> str:
        """A table's name as written (``packet_ops``, not ``net/packet/af_packet.c::packet_ops``)."""
        return table.split("::")[-1]

    def registered(self, function: str) -> list[tuple[str, str | None]]:
        """(table, key) registered by calls of function, in source order."""
        out = []
        for r in self.registrations:
            if r.function == function:
                out.extend((t, r.key) for t in r.tables)
        return out

    def _state_value(self, binds: str) -> str | None:
        """The value column of the state of this kind (refstack_state.tsv), if there is one."""
        s = states.bound(binds)
        return s.value if s is not None else None

    # -- families and configurations ---------------------------------------------------------------
    def _family_tables(self, keyed: bool) -> Iterator[tuple[str, str, str | None, dict]]:
        """(family, table, key, entry) of the family tables (the family state's kind: net_proto_family)
        registered by functions that take a key (bt_sock_register) or not (sock_register)."""
        kind = self._state_value("family")
        for r in self.registrations:
            if r.registers != kind or self._keyed(r.function) != keyed:
                continue
            for t in r.tables:
                fam = self.const(t, "family")
                if fam:
                    yield short(fam, "family"), t, r.key, {"table": t, "create": self.fns(t, "create"),
                                                           "file": r.file, "line": r.line}

    @cached_property
    def families(self) -> dict[str, dict]:
        """family -> {table, create, file, line}: the net_proto_family tables sock_register adds."""
        out: dict[str, dict] = {}
        for fname, _t, _key, entry in self._family_tables(keyed=False):
            out.setdefault(fname, entry)
        return dict(sorted(out.items()))

    @staticmethod
    def _keyed(function: str) -> bool:
        """Does this registration function take the key as an argument (registrations.tsv)?"""
        _arg, key, _registers = kdata.registrations().get(function, (-1, -1, ""))
        return key >= 0

    @cached_property
    def subfamilies(self) -> dict[str, dict[str, dict]]:
        """family -> protocol -> {table, create, file, line}: net_proto_family tables registered under
        a protocol number (``bt_sock_register(BTPROTO_L2CAP, &l2cap_sock_family_ops)``), to which the
        family's create function hands a socket of that protocol."""
        out: dict[str, dict[str, dict]] = {}
        for fname, _t, key, entry in self._family_tables(keyed=True):
            proto = self.protocol_name(fname, key)
            if fname in self.families and proto:
                out.setdefault(fname, {}).setdefault(proto, entry)
        return {f: dict(sorted(v.items())) for f, v in sorted(out.items())}

    def protocols(self, family: str) -> tuple[str, tuple[str, ...]]:
        """(prefix, wildcards) of the family's protocol constants (``IPPROTO_``, ``IPPROTO_IP 0`` for
        inet; ``CAN_`` and none for can), from refstack_families.tsv."""
        f = self.fam_data.get(family, {})
        return f.get("protocol_prefix", ""), tuple(f.get("protocol_any", "").split())

    def protocol_name(self, family: str, const: str | None) -> str:
        """IPPROTO_UDP -> udp, CAN_BCM -> bcm; "" for a wildcard or no protocol."""
        prefix, wild = self.protocols(family)
        if not const or const in wild:
            return ""
        return (const[len(prefix) :] if prefix and const.startswith(prefix) else const).lower()

    def entries(self, family: str) -> list[str]:
        reg = self.fam_data.get(family, {}).get("protosw_register")
        return [t for t, _ in self.registered(reg)] if reg else []

    def create_path(self, family: str, depth: int = 2, protocol: str = "") -> list[tuple[int, str]]:
        """(depth, function) of the family's create function and the functions it calls directly
        (then, for a sub-family's protocol, that protocol's create function and its callees)."""
        key = (family, depth, protocol)
        got = self._create_paths.get(key)
        if got is None:
            got = self._create_paths[key] = self._create_path(family, depth, protocol)
        return got

    def _create_path(self, family: str, depth: int, protocol: str) -> list[tuple[int, str]]:
        fam = self.families.get(family)
        if not fam:
            return []
        sub = self.subfamilies.get(family, {}).get(protocol)
        out: list[tuple[int, str]] = []
        seen: set[str] = set()
        frontier = list(fam["create"])
        for d in range(depth + 2 if sub else depth + 1):
            if sub and d == 1:
                frontier = list(sub["create"]) + frontier  # called through the sub-family's table
            nxt = []
            for f in frontier:
                if f in seen:
                    continue
                seen.add(f)
                out.append((d, f))
                for callee, edges in sorted(self.cg.out.get(f, {}).items()):
                    if any(e.kind == "direct" for e in edges) and not self._external(callee):
                        nxt.append(callee)
            frontier = nxt
        return out

    def _external(self, nid: str) -> bool:
        node = self.cg.nodes.get(nid)
        return node is not None and node.external

    def _types_in(self, family: str, protocol: str = "") -> list[str]:
        """Socket types a non-table family's create path mentions (guards and early exits)."""
        fns = {f for _, f in self.create_path(family, protocol=protocol)}
        found: list[str] = []
        texts = [str(rec.guard) for rec in [*self.assigns, *self.allocs] if rec.fn in fns and rec.guard]
        texts += [ex.cond for ex in self.exits if ex.fn in fns]
        for text in texts:
            for c in re.findall(r"\bSOCK_[A-Z]+\b", text):
                if c.endswith("_MAX") or c.endswith("_MASK"):
                    continue  # bounds, not types
                if c not in found:
                    found.append(c)
        return [short(c, "type") for c in found]

    def rejects(self, family: str, sock_type: str, protocol: str = "") -> str | None:
        """The early-exit condition of the family's create path that refuses this type, if any."""
        for _d, f in self.create_path(family, protocol=protocol):
            for ex in self.exits:
                if ex.fn == f and eval_type_cond(ex.cond, type_const(sock_type)) is True:
                    return f"{ex.cond} ({ex.file}:{ex.line})"
        return None

    def configs(self) -> list[Config]:
        out: list[Config] = []
        for fam in self.families:
            ents = self.entries(fam)
            if ents:
                for e in ents:
                    ty = self.const(e, "type")
                    proto = self.const(e, "protocol")
                    if not ty:
                        continue
                    c = Config(fam, short(ty, "type"), self.protocol_name(fam, proto))
                    if c not in out:
                        out.append(c)
            else:
                for proto in self.subfamilies.get(fam) or [""]:
                    for t in self._types_in(fam, proto) or [""]:
                        c = Config(fam, t, proto)
                        if c not in out and self.state(c).ok:
                            out.append(c)
        return out

    def parse(self, text: str) -> Config:
        parts = [p.strip().lower() for p in text.split(":")]
        if not parts[0] or len(parts) > 3:
            raise UsageError(f"invalid socket configuration {text!r}", "use family:type[:protocol], e.g. inet:dgram:udp")
        c = Config(*(parts + ["", ""])[:3])
        if c.family not in self.families:
            known = ", ".join(self.families) or "none"
            raise UsageError(f"unknown socket family {c.family!r} in this kernel", f"families found: {known}")
        st = self.state(c)
        if not st.ok:
            raise UsageError(f"socket {text} cannot be created: {st.problem}",
                             "see `ksrcgraph sockets` for the configurations this kernel knows")
        return c

    # -- state -------------------------------------------------------------------------------------
    def state(self, c: Config) -> SocketState:
        got = self._states.get(c)
        if got is None:
            got = self._states[c] = self._build_state(c)
        return got

    def _build_state(self, c: Config) -> SocketState:
        st = SocketState(c)
        fam = self.families.get(c.family)
        if fam is None:
            st.problem = f"no family {c.family} registered with sock_register"
            return st
        st.family_table = fam["table"]
        st.create = list(fam["create"])
        ents = self.entries(c.family)
        if not (self._from_entry(st, ents) if ents else self._from_create_path(st)):
            return st
        if st.prot:
            st.af_ops = self._init_tables(st.prot)
        st.ptype_tables = self._ptype_tables(c.family)
        return st

    def _from_entry(self, st: SocketState, ents: list[str]) -> bool:
        """ops, prot and protocol handlers from the family's (type, protocol) switch entry; False
        when there is none for this socket."""
        c = st.config
        entry = self._match_entry(ents, c)
        if entry is None:
            st.problem = f"no {c.family} entry for type {c.type or '?'} and protocol {c.protocol or 'any'}"
            return False
        st.entry = entry
        st.ops = self.ref(entry, "ops")
        st.prot = self.ref(entry, "prot")
        proto = self.const(entry, "protocol")
        if c.protocol:
            proto = self.protocols(c.family)[0] + c.protocol.upper()
        column = self._state_value("protocol")
        reg = self.fam_data.get(c.family, {}).get(column) if column else None
        if reg and proto:
            st.protocol_tables = [t for t, key in self.registered(reg) if key == proto]
        return True

    def _from_create_path(self, st: SocketState) -> bool:
        """ops and prot as the family's create path sets them for this type (the sub-family's, for
        a protocol); False when the family cannot create this socket."""
        c = st.config
        subs = self.subfamilies.get(c.family, {})
        if subs and c.protocol not in subs:
            st.problem = (f"no {c.family} protocol {c.protocol} registered" if c.protocol else
                          f"{c.family} sockets need a protocol ({', '.join(subs)})")
            return False
        if subs:
            st.create += [f for f in subs[c.protocol]["create"] if f not in st.create]
        why = self.rejects(c.family, c.type, c.protocol) if c.type else None
        if why:
            st.problem = f"{c.family} refuses type {c.type}: {why}"
            return False
        order = {f: d for d, f in self.create_path(c.family, protocol=c.protocol)}
        ops_slot = self._state_value("ops")
        ops = self._applicable([a for a in self.assigns if a.fn in order and a.slot == ops_slot], order, c)
        st.ops = [v[1] for v in ops if v[0] == "table"]
        if not st.ops and c.type:
            st.problem = f"{c.family} gives type {c.type} no proto_ops"
        allocs = self._applicable(self.allocs, order, c)
        st.prot = [v[1] for v in allocs if v[0] == "table"]
        return True

    def _ptype_tables(self, family: str) -> list[str]:
        """The packet types registered (by the ptype state's function) for the family's ethertype."""
        eth = self.fam_data.get(family, {}).get("ethertype")
        register = self._state_value("ptype")
        if not eth or not register:
            return []
        return [t for t, _ in self.registered(register)
                if re.search(rf"\b{re.escape(eth)}\b", self.const(t, "type") or "")]

    def _match_entry(self, ents: list[str], c: Config) -> str | None:
        """inet_create's (and can_create's) choice: the entry of this type for this protocol, or a
        wildcard entry (IPPROTO_IP) taking any protocol; with no protocol given, the first entry of
        the type."""
        prefix, wild = self.protocols(c.family)
        want = prefix + c.protocol.upper() if c.protocol else None
        if want in wild:
            want = None
        candidates = [e for e in ents if c.type and short(self.const(e, "type") or "", "type") == c.type]
        for e in candidates:
            have = self.const(e, "protocol") or ""
            if want is not None and (have == want or have in wild):
                return e
            if want is None and have not in wild:
                return e
        if want is None:  # "inet:raw": any protocol the wildcard entry takes
            for e in candidates:
                if (self.const(e, "protocol") or "") in wild:
                    return e
        return None

    def _applicable(self, recs: list, order: dict[str, int], c: Config) -> list:
        """Values of the assignments (or allocations) that run for this socket type, in execution
        order: one whose guard holds replaces what came before; one whose guard cannot be read may
        run, and joins them; one whose guard fails is skipped."""
        chosen: list = []
        for rec in sorted((r for r in recs if r.fn in order), key=lambda r: (order[r.fn], r.file, r.line)):
            ok = guard_holds(rec.guard, c.type)
            if ok is False:
                continue
            if ok is True:
                chosen = [rec.value]
            elif rec.value not in chosen:
                chosen.append(rec.value)
        return chosen

    def _init_tables(self, prots: list[str]) -> list[str]:
        """The tables the prots' init functions (or the functions they call) store into the af_ops
        state's slot."""
        what = self._state_value("af_ops")
        if what is None:
            return []
        out: list[str] = []
        for prot in prots:
            inits = self.fns(prot, "init")
            reach = set(inits)
            for f in inits:
                reach.update(callee for callee, es in self.cg.out.get(f, {}).items() if any(e.kind == "direct" for e in es))
            for a in self.assigns:
                if a.fn in reach and a.slot == what and a.value[0] == "table" and a.value[1] not in out:
                    out.append(a.value[1])
        return out

    @cached_property
    def socket_file_tables(self) -> list[str]:
        """The tables the file state names (socket_file_ops: instances of a struct in a file)."""
        what = self._state_value("file")
        if what is None:
            return []
        file, _, struct = what.partition(":")
        return sorted(n for n, t in self.tables.items() if t["file"] == file and t["struct"] == struct)

    def stored(self, slot: str, c: Config, state: states.State, family: str | None = None
               ) -> tuple[set[str], list[str]]:
        """Functions stored into slot that a stores state takes for config c: by a statement with
        the state's text, or by code under a family's directory (the refstack_families.tsv column
        the state names) — the family given (the one whose code the path ran last), else the
        socket's."""
        recs = self.stores.get(slot, [])
        if state.how == "stores_text":
            keep = [r for r in recs if state.value in r.text]
        elif family == ANY_FAMILY:  # whichever family's code the path runs last
            keep = list(recs)
        else:
            route = self.fam_data.get(family or c.family, {}).get(state.value)
            shared = state.how == "family_or_shared"
            keep = [r for r in recs if route and r.file.startswith(route)
                    or shared and self.code_family([r.file]) is None]
        return {r.function for r in keep}, [f"{r.text} ({r.file}:{r.line})" for r in keep]

    # -- bindings ----------------------------------------------------------------------------------
    def rule_for(self, slot: str) -> tuple[str, str] | None:
        """(state key, field of its tables) of the first rule for this slot."""
        struct, _, fld = slot.partition(".")
        for r in self.rules:
            if r.matches(struct, fld):
                return r.state, r.field_for(fld)
        return None

    def created_with(self, st: SocketState, slot: str) -> Binding | None:
        """A pointer the family's create path sets (po->xmit = dev_queue_xmit in packet_create,
        sk->sk_data_ready = sock_def_readable in sock_init_data), for this socket type."""
        path = self.create_path(st.config.family, depth=CREATE_STORE_DEPTH, protocol=st.config.protocol)
        order = {f: d for d, f in path}
        recs = [r for r in self.fn_stores if r.slot == slot and r.fn in order]
        if not recs:
            return None
        fns = set(self._applicable(recs, order, st.config))
        where = [f"{r.file}:{r.line}" for r in recs if r.value in fns]
        return Binding("create", fns, where, slot.partition(".")[2],
                       note=f"set while creating a {st.config} socket")

    def binding(self, st: SocketState, slot: str, family: str | None = None) -> Binding | None:
        """Which functions a pointer of this slot can hold for this socket; None when unmodelled.
        family: the family whose code the path ran last (see code_family), for the state kept per
        family."""
        key = (st.config, slot, family)
        if key not in self._bindings:
            self._bindings[key] = self._binding(st, slot, family)
        return self._bindings[key]

    def code_family(self, files: list[str | None]) -> str | None:
        """The family whose directory (refstack_families.tsv's route_dir) holds the last of these
        files that lies in one: an object a path uses was set up by that family's code (a UDP send on
        an IPv6 socket to an IPv4-mapped address routes with IPv4's code, and gets IPv4's dst)."""
        dirs = self._family_dirs
        for f in reversed(files):
            for family, d in dirs:
                if f and f.startswith(d):
                    return family
        return None

    @cached_property
    def _family_dirs(self) -> list[tuple[str, str]]:
        column = next((s.value for s in self.states.values() if s.how in ("per_family", "family_or_shared")
                       and s.binds == "stores"), None)
        return sorted(((f, row[column]) for f, row in self.fam_data.items() if column and row.get(column)),
                      key=lambda x: -len(x[1]))

    def _binding(self, st: SocketState, slot: str, family: str | None = None) -> Binding | None:
        if not st.ok:
            return None
        rule = self.rule_for(slot)
        if rule is None:
            return self.created_with(st, slot)
        key, fld = rule
        state = self.states[key]
        if state.binds == "stores":
            fns, where = self.stored(slot, st.config, state, None if state.how == "stores_text" else family)
            return Binding(key, fns, where, fld)
        tables = _BOUND_TABLES[state.binds](self, st)
        fns = {f for t in tables for f in self.fns(t, fld)}
        return Binding(key, fns, tables, fld)

    def describe(self, b: Binding, st: SocketState, callee: str | None = None) -> str:
        """How the state binds: 'sock->ops = inet_dgram_ops (net/ipv4/af_inet.c:1111): .sendmsg = inet_sendmsg'
        (for a set of stores, those that store callee first)."""
        names = sorted(self.cg.name(f) for f in b.functions)
        binds = ", ".join(names) if names else "nothing"
        if b.key == "create":
            return f"{b.note}: .{b.field} = {binds} ({', '.join(b.tables[:3])})"
        state = self.states[b.key]
        label = state.title(st.config.family, st.config.protocol)
        if state.binds == "stores":
            stores = b.tables
            if callee is not None:
                cname = self.cg.name(callee)
                stores = sorted(stores, key=lambda x: not re.search(rf"=\s*{re.escape(cname)}\b", x))
            src = "; ".join(stores[:3]) + (f"; +{len(stores) - 3} more" if len(stores) > 3 else "")
            return f"{label} ∈ {{{binds}}} set by {src or 'nothing in scope'}"
        tabs = ", ".join(f"{self.label(t)} ({self.where(t)})" for t in b.tables) or "no table"
        return f"{label} = {tabs}: .{b.field} = {binds}"

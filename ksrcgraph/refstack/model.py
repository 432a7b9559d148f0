"""Query-time part of the reference stack: socket configurations and the state each one binds.

In: a ``CallGraph`` whose ``lg.model`` was filled by ``refstack.tables`` (from that kernel's facts).
Out: ``Model.configs()`` (what ``ksrcgraph sockets`` lists), ``Model.state(config)`` — the tables a
socket of that configuration ends up with, computed the way the kernel computes them — and
``Model.binding(state, slot)`` — which functions a pointer of that slot can hold for that socket
(None when no rule covers the slot: ``unmodelled``).

The kernel's own algorithms (the ``inet_create`` wildcard match on (type, protocol), the last
``sock->ops =`` assignment that applies to the socket type) are code here; every table comes from
the extracted source, every mapping from a receiver to state from ``data/refstack_*.tsv``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from .. import kdata
from ..errors import UsageError

_PREFIX = {"family": ("PF_", "AF_"), "type": ("SOCK_",)}


def short(const: str, what: str) -> str:
    """PF_INET -> inet, SOCK_DGRAM -> dgram (protocols: Model.protocol_name)."""
    c = re.sub(r"^cpu_to_be16\((.*)\)$", r"\1", const.strip())
    for p in _PREFIX[what]:
        if c.startswith(p):
            return c[len(p) :].lower()
    return c.lower()


@dataclass(frozen=True, order=True)
class Config:
    family: str
    type: str = ""
    protocol: str = ""

    def __str__(self) -> str:
        return ":".join(x for x in (self.family, self.type, self.protocol) if x)


@dataclass
class Binding:
    key: str  # model state, e.g. "sock.ops"
    functions: set[str]
    tables: list[str]  # the tables (or stores) that give them
    field: str
    note: str = ""


@dataclass
class SocketState:
    config: Config
    family_table: str | None = None
    create: list[str] = field(default_factory=list)
    entry: str | None = None  # the protosw-like entry chosen by (type, protocol)
    ops: list[str] = field(default_factory=list)
    prot: list[str] = field(default_factory=list)
    af_ops: list[str] = field(default_factory=list)
    protocol_tables: list[str] = field(default_factory=list)
    ptype_tables: list[str] = field(default_factory=list)
    problem: str = ""  # why this configuration cannot be created

    @property
    def ok(self) -> bool:
        return not self.problem


class Model:
    def __init__(self, cg) -> None:  # type: ignore[no-untyped-def]
        self.cg = cg
        m = cg.model
        self.tables: dict[str, dict] = m.get("tables", {})
        self.registrations: list = m.get("registrations", [])
        self.assigns: list = m.get("assigns", [])
        self.allocs: list = m.get("allocs", [])
        self.stores: dict[str, list] = m.get("stores", {})
        self.exits: list = m.get("exits", [])
        self.fn_stores: list = m.get("fn_stores", [])
        self.rules = kdata.refstack_rules()
        self.fam_data = kdata.refstack_families()
        self.state_src = kdata.refstack_state()
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
        for name, _registers, tables, key, _caller, _file, _line in self.registrations:
            if name == function:
                out.extend((t, key) for t in tables)
        return out

    # -- families and configurations ---------------------------------------------------------------
    def _family_tables(self, keyed: bool) -> Iterator[tuple[str, str, str | None, dict]]:
        """(family, table, key, entry) of the net_proto_family tables registered by functions that
        take a key (bt_sock_register) or not (sock_register)."""
        for name, registers, tables, key, _caller, file, line in self.registrations:
            if registers != "net_proto_family" or self._keyed(name) != keyed:
                continue
            for t in tables:
                fam = self.const(t, "family")
                if fam:
                    yield short(fam, "family"), t, key, {"table": t, "create": self.fns(t, "create"),
                                                         "file": file, "line": line}

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
        reg = kdata.registrations().get(function)
        return reg is not None and reg[1] >= 0

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
                    if any(e.kind == "direct" for e in edges) and self.cg.nodes.get(callee, ("",) * 5)[4] != "x":
                        nxt.append(callee)
            frontier = nxt
        return out

    def _types_in(self, family: str, protocol: str = "") -> list[str]:
        """Socket types a non-table family's create path mentions (guards and early exits)."""
        fns = {f for _, f in self.create_path(family, protocol=protocol)}
        found: list[str] = []
        texts = [str(rec[-3]) for rec in self.assigns + self.allocs if rec[0] in fns and rec[-3]]
        texts += [ex[1] for ex in self.exits if ex[0] in fns]
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
            for fid, cond, file, line in self.exits:
                if fid == f and _eval_type_cond(cond, "SOCK_" + sock_type.upper() if sock_type else None) is True:
                    return f"{cond} ({file}:{line})"
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
        fdata = self.fam_data.get(c.family, {})
        ents = self.entries(c.family)
        if ents:
            entry = self._match_entry(ents, c)
            if entry is None:
                st.problem = f"no {c.family} entry for type {c.type or '?'} and protocol {c.protocol or 'any'}"
                return st
            st.entry = entry
            st.ops = self.ref(entry, "ops")
            st.prot = self.ref(entry, "prot")
            proto = self.const(entry, "protocol")
            if c.protocol:
                proto = self.protocols(c.family)[0] + c.protocol.upper()
            reg = fdata.get("protocol_register")
            if reg and proto:
                st.protocol_tables = [t for t, key in self.registered(reg) if key == proto]
        else:
            subs = self.subfamilies.get(c.family, {})
            if subs and c.protocol not in subs:
                st.problem = (f"no {c.family} protocol {c.protocol} registered" if c.protocol else
                              f"{c.family} sockets need a protocol ({', '.join(subs)})")
                return st
            if subs:
                st.create += [f for f in subs[c.protocol]["create"] if f not in st.create]
            why = self.rejects(c.family, c.type, c.protocol) if c.type else None
            if why:
                st.problem = f"{c.family} refuses type {c.type}: {why}"
                return st
            path = self.create_path(c.family, protocol=c.protocol)
            order = {f: d for d, f in path}
            ops = self._applicable([a for a in self.assigns if a[0] in order and a[1] == "socket.ops"], order, c)
            st.ops = [v[1] for v in ops if v[0] == "table"]
            if not st.ops and c.type:
                st.problem = f"{c.family} gives type {c.type} no proto_ops"
            allocs = self._applicable(self.allocs, order, c)
            st.prot = [v[1] for v in allocs if v[0] == "table"]
        if st.prot:
            st.af_ops = self._init_tables(st.prot)
        eth = fdata.get("ethertype")
        if eth:
            for t, _ in self.registered("dev_add_pack"):
                ty = self.const(t, "type") or ""
                if re.search(rf"\b{re.escape(eth)}\b", ty):
                    st.ptype_tables.append(t)
        return st

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
        for rec in sorted((r for r in recs if r[0] in order), key=lambda r: (order[r[0]], r[-2], r[-1])):
            ok = guard_holds(rec[-3], c.type)
            if ok is False:
                continue
            if ok is True:
                chosen = [rec[-4]]
            elif rec[-4] not in chosen:
                chosen.append(rec[-4])
        return chosen

    def _init_tables(self, prots: list[str]) -> list[str]:
        how, what = self.state_src.get("icsk.af_ops", ("", ""))
        if how != "init_store":
            return []
        out: list[str] = []
        for prot in prots:
            inits = self.fns(prot, "init")
            reach = set(inits)
            for f in inits:
                reach.update(callee for callee, es in self.cg.out.get(f, {}).items() if any(e.kind == "direct" for e in es))
            for fid, slot, v, _guard, _file, _line in self.assigns:
                if fid in reach and slot == what and v[0] == "table" and v[1] not in out:
                    out.append(v[1])
        return out

    @cached_property
    def socket_file_tables(self) -> list[str]:
        how, what = self.state_src.get("file.f_op", ("", ""))
        if how != "tables_in":
            return []
        file, _, struct = what.partition(":")
        return sorted(n for n, t in self.tables.items() if t["file"] == file and t["struct"] == struct)

    def stored(self, slot: str, c: Config, key: str) -> tuple[set[str], list[str]]:
        """Functions stored into slot that the state key takes for config c (see refstack_state.tsv
        and the route_dir column of refstack_families.tsv)."""
        recs = self.stores.get(slot, [])
        how, what = self.state_src.get(key, ("", ""))
        if how == "stores_text":
            keep = [r for r in recs if what in r[2]]
        else:
            route = self.fam_data.get(c.family, {}).get("route_dir")
            keep = [r for r in recs if route and r[3].startswith(route)]
        return {r[0] for r in keep}, [f"{r[2]} ({r[3]}:{r[4]})" for r in keep]

    # -- bindings ----------------------------------------------------------------------------------
    def rule_for(self, slot: str) -> tuple[str, str] | None:
        struct, _, fld = slot.partition(".")
        for rs, rf, state, sf in self.rules:
            if rs == struct and (rf == "*" or rf == fld):
                return state, (fld if sf == "*" else sf)
        return None

    def created_with(self, st: SocketState, slot: str) -> Binding | None:
        """A pointer the family's create path sets (po->xmit = dev_queue_xmit in packet_create,
        sk->sk_data_ready = sock_def_readable in sock_init_data), for this socket type."""
        path = self.create_path(st.config.family, protocol=st.config.protocol)
        order = {f: d for d, f in path}
        recs = [r for r in self.fn_stores if r[1] == slot and r[0] in order]
        if not recs:
            return None
        fns = set(self._applicable([(r[0], r[1], r[2], r[3], r[4], r[5]) for r in recs], order, st.config))
        where = [f"{r[4]}:{r[5]}" for r in recs if r[2] in fns]
        return Binding("create", fns, where, slot.partition(".")[2],
                       note=f"set while creating a {st.config} socket")

    def binding(self, st: SocketState, slot: str) -> Binding | None:
        """Which functions a pointer of this slot can hold for this socket; None when unmodelled."""
        key = (st.config, slot)
        if key not in self._bindings:
            self._bindings[key] = self._binding(st, slot)
        return self._bindings[key]

    def _binding(self, st: SocketState, slot: str) -> Binding | None:
        if not st.ok:
            return None
        rule = self.rule_for(slot)
        if rule is None:
            return self.created_with(st, slot)
        key, fld = rule
        tables: list[str] = []
        if key == "sock.ops":
            tables = st.ops
        elif key == "sk.prot":
            tables = st.prot
        elif key == "family":
            tables = [st.family_table] if st.family_table else []
        elif key == "file.f_op":
            tables = self.socket_file_tables
        elif key == "icsk.af_ops":
            tables = st.af_ops
        elif key == "protocol":
            tables = st.protocol_tables
        elif key == "ptype":
            tables = st.ptype_tables
        elif key in ("dst.output", "dst.input", "napi.poll"):
            fns, where = self.stored(slot, st.config, key)
            return Binding(key, fns, where, fld)
        else:
            return None
        fns = {f for t in tables for f in self.fns(t, fld)}
        return Binding(key, fns, tables, fld)

    def describe(self, b: Binding, st: SocketState, callee: str | None = None) -> str:
        """How the state binds: 'sock->ops = inet_dgram_ops (net/ipv4/af_inet.c:1111): .sendmsg = inet_sendmsg'
        (for a set of stores, those that store callee first)."""
        label = {"sock.ops": "sock->ops", "sk.prot": "sk->sk_prot", "family": f"net_families[{st.config.family}]",
                 "file.f_op": "file->f_op", "icsk.af_ops": "icsk->icsk_af_ops",
                 "protocol": f"{st.config.family}_protos[{st.config.protocol or '?'}]",
                 "ptype": "packet type"}.get(b.key, b.key)
        names = sorted(self.cg.name(f) for f in b.functions)
        binds = ", ".join(names) if names else "nothing"
        if b.key == "create":
            return f"{b.note}: .{b.field} = {binds} ({', '.join(b.tables[:3])})"
        if b.key in ("dst.output", "dst.input", "napi.poll"):
            stores = b.tables
            if callee is not None:
                cname = self.cg.name(callee)
                stores = sorted(stores, key=lambda x: not re.search(rf"=\s*{re.escape(cname)}\b", x))
            src = "; ".join(stores[:3]) + (f"; +{len(stores) - 3} more" if len(stores) > 3 else "")
            return f"{label} ∈ {{{binds}}} set by {src or 'nothing in scope'}"
        tabs = ", ".join(f"{self.label(t)} ({self.where(t)})" for t in b.tables) or "no table"
        return f"{label} = {tabs}: .{b.field} = {binds}"


def guard_holds(guard, sock_type: str) -> bool | None:  # type: ignore[no-untyped-def]
    """Whether an assignment's guard holds for a socket of this type: True, False, or None when
    the guard does not test the socket type (or cannot be read)."""
    if not guard:
        return True
    const = "SOCK_" + sock_type.upper() if sock_type else None
    if guard[0] == "case":
        expr, labels = guard[1], guard[2]
        if not _is_type_expr(expr):
            return None
        if const is None:
            return None
        if "default" in labels and const not in labels:
            return None
        return const in labels
    cond, branch = guard[1], guard[2]
    value = _eval_type_cond(cond, const)
    if value is None:
        return None
    return value if branch else not value


def _is_type_expr(expr: str) -> bool:
    """sock->type, type, sk->sk_type: an expression holding the socket type."""
    return re.search(r"(^|->|\.)(sk_)?type$", expr.replace(" ", "")) is not None


def _eval_type_cond(cond: str, const: str | None) -> bool | None:
    if const is None:
        return None
    ors = [p.strip() for p in re.split(r"\|\|", cond)]
    if len(ors) > 1:
        vals = [_eval_type_cond(p, const) for p in ors]
        if any(v is True for v in vals):
            return True
        return None if any(v is None for v in vals) else False
    ands = [p.strip().strip("()").strip() for p in re.split(r"&&", cond)]
    if len(ands) > 1:
        vals = [_eval_type_cond(p, const) for p in ands]
        if any(v is False for v in vals):
            return False
        return None if any(v is None for v in vals) else True
    m = re.fullmatch(r"\(?\s*([\w>.\- ]+?)\s*(==|!=)\s*(SOCK_[A-Z]+)\s*\)?", cond)
    if not m or not _is_type_expr(m.group(1)):
        return None
    eq = m.group(3) == const
    return eq if m.group(2) == "==" else not eq

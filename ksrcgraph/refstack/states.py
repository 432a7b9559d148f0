"""The reference stack's state table: for each piece of model state a rule can bind a pointer to,
what the model reads for it, where, and how a verdict names it.

In: ``data/refstack_state.tsv`` (one row per state key) and ``data/refstack_rules.tsv`` (slot →
state key). Out: ``table()`` — state key → ``State``; ``bound(binds)`` — the state of one kind;
``rules()`` — the rules as ``Rule`` rows. A rule naming a state the table lacks, a state with an
unknown ``binds`` or ``how``, two states of one kind: ``StateTableError`` when the tables load — not
an ``unmodelled`` verdict later. Kernel names live in the data files; the vocabulary of ``binds``
and ``how`` lives here (see the data file's header for what each means).
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from .. import kdata

STATE_FILE = "refstack_state.tsv"
RULES_FILE = "refstack_rules.tsv"

# binds -> the values of ``how`` that can say where that state is read
BINDS: dict[str, frozenset[str]] = {
    "ops": frozenset({"assign_to"}),
    "prot": frozenset({"alloc_arg"}),
    "family": frozenset({"registered"}),
    "af_ops": frozenset({"init_store"}),
    "protocol": frozenset({"per_family"}),
    "ptype": frozenset({"registered_by"}),
    "file": frozenset({"tables_in"}),
    "stores": frozenset({"stores_text", "per_family", "family_or_shared"}),
}
MANY = frozenset({"stores"})  # kinds of state that several keys may have


class StateTableError(ValueError):
    """The reference stack's data files disagree (a bug in ``ksrcgraph/data``)."""


class State(NamedTuple):
    key: str  # "sock.ops": what refstack_rules.tsv names
    binds: str  # what the model reads for it (BINDS)
    how: str  # how value says where it is read
    value: str
    label: str  # how a verdict names it; {family}, {protocol}: the socket's

    def title(self, family: str, protocol: str) -> str:
        """'sock->ops', 'net_families[inet]', 'inet_protos[udp]' (protocol '?' when none)."""
        return self.label.format(family=family, protocol=protocol or "?")


class Rule(NamedTuple):
    struct: str  # the slot of the pointer: struct ...
    field: str  # ... and field, or "*"
    state: str  # the state key it binds to
    state_field: str  # the field of the state's tables that holds the function, or "*" (the slot's)

    def matches(self, struct: str, fld: str) -> bool:
        return self.struct == struct and self.field in ("*", fld)

    def field_for(self, fld: str) -> str:
        return fld if self.state_field == "*" else self.state_field


def _state(row: dict[str, str], known: dict[str, State]) -> State:
    s = State(row["state"], row["binds"], row["how"], row["value"], row["label"] or row["state"])
    where = f"{STATE_FILE}: state {s.key!r}"
    if s.key in known:
        raise StateTableError(f"{where} is defined twice")
    if s.binds not in BINDS:
        raise StateTableError(f"{where} binds {s.binds!r}, which the model does not know "
                              f"(known: {', '.join(sorted(BINDS))})")
    if s.how not in BINDS[s.binds]:
        raise StateTableError(f"{where}: {s.binds} state is read by how = {' or '.join(sorted(BINDS[s.binds]))}, "
                              f"not {s.how!r}")
    if s.binds not in MANY and any(k.binds == s.binds for k in known.values()):
        raise StateTableError(f"{where}: another state already binds {s.binds}")
    return s


@cache
def _load() -> tuple[dict[str, State], tuple[Rule, ...]]:
    states: dict[str, State] = {}
    for row in kdata._rows(STATE_FILE):  # the whole row: kdata.refstack_state() keeps two columns
        s = _state(row, states)
        states[s.key] = s
    rules = tuple(Rule(*r) for r in kdata.refstack_rules())
    for r in rules:
        if r.state not in states:
            raise StateTableError(f"{RULES_FILE}: the rule for {r.struct}.{r.field} binds state {r.state!r}, "
                                  f"which {STATE_FILE} does not define (states: {', '.join(states)})")
    return states, rules


def table() -> dict[str, State]:
    """State key -> State, checked against the rules."""
    return _load()[0]


def rules() -> tuple[Rule, ...]:
    """The rules, in file order; each names a state of ``table()``."""
    return _load()[1]


def bound(binds: str) -> State | None:
    """The state of this kind (not "stores": several keys have that), if the table has one."""
    return next((s for s in table().values() if s.binds == binds), None)

"""The reference stack's socket vocabulary: a configuration, the state it ends up with, a binding.

 * ``Config``: ``inet:dgram:udp`` — family, type, protocol (short lower-case names, see ``short``);
 * ``SocketState``: the tables a socket of that configuration ends up with (``Model.state``);
 * ``Binding``: the functions a pointer of one slot can hold for that socket, and what gives them
   (``Model.binding``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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

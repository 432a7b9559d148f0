"""The symbol table of a built kernel: which source functions exist out of line, under which names,
and where a kprobe or an fentry program can attach.

In: the text of a ``System.map`` (``ffffffff81a2b3c0 T dev_queue_xmit``), a ``/proc/kallsyms`` dump
(the same, with ``[module]`` after module symbols) or ``available_filter_functions`` (one function name
a line, ``name [module]`` for modules; ``available_filter_functions_addrs`` puts an address first); the
kind is told by the lines themselves. Several files of one kernel can be merged (``SymbolTable.merge``):
a System.map says what exists, available_filter_functions what ftrace can trace.
Out: a ``SymbolTable``; ``of(name)`` lists the text symbols made from the source function ``name`` —
itself and its copies under gcc's suffixes (``udp_send_skb.isra.0``, ``.constprop.N``, ``.part.N``,
``.cold``; ``data/symbol_names.tsv`` says which are entry points) — each with where it sits (a range
that refuses kprobes, ``.init.text``, the kprobe blacklist) and whether ftrace lists it.

Several static functions of one name in different files give several symbols of that name: the table
cannot tell which file each comes from, and says how many there are.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from . import kdata
from .errors import UsageError

TEXT_TYPES = frozenset("tTwW")  # text symbols (W/w: weak; data symbols of System.map are other letters)
_MAP_LINE = re.compile(r"^([0-9a-fA-F]{1,16})\s+([A-Za-z?])\s+(\S+)(?:\s+\[(\S+)\])?\s*$")
_FILTER_LINE = re.compile(r"^(?:([0-9a-fA-F]{8,16})\s+)?([A-Za-z_.$][\w.$]*)(?:\s+\[(\S+)\])?\s*$")
MAX_BYTES = 256 << 20  # a kallsyms dump of a big kernel is ~20 MB; more is not a symbol table


class Symbol(NamedTuple):
    """A text symbol. where: "" (an entry a kprobe can use), "init" (freed after boot), "no"
    (kprobes refused: noinstr, entry text, the blacklist), "cold" (a fragment), "partial"
    (``.part.N``); why: the reason for where (empty for "")."""

    name: str
    addr: int  # -1 when the file gives none (available_filter_functions)
    module: str
    where: str
    why: str


class SymbolTable:
    """Text symbols by source function name (see the module docstring)."""

    def __init__(self, label: str = "") -> None:
        self.label = label  # what was read, for messages
        self.kinds: list[str] = []  # "map" (System.map / kallsyms), "filter" (available_filter_functions)
        self.by_base: dict[str, list[Symbol]] = defaultdict(list)
        self.traceable: set[str] | None = None  # names ftrace lists, when a filter list was read
        self.blacklisted: set[str] = set()

    # -- reading -------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, label: str = "") -> SymbolTable:
        t = cls(label)
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            raise UsageError(f"{label or 'the symbol file'} holds no symbols",
                             "give a System.map, a copy of /proc/kallsyms or of available_filter_functions")
        if _MAP_LINE.match(lines[0]):
            t._read_map(lines)
        elif _FILTER_LINE.match(lines[0]):
            t._read_filter(lines)
        else:
            raise UsageError(f"{label or 'the symbol file'} is neither a System.map, a kallsyms dump nor an "
                             f"available_filter_functions list (first line: {lines[0][:80]!r})",
                             "give a System.map (address, type, name per line) or available_filter_functions")
        return t

    def _read_map(self, lines: list[str]) -> None:
        rows = []
        for ln in lines:
            m = _MAP_LINE.match(ln)
            if m is not None:
                rows.append((int(m.group(1), 16), m.group(2), m.group(3), m.group(4) or ""))
        ranges = _ranges({name: addr for addr, _k, name, mod in rows if not mod})
        prefixes = [r["name"] for r in kdata.symbol_names() if r["kind"] == "blacklist"]
        for _addr, _k, name, _mod in rows:
            for p in prefixes:
                if name.startswith(p):
                    self.blacklisted.add(name[len(p):])
        ordered = [(r[0], r[1], r[2], r[3]) for r in rows if r[1] in TEXT_TYPES]
        zeros = sum(1 for r in ordered if r[0] == 0)
        usable = zeros < len(ordered) // 2  # kallsyms read without privileges: every address is 0
        for addr, _k, name, mod in ordered:
            where, why = _place(addr if usable else -1, mod, ranges)
            self._add(name, addr if usable else -1, mod, where, why)
        self.kinds.append("map")

    def _read_filter(self, lines: list[str]) -> None:
        names: set[str] = set()
        for ln in lines:
            m = _FILTER_LINE.match(ln.strip())
            if m is None:
                continue
            names.add(m.group(2))
            self._add(m.group(2), int(m.group(1), 16) if m.group(1) else -1, m.group(3) or "", "", "")
        self.traceable = names
        self.kinds.append("filter")

    def _add(self, name: str, addr: int, module: str, where: str, why: str) -> None:
        base, suffixes = split_name(name)
        if not where:
            where, why = _suffix_place(suffixes)
        if not where and base in self.blacklisted:
            where, why = "no", "NOKPROBE_SYMBOL: on the kprobe blacklist"
        self.by_base[base].append(Symbol(name, addr, module, where, why))

    def merge(self, other: SymbolTable) -> SymbolTable:
        """One kernel's tables read from several files: symbols from the maps, traceability from the
        filter lists."""
        out = SymbolTable(" + ".join(x for x in (self.label, other.label) if x))
        maps = [t for t in (self, other) if "map" in t.kinds] or [self, other]
        for t in maps:
            for base, syms in t.by_base.items():
                have = {s.name for s in out.by_base.get(base, ())}
                out.by_base[base].extend(s for s in syms if s.name not in have)
        tr = [t.traceable for t in (self, other) if t.traceable is not None]
        out.traceable = set().union(*tr) if tr else None
        out.blacklisted = self.blacklisted | other.blacklisted
        out.kinds = sorted(set(self.kinds) | set(other.kinds))
        return out

    # -- questions -----------------------------------------------------------------------------------
    def of(self, name: str, module: str | None = "") -> list[Symbol]:
        """The text symbols made from the source function name (its own name and its copies), in
        vmlinux (module ""), in a module, or anywhere (None)."""
        return [s for s in self.by_base.get(name, ()) if module is None or s.module == module]

    def is_traceable(self, symbol: str) -> bool | None:
        """Does ftrace list this symbol (fentry, kprobe through ftrace)? None: no filter list read."""
        return None if self.traceable is None else symbol in self.traceable

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_base.values())


def split_name(name: str) -> tuple[str, tuple[str, ...]]:
    """('udp_send_skb', ('isra',)) for 'udp_send_skb.isra.0'; suffixes in order, numbers dropped."""
    if "." not in name:
        return name, ()
    head, *rest = name.split(".")
    known = _suffixes()
    suffixes = tuple(p for p in rest if not p.isdigit())
    if not head or not suffixes or any(s not in known for s in suffixes):
        return name, ()
    return head, suffixes


def _suffixes() -> dict[str, tuple[str, str]]:
    return {r["name"]: (r["entry"], r["reason"]) for r in kdata.symbol_names() if r["kind"] == "suffix"}


def _suffix_place(suffixes: tuple[str, ...]) -> tuple[str, str]:
    """A copy's standing from its suffixes: a fragment (.cold) anywhere makes it no entry."""
    known = _suffixes()
    worst = ("", "")
    for s in suffixes:
        entry, reason = known[s]
        if entry == "no":
            return "cold", f".{s}: {reason}"
        if entry == "partial":
            worst = ("partial", f".{s}: {reason}")
    return worst


class _Ranges(NamedTuple):
    starts: list[int]
    spans: list[tuple[int, int, str, str]]  # (start, end, where, why) sorted by start


def _ranges(addr_of: dict[str, int]) -> _Ranges:
    spans = []
    for r in kdata.symbol_names():
        if r["kind"] == "range" and r["name"] in addr_of and r["end"] in addr_of:
            where = "init" if r["entry"] == "init" else "no"
            spans.append((addr_of[r["name"]], addr_of[r["end"]], where, r["reason"]))
    spans.sort()
    return _Ranges([s[0] for s in spans], spans)


def _place(addr: int, module: str, ranges: _Ranges) -> tuple[str, str]:
    if addr < 0 or module:
        return "", ""
    i = bisect.bisect_right(ranges.starts, addr) - 1
    while i >= 0:
        start, end, where, why = ranges.spans[i]
        if start <= addr < end:
            return where, why
        i -= 1
    return "", ""


def read(path: str | Path, label: str | None = None) -> SymbolTable:
    """A symbol file (plain, .xz or .gz) as a SymbolTable; a missing or unreadable file is a usage error."""
    p = Path(path)
    name = label or str(p)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise UsageError(f"{name} is {p.stat().st_size >> 20} MB: too big for a symbol table",
                             "give a System.map, /proc/kallsyms or available_filter_functions")
        data = _read_bytes(p)
    except OSError as e:
        raise UsageError(f"cannot read {name}: {e.strerror or e}",
                         "check the path given to --symbols (e.g. /boot/System.map-$(uname -r))") from e
    return SymbolTable.parse(data.decode("utf-8", "replace"), name)


def _read_bytes(p: Path) -> bytes:
    if p.suffix in (".xz", ".gz"):
        import gzip
        import lzma

        opener = lzma.open if p.suffix == ".xz" else gzip.open
        try:
            with opener(p, "rb") as f:
                return f.read(MAX_BYTES + 1)
        except (lzma.LZMAError, OSError, EOFError) as e:
            raise UsageError(f"{p} is not a readable {p.suffix} file: {e}", "give the symbol file uncompressed") from e
    return p.read_bytes()

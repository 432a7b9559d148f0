"""Stage 6b, for one kind of site — the calls of scope-based cleanup classes (``include/linux/cleanup.h``).

In: a call site that ``extract_cleanup`` recorded (its wrapper ``facts.CLEANUP_INIT`` for a
constructor, ``facts.SCOPE_EXIT`` + line for a destructor), and the resolver (``resolve._Sites``:
the linked program, its macros, ``add_edge``). Out: ``direct`` edges from the function of the use to
each function the class's constructor or destructor calls, as the ``DEFINE_*`` line of the tree being
analysed says (``DEFINE_CLASS(fd, struct fd, fdput(_T), fdget(fd), int fd)`` makes
``class_fd_constructor`` call ``fdget`` and ``class_fd_destructor`` call ``fdput``). Each edge's
evidence names that line; a destructor's says it runs at scope exit. A class no ``DEFINE_*`` of the
tree defines makes no edge (the site is counted unresolved): kernels without cleanup.h are unaffected.
"""

from __future__ import annotations

from typing import Any

from .facts import CLEANUP_INIT, SCOPE_EXIT, Call

UNDEFINED = "cleanup class without a DEFINE_* in scope"


def is_cleanup(c: Call) -> bool:
    return bool(c.wrapper) and (c.wrapper == CLEANUP_INIT or c.wrapper.startswith(SCOPE_EXIT))


def resolve_site(sites: Any, fi: int, fid: str, c: Call, path: str) -> None:
    """Edges of one constructor or destructor call of a cleanup class."""
    name = c.callee[1]
    alias = sites.p.aliases.get(c.candidates[0]) if len(c.candidates) == 2 else None
    if not _class_macros(sites.p, name) and alias is not None and alias[0] == "v":
        name = c.candidates[1].format(name=alias[1])  # #define RSEQ_EVENT_GUARD preempt
    if not _class_macros(sites.p, name):
        sites._site_unresolved(UNDEFINED, path, c.line, f"{c.text} ({name})")
        return
    exit_line = c.wrapper[len(SCOPE_EXIT) :] if c.wrapper.startswith(SCOPE_EXIT) else ""
    sites.stats["cleanup_exit_sites" if exit_line else "cleanup_init_sites"] += 1
    for target, (file, line, cond, definer, cls) in _targets(sites, fi, name, 0).items():
        if exit_line:
            step = ("scope_exit", f"at scope exit (line {exit_line}): {cls}, by {definer} — {c.text}", file, line, cond)
        else:
            step = ("cleanup", f"constructor {cls}, by {definer} — {c.text}", file, line, cond)
        sites.add_edge(fid, target, "direct", path, c.line, c.text, [step], c.cond)


def _class_macros(p: Any, name: str) -> list:
    """The definitions of a cleanup class's function: macros a DEFINE_* made (alias ("v", definer))."""
    return [md for md in p.macros.get(name, ()) if md.macro.alias and md.macro.alias[0] == "v"]


def _targets(sites: Any, fi: int, name: str, depth: int) -> dict[str, tuple]:
    """Function called -> (file, line, cond, definer, function of the class) of the DEFINE_* line
    whose expression calls it. Calls of other cleanup functions (an extended class's destructor is its
    base's) are followed; other macros are expanded; names defined nowhere in scope, and macros whose
    expansion calls no function defined in scope, are external (``mutex_lock`` stays ``mutex_lock``)."""
    p = sites.p
    out: dict[str, tuple] = {}
    for md in _class_macros(p, name):
        m = md.macro
        where = (md.file, m.line, m.cond, m.alias[1], name)
        params = set(m.params or ())
        for callee, _args in m.calls:
            if callee in params or callee == name:
                continue
            target = p.function_for(fi, callee)
            if target is not None:
                out.setdefault(target, where)
            elif _class_macros(p, callee):
                if depth < 3:
                    for t, w in _targets(sites, fi, callee, depth + 1).items():
                        out.setdefault(t, w)
            elif callee in p.macros and sites.expand_macro(callee):
                for t, _step in sites.expand_macro(callee):
                    out.setdefault(t, where)
            else:  # defined nowhere in scope, or a macro calling only such functions (mutex_lock)
                sites.externals.add(callee)
                out.setdefault(callee, where)
    return out

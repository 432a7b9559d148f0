"""Generated command lines: the CLI's own grammar (its commands, options, choices and ranges, read
from the click objects typer builds) drives hypothesis, with valid values and hostile ones — odd
strings, huge and negative numbers, unknown options, over-long names, undecodable bytes — and a
generated environment (KSRCGRAPH_JOBS, _OFFLINE, ...), on copies of the minikernel. Every command line
must end in exit status 0, 1, 2 or 3; on 1 and 2 stderr says ``Error:`` and ``Hint:``; never an internal
error or a traceback; ``--format json`` output that succeeded parses; and nothing is written outside
the cache directory and the ``-o`` target (the temporary directory's tree is compared before and
after each command line).

The number of command lines is EXAMPLES (KSRCGRAPH_CLI_EXAMPLES, default 800: about 15 s on two
cores, all on warm indexes of the minikernel built once first); the test prints the count it ran and
the exit statuses it saw.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES

EXAMPLES = int(os.environ.get("KSRCGRAPH_CLI_EXAMPLES", "800"))
SCOPES = ["net,include", "net,include,fs"]  # indexed before the run: no command line parses anything


# -- the world the command lines run in ------------------------------------------------------------------
class World:
    def __init__(self, root: Path):
        self.root, self.cache, self.out = root, root / "cache", root / "out"
        self.tree = root / "tree"
        self.tree2 = root / "tree2"  # another version: one function more
        shutil.copytree(FIXTURES / "minikernel", self.tree, ignore=shutil.ignore_patterns("user"))
        shutil.copytree(self.tree, self.tree2)
        with open(self.tree2 / "net" / "ipv4" / "udp.c", "a") as fh:
            fh.write("\nint added_later(void) { return udp_rcv(0); }\n")
        self.out.mkdir()
        (root / "work").mkdir()
        self.tarball = root / "linux-9.9.tar.gz"
        (root / "not-a-tree.txt").write_text("hello\n")

    def saved_files(self, run) -> None:
        """Replay inputs: a real saved path, and hostile ones."""
        code, out, _ = run(["path", "sendto", "dev_queue_xmit", "--source", str(self.tree), "--format", "json"])
        assert code == 0
        (self.root / "saved.json").write_text(out)
        (self.root / "saved-bad.json").write_text('{"paths": [{"hops": [{"function": 5}]}]}')
        (self.root / "saved-empty.json").write_text("")


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    from ksrcgraph.cli import main

    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated-cli")
    w = World(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KSRCGRAPH_CACHE_DIR", str(w.cache))
        mp.setenv("KSRCGRAPH_SRC_DIRS", str(root / "no-system-sources"))  # never a real kernel
        mp.setenv("KSRCGRAPH_OFFLINE", "1")
        mp.setenv("KSRCGRAPH_MIRROR", "http://127.0.0.1:9")
        mp.setenv("KSRCGRAPH_NO_PROGRESS", "1")
        mp.chdir(root / "work")
        from ksrcgraph import pipeline

        pipeline.open_graph(None, str(FIXTURES / "minikernel"), ("net", "include"), jobs=1)  # the default tree
        for tree in (w.tree, w.tree2):
            for scope in SCOPES:
                for all_headers in (False, True):
                    pipeline.open_graph(None, str(tree), tuple(scope.split(",")), jobs=1, all_headers=all_headers)
        yield w, mp


# -- the grammar, read from the click objects ------------------------------------------------------------
def leaf_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    from typer.main import get_command

    from ksrcgraph.cli.commands import app

    out = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, (*path, name))
        else:
            out.append((path, cmd))

    walk(get_command(app), ())
    return out


ODD = st.sampled_from(["", " ", "-", "--", "-x", "..", "/", ".", "a" * 600, "é", "💥", "\udcff", "$(id)", "%s%n",
                       "{}", "a,b", "::", "../../etc/passwd", "\\", "6.1", "-1", "NaN", "a\nb"])
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
NAMES = st.sampled_from(["sendto", "dev_queue_xmit", "udp_sendmsg", "inet_sendmsg", "ip_output", "sys_sendto",
                         "__x64_sys_sendto", "net/ipv4/af_inet.c::inet_create", "added_later", "recvfrom",
                         "no_such_function", "udp_sendmsgg"])
SOCKETS = st.sampled_from(["inet:dgram:udp", "inet:stream:tcp", "inet:dgram", "unix:stream", "packet:raw",
                           "inet", "inet:dgram:tcp", "bluetooth:stream", "none", ":::"])


def ints(param: click.Parameter) -> st.SearchStrategy[str]:
    lo, hi = getattr(param.type, "min", None), getattr(param.type, "max", None)
    edges = [v for b in (lo, hi) if b is not None for v in (b - 1, b, b + 1)]
    return st.one_of(st.integers(-3, 120).map(str), st.sampled_from(edges or [0]).map(str),
                     st.sampled_from(["0", "-1", str(2**31), str(2**63), str(10**30), str(-10**30), "1.5", "1e3",
                                      "ten", ""]))


def value_for(name: str, param: click.Parameter, w: World) -> st.SearchStrategy[str]:
    """A value for the parameter: by its meaning (its name), else by its click type; odd ones too."""
    files = [str(w.root / n) for n in ("saved.json", "saved-bad.json", "saved-empty.json", "nosuch.json")]
    trees = [str(w.tree), str(w.tree2)]
    by_name = {
        "src": NAMES, "dst": NAMES, "fn": NAMES, "around": NAMES, "via": NAMES, "avoid": NAMES, "socket": SOCKETS,
        "kernel": st.sampled_from(["6.1", "9.9", "v6.1", "x/../y"]), "version_": st.sampled_from(["6.1", "9.9", "x"]),
        "source": st.sampled_from([*trees, *trees, str(w.tree) + "/net", str(w.root / "nosuch"),
                                   str(w.root / "not-a-tree.txt"), "../tree"]),
        "scope": st.sampled_from([*SCOPES, *SCOPES, "", ",", "../etc", "sound", "a" * 300, "net,,include"]),
        "out": st.sampled_from([str(w.out / "r.txt"), str(w.out / "r.json"), str(w.out / "r.html"), str(w.out),
                                str(w.out / "missing-dir" / "r.txt"), "relative.out"]),
        "file": st.sampled_from(files),
        "from_": st.sampled_from([*trees, "6.1", f"{w.tree}@v1", "nonsense!"]),
        "to": st.sampled_from([*trees, "6.1", "nonsense!"]),
    }
    if name in by_name:
        good = by_name[name]
    elif isinstance(param.type, click.Choice):
        good = st.sampled_from(list(param.type.choices))
    elif isinstance(param.type, (click.types.IntParamType, click.IntRange)):
        return ints(param)
    else:
        good = TEXT
    return mostly(good)


@st.composite
def mostly(draw, good: st.SearchStrategy[str]) -> str:
    """A good value nine times in ten, else an odd one."""
    return draw(st.one_of(ODD, TEXT) if draw(st.integers(0, 9)) == 0 else good)


@st.composite
def command_lines(draw, w: World, commands) -> list[str]:
    path, cmd = draw(st.sampled_from(commands))
    argv = list(path)
    options: list[list[str]] = []
    for p in cmd.params:
        if isinstance(p, click.Argument):
            if p.required or draw(st.integers(0, 3)):
                argv.append(draw(value_for(p.name, p, w)))
            continue
        if not isinstance(p, click.Option) or p.hidden:
            continue
        wanted = 9 if p.required else 8 if p.name == "source" else 2  # in 10: mostly a tree, the required ones
        if draw(st.integers(0, 9)) >= wanted:
            continue
        flag = draw(st.sampled_from(p.opts))
        if p.is_flag:
            options.append([flag])
            continue
        for _ in range(draw(st.integers(1, 2)) if p.multiple else 1):
            options.append([flag, draw(value_for(p.name, p, w))])
    if draw(st.integers(0, 15)) == 0:
        options.append([draw(st.sampled_from(["--bogus", "--help", "-k", "extra", "--format=json"]))])
    for o in draw(st.permutations(options)):
        argv += o
    return argv


# the environment a command line runs in (one variable in eight command lines): valid values, then odd ones
ENV = {"KSRCGRAPH_JOBS": ["1", "2", "0", "x", "999"], "KSRCGRAPH_OFFLINE": ["0", "1", "maybe"],
       "KSRCGRAPH_NO_PROGRESS": ["1", "yes", "2"], "KSRCGRAPH_MAX_EXTRACT_BYTES": ["1000000", "-1", "big"],
       "KSRCGRAPH_DOWNLOAD_DEADLINE": ["1", "0", "inf"], "KSRCGRAPH_MIRROR": ["http://127.0.0.1:9", "ftp://x", "x"],
       "KSRCGRAPH_DEBUG": ["0", "no", "verbose"]}


@st.composite
def environments(draw) -> dict[str, str]:
    if draw(st.integers(0, 7)):
        return {}
    name = draw(st.sampled_from(sorted(ENV)))
    return {name: draw(st.sampled_from(ENV[name]))}


# -- the properties --------------------------------------------------------------------------------------
def snapshot(w: World) -> dict[str, tuple]:
    """Every entry under the temporary root but the cache, and under the bundled example tree:
    (mode, size, mtime)."""
    got = {}
    for top in (w.root, FIXTURES / "minikernel"):
        for dirpath, dirnames, filenames in os.walk(top):
            if Path(dirpath) == w.root:
                dirnames[:] = [d for d in dirnames if d != "cache"]
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                st_ = os.lstat(p)
                got[p] = (st_.st_mode, st_.st_size if n in filenames else 0, st_.st_mtime_ns if n in filenames else 0)
    return got


def out_target(argv: list[str]) -> str | None:
    """The -o target the command line names (the last one wins, as click reads it)."""
    targets = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-o", "--out")]
    return os.path.abspath(targets[-1]) if targets else None


def check(argv: list[str], code: int, out: str, err: str, before: dict, after: dict) -> None:
    assert code in (0, 1, 2, 3), (argv, code, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    if code in (1, 2):
        lines = err.splitlines()
        assert any(x.startswith("Error: ") for x in lines) and any(x.startswith("Hint: ") for x in lines), (argv, err)
    target = out_target(argv)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert changed <= {target}, (argv, changed)
    fmt = [v for i, a in enumerate(argv) for v in  # in command-line order: the last one wins
           ([argv[i + 1]] if a in ("--format", "-f") and i + 1 < len(argv) else
            [a.split("=", 1)[1]] if a.startswith("--format=") else [])]
    if code == 0 and fmt and fmt[-1] == "json" and "--help" not in argv:
        json.loads(Path(target).read_text() if target and target in after else out)


def test_generated_command_lines(world, capsys):
    w, mp = world
    w.saved_files(lambda argv: run_main(argv, capsys))
    commands = leaf_commands()
    assert {" ".join(p) for p, _ in commands} >= {"path", "replay", "diff", "cache prune", "graph", "report"}
    ran: list[list[str]] = []
    codes: dict[int, int] = {}
    t0 = time.perf_counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(argv=command_lines(w, commands), env=environments())
    def one(argv, env):
        ran.append(argv)
        with pytest.MonkeyPatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            before = snapshot(w)
            code, out, err = run_main(argv, capsys)
            after = snapshot(w)
        codes[code] = codes.get(code, 0) + 1
        if os.environ.get("KSRCGRAPH_CLI_SHOW"):
            print(code, argv, err.splitlines()[:1], file=sys.__stdout__)
        check(argv, code, out, err, before, after)
        target = out_target(argv)
        if target and os.path.isfile(target):
            os.unlink(target)  # the next command line starts without it

    one()
    print(f"\n{len(ran)} generated command lines in {time.perf_counter() - t0:.1f} s; exit statuses {codes}")
    assert len(ran) >= EXAMPLES

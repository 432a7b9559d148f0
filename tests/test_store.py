"""store and index: facts cached per content; a second run parses nothing; damage is survived."""

import shutil

import pytest

from ksrcgraph import index, pipeline, sources
from ksrcgraph.store import Store

from conftest import FIXTURES


def copy_tree(tmp_path):
    dst = tmp_path / "tree"
    shutil.copytree(FIXTURES / "minikernel", dst, ignore=shutil.ignore_patterns("user"))
    return dst


def build(tree_dir, store):
    tree = sources.open_tree(None, str(tree_dir), ("net", "include"))
    return index.build_index(tree, store, jobs=1)


def test_second_run_parses_nothing_and_a_change_parses_one_file(tmp_path):
    tree = copy_tree(tmp_path)
    with Store(tmp_path / "c.sqlite") as st:
        first = build(tree, st)
        assert first.stats["parsed"] == first.stats["files"] > 20
        again = build(tree, st)
        assert again.stats["parsed"] == 0 and again.digest == first.digest
        f = tree / "net" / "ipv4" / "udp.c"
        f.write_text(f.read_text() + "\nint added_later(void) { return udp_rcv(0); }\n")
        third = build(tree, st)
        assert third.stats["parsed"] == 1 and third.digest != first.digest


def test_identical_contents_are_parsed_once(tmp_path):
    tree = copy_tree(tmp_path)
    shutil.copy(tree / "net" / "ipv4" / "udp.c", tree / "net" / "ipv4" / "udp_copy.c")
    with Store(tmp_path / "c.sqlite") as st:
        ix = build(tree, st)
        assert ix.stats["parsed"] == ix.stats["files"] - 1
        facts = index.load_facts(ix, st)
        assert {"net/ipv4/udp.c", "net/ipv4/udp_copy.c"} <= {f.path for f in facts}


def test_damaged_database_is_moved_aside_and_rebuilt(tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    tree = copy_tree(tmp_path)
    with Store(db) as st:
        ix = build(tree, st)
        assert ix.stats["parsed"] == ix.stats["files"]
    err = capsys.readouterr().err
    assert "Warning: cache database" in err and "damaged" in err
    assert list(tmp_path.glob("c.sqlite.damaged-*"))


def test_damaged_row_is_ignored_and_reparsed(tmp_path, capsys):
    tree = copy_tree(tmp_path)
    with Store(tmp_path / "c.sqlite") as st:
        ix = build(tree, st)
        st.db.execute("UPDATE blobs SET data = x'00112233'")
        facts = index.load_facts(ix, st)
        assert len(facts) == ix.stats["files"]
    assert "failed its checksum" in capsys.readouterr().err


def test_warm_graph_is_read_not_rebuilt(tmp_path, monkeypatch):
    tree = copy_tree(tmp_path)
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    cold = pipeline.open_graph(None, str(tree), ("net", "include"))
    assert cold.meta["link_seconds"] is not None
    warm = pipeline.open_graph(None, str(tree), ("net", "include"))
    assert "link_seconds" not in warm.meta and warm.meta["index"]["parsed"] == 0
    assert list(warm.all_edges()) == list(cold.all_edges())
    assert warm.ids == cold.ids


def test_only_included_headers_are_indexed(tmp_path):
    from ksrcgraph.index import include_closure, includes_of

    tree = tmp_path / "t"
    files = {
        "net/a.c": '#include <linux/x.h>\n#include "local.h"\nint a(void) { return x(); }\n',
        "net/local.h": "#include <asm/barrier.h>\n",
        "include/linux/x.h": "#include <linux/y.h>\nstatic inline int x(void) { return y(); }\n",
        "include/linux/y.h": "static inline int y(void) { return 0; }\n",
        "include/asm-generic/barrier.h": "static inline void mb(void) { }\n",
        "include/linux/unused.h": "static inline int never(void) { return 1; }\n",
    }
    rows = []
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
        rows.append((rel, 0, 0, "", includes_of(text.encode())))
    assert include_closure(rows) == set(files) - {"include/linux/unused.h"}
    with Store(tmp_path / "c.sqlite") as st:
        t = sources.open_tree(None, str(tree), ("net", "include"))
        ix = index.build_index(t, st, jobs=1)
        assert ix.stats["files"] == 5 and ix.stats["headers_indexed"] == 4 and ix.stats["headers_in_scope"] == 5
        every = index.build_index(t, st, jobs=1, all_headers=True)
        assert every.stats["files"] == 6 and every.digest != ix.digest


def test_a_busy_database_is_waited_for_not_moved_aside():
    # two runs opening one cache at once: SQLite may answer "database is locked" while the other one
    # sets it up; that is contention, not damage
    import sqlite3

    from ksrcgraph.store import _when_free

    calls = []

    def opens():
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "open"

    assert _when_free(opens) == "open" and len(calls) == 3

    def damaged():
        raise sqlite3.DatabaseError("file is not a database")

    with pytest.raises(sqlite3.DatabaseError):
        _when_free(damaged)


# -- a read-only or full cache is reported as such, never taken for damage ------------------------------
def read_only_sqlite(monkeypatch):
    """Every connection the store opens is read-only, as in a read-only directory or filesystem."""
    import sqlite3

    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda path, **k: real(f"file:{path}?mode=ro", uri=True, **k))


def assert_not_moved_aside(tmp_path, err):
    assert not list(tmp_path.glob("*.damaged-*")) and "damaged" not in err


def test_read_only_database_is_an_error_not_damage(tmp_path, monkeypatch, capsys):
    from ksrcgraph.errors import CacheError

    tree = copy_tree(tmp_path)
    with Store(tmp_path / "c.sqlite") as st:
        build(tree, st)
    (tree / "net" / "new.c").write_text("int new_function(void) { return 0; }\n")
    read_only_sqlite(monkeypatch)
    with pytest.raises(CacheError, match="read-only") as e, Store(tmp_path / "c.sqlite") as st:
        build(tree, st)
    assert "KSRCGRAPH_CACHE_DIR" in e.value.hint
    assert_not_moved_aside(tmp_path, capsys.readouterr().err)


def test_database_that_cannot_be_created_is_an_error_not_damage(tmp_path, monkeypatch, capsys):
    from ksrcgraph.errors import CacheError

    read_only_sqlite(monkeypatch)  # a new database in a read-only cache: SQLite cannot create it
    with pytest.raises(CacheError, match="cannot open|read-only"):
        Store(tmp_path / "c.sqlite")
    assert_not_moved_aside(tmp_path, capsys.readouterr().err)


def test_full_disk_is_an_error_not_damage(tmp_path, monkeypatch, capsys):
    from ksrcgraph.errors import CacheError

    real = Store._connect

    def tiny(self):  # SQLite's own "database or disk is full" (SQLITE_FULL), as on a full filesystem
        db = real(self)
        db.execute("PRAGMA max_page_count=12")
        return db

    monkeypatch.setattr(Store, "_connect", tiny)
    tree = copy_tree(tmp_path)
    with pytest.raises(CacheError, match="no space left|disk is full") as e, Store(tmp_path / "c.sqlite") as st:
        build(tree, st)
    assert "free some space" in e.value.hint
    assert_not_moved_aside(tmp_path, capsys.readouterr().err)

"""sources: tarballs are extracted once, scope by scope, safely; hostile archives are refused."""

import io
import tarfile

import pytest

from ksrcgraph import sources
from ksrcgraph.errors import ArchiveError, SourceError

from conftest import FIXTURES


def make_tar(path, members, prefix="linux-9.9/"):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def kernel_tar(tmp_path):
    members = [(str(p.relative_to(FIXTURES / "minikernel")), p.read_bytes())
               for p in sorted((FIXTURES / "minikernel").rglob("*")) if p.is_file()]
    members.append(("Makefile", b"VERSION = 9\nPATCHLEVEL = 9\nSUBLEVEL = 1\n"))
    members.append(("Documentation/x.txt", b"not extracted"))
    return make_tar(tmp_path / "linux-9.9.tar.gz", members)


def test_tarball_extracts_only_scope_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    tb = kernel_tar(tmp_path)
    tree = sources.open_tree("9.9", str(tb), ("net", "include"))
    assert tree.version == "9.9.1"
    tops = sorted(p.name for p in tree.root.iterdir() if not p.name.startswith("."))
    assert tops == ["Makefile", "include", "net"]
    assert not list(tree.root.rglob("*.md"))  # only .c and .h files
    files = sources.list_files(tree)
    assert ("net/socket.c" in {f[0] for f in files}) and all(f[0].split("/")[0] in ("net", "include") for f in files)
    # a wider scope extracts only what is missing
    wider = sources.open_tree("9.9", str(tb), ("net", "include", "fs"))
    assert (wider.root / "fs" / "read_write.c").is_file() and (wider.root / ".done-fs").exists()


def test_missing_scope_directory_in_tarball(tmp_path, monkeypatch):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    tb = kernel_tar(tmp_path)
    with pytest.raises(SourceError, match="has no sound/ directory"):
        sources.open_tree("9.9", str(tb), ("net", "sound"))


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink_out", "hardlink_out", "device"])
def test_hostile_archives_are_refused(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / f"{kind}.tar"
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("linux-9.9/net/ok.c")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"x;"))
        bad = tarfile.TarInfo({"dotdot": "linux-9.9/net/../../../escape.c", "absolute": "/tmp/escape.c",
                               "symlink_out": "linux-9.9/net/link.c", "hardlink_out": "linux-9.9/net/hard.c",
                               "device": "linux-9.9/net/dev.c"}[kind])
        if kind == "symlink_out":
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink_out":
            bad.type, bad.linkname = tarfile.LNKTYPE, "../../../etc/passwd"
        elif kind == "device":
            bad.type, bad.devmajor, bad.devminor = tarfile.CHRTYPE, 1, 3
        else:
            bad.size = 2
        tar.addfile(bad, io.BytesIO(b"y;") if bad.isfile() else None)
    with pytest.raises(ArchiveError, match="refusing"):
        sources.open_tree("9.9", str(path), ("net",))
    assert not (tmp_path / "escape.c").exists()
    cache = tmp_path / "cache" / "trees" / "9.9"
    assert not (cache / "net").exists() and not list(cache.glob(".tmp-*"))


def test_truncated_tarball_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    tb = kernel_tar(tmp_path)
    data = tb.read_bytes()
    tb.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="cannot read|damaged|truncated"):
        sources.open_tree("9.9", str(tb), ("net", "include"))
    assert not (tmp_path / "cache" / "trees" / "9.9" / "net").exists()


def test_size_limit_stops_archive_bombs(tmp_path, monkeypatch):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KSRCGRAPH_MAX_EXTRACT_BYTES", "1000")
    tb = make_tar(tmp_path / "bomb.tar.gz", [(f"net/f{i}.c", b"/*" + b" " * 400 + b"*/\n") for i in range(10)])
    with pytest.raises(ArchiveError, match="more than 1000 bytes"):
        sources.open_tree("9.9", str(tb), ("net",))


def test_a_label_is_never_a_path(tmp_path, monkeypatch):
    # --source x.tar --kernel "x/../../../escape" once extracted (and deleted) outside the cache; a second
    # tarball under the same label got the first one's tree; --kernel 9.9 later got the --source tree
    cache = tmp_path / "cache"
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(cache))
    tb = kernel_tar(tmp_path)
    (tmp_path / "escape" / "net").mkdir(parents=True)
    (tmp_path / "escape" / "net" / "keep.c").write_text("int keep;\n")
    tree = sources.open_tree("x/../../../escape", str(tb), ("net", "include"))  # cache/trees/x/../../.. = tmp_path
    assert cache in tree.root.parents
    assert (tmp_path / "escape" / "net" / "keep.c").read_text() == "int keep;\n"
    assert not (tmp_path / "escape" / "include").exists()
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = make_tar(other_dir / "linux-9.9.tar.gz", [("net/only-here.c", b"int x;\n"), ("include/a.h", b"")])
    a = sources.open_tree("9.9", str(tb), ("net", "include"))
    b = sources.open_tree("9.9", str(other), ("net", "include"))
    assert a.root != b.root and (b.root / "net" / "only-here.c").is_file()
    assert not (a.root / "net" / "only-here.c").exists()
    assert "9.9" not in dict(sources.available_versions())  # the label names no cached version

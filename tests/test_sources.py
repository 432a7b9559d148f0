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


# -- complete or nothing: a damaged archive is refused, never cached as a partial tree ------------------
def plain_tar(tmp_path) -> bytes:
    """The kernel tarball's members, as an uncompressed tar (bytes)."""
    src = kernel_tar(tmp_path)
    out = io.BytesIO()
    with tarfile.open(src) as tin, tarfile.open(fileobj=out, mode="w") as tout:
        for m in tin.getmembers():
            tout.addfile(m, tin.extractfile(m))
    return out.getvalue()


def middle_header(data: bytes) -> int:
    """The offset of the header of a member in the middle of an uncompressed tar."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    return members[len(members) // 2].offset


def assert_nothing_cached(tmp_path):
    trees = tmp_path / "cache" / "trees"
    assert not list(trees.glob("*/.done-*")) and not list(trees.glob("*/net")) and not list(trees.glob("*/.tmp-*"))


def damaged_variants(tmp_path):
    data = plain_tar(tmp_path)
    at = middle_header(data)
    garbage = data[:at] + bytes(range(256)) * 2 + data[at + 512:]  # a header that fails its checksum
    return {"garbage-header.tar": garbage, "cut-at-header.tar": data[:at],
            "garbage-header.tar.gz": __import__("gzip").compress(garbage)}


@pytest.mark.parametrize("name", ["garbage-header.tar", "cut-at-header.tar", "garbage-header.tar.gz"])
def test_tar_damaged_in_the_middle_is_refused(tmp_path, monkeypatch, name):
    # tarfile reads a bad header (or the end of the data) after the first member as the end of the
    # archive: the tree was half extracted and cached as complete
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    tb = tmp_path / name
    tb.write_bytes(damaged_variants(tmp_path)[name])
    with pytest.raises(ArchiveError, match="damaged|truncated|ends before"):
        sources.open_tree("9.9", str(tb), ("net", "include"))
    assert_nothing_cached(tmp_path)


def test_corrupt_xz_is_an_archive_error(tmp_path, monkeypatch):
    import lzma

    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    data = bytearray(lzma.compress(plain_tar(tmp_path)))
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x55
    tb = tmp_path / "linux-9.9.tar.xz"
    tb.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="cannot read linux-9.9.tar.xz"):
        sources.open_tree("9.9", str(tb), ("net", "include"))
    assert_nothing_cached(tmp_path)


def test_intact_plain_tar_with_zero_padding_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    tb = tmp_path / "linux-9.9.tar"
    tb.write_bytes(plain_tar(tmp_path) + bytes(20 * 512))
    tree = sources.open_tree("9.9", str(tb), ("net", "include"))
    assert (tree.root / "net" / "socket.c").is_file()


def test_full_disk_while_extracting_is_a_cache_error_not_damage(tmp_path, monkeypatch):
    import builtins
    import errno

    from ksrcgraph.errors import CacheError

    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    tb = kernel_tar(tmp_path)
    real_open = builtins.open

    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *a, **k):
        return Full() if mode in ("xb", "wb") and "cache" in str(path) else real_open(path, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(CacheError, match="no space left on device") as e:
        sources.open_tree("9.9", str(tb), ("net", "include"))
    assert not isinstance(e.value, ArchiveError) and "free some space" in e.value.hint
    assert_nothing_cached(tmp_path)


def test_read_only_cache_while_extracting_is_a_cache_error(tmp_path, monkeypatch):
    import errno

    from ksrcgraph.errors import CacheError

    monkeypatch.setenv("KSRCGRAPH_CACHE_DIR", str(tmp_path / "cache"))
    tb = kernel_tar(tmp_path)

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.mkdtemp", read_only)
    with pytest.raises(CacheError, match="read-only") as e:
        sources.open_tree("9.9", str(tb), ("net", "include"))
    assert "KSRCGRAPH_CACHE_DIR" in e.value.hint

"""The phone dictionaries' cached tables (``lavanya_cli.frontend.tables``): the same answers as
the text, written once and read after, made again when the source changes, never trusted (a
corrupt, hostile or unreadable table falls back to the source), never a pickle, and an
unwritable cache costs only the parse."""

from __future__ import annotations

import ast
import errno
import hashlib
import os
import pickle
import pickletools
import stat
import struct
import threading
import unicodedata
import zlib
from pathlib import Path

import pytest

from _helpers import umask
from lavanya_cli.frontend import Frontend, FrontendKind, tables
from lavanya_cli.frontend.phones import PhoneDictionary, spellings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs" / "main"

# Duplicates (the first entry wins), a word under both nukta spellings, a zero-width joiner,
# extra spaces, blank and one-field lines, a CRLF line end, Latin words in several cases (with
# folding, the first of "Apple"/"APPLE" wins for "apple", "US" for "us"), a word whose case
# folding is longer ("Straße" -> "strasse"), and characters of two and four UTF-8 bytes.
HINDI = (
    "नमस्ते namastE\n"
    "नमस्ते namaskAr\n"
    "\u095bरूर zarUr\n"
    "ज\u093c्यादा zyAdA\n"
    "क्\u200dष kष\n"
    "दुनिया   duniyA  \n"
    "\n"
    "अकेला\n"
    "एक Ek\r\n"
    "ꯑ manipuri\n"
    "𑒁 tirhuta\n"
)
ENGLISH = (
    "Apple Epal\n"
    "APPLE EPAL\n"
    "US yUes\n"
    "us as\n"
    "Straße strAse\n"
    "india iNडiyA\n"
    "India INDIA\n"
)
HINDI_QUERIES = ["नमस्ते", "ज\u093cरूर", "\u095bरूर", "\u095b्यादा", "ज\u093c्\u200dयादा", "क्ष", "क्\u200dष", "दुनिया",
                 "अकेला", "एक", "ꯑ", "𑒁", "जरूर", "", "\ud800", "नमस्ते\u200c"]
ENGLISH_QUERIES = ["apple", "Apple", "APPLE", "aPPle", "US", "us", "Us", "straße", "STRASSE", "strasse", "India",
                   "INDIA", "india", "nothing", "\ud800x"]


def reference_lookup(text: str, fold_case: bool, word: str) -> str | None:
    """What a lookup answered before the cache: the text parsed into a dict (the first entry of
    a word winning, folded keys added with fold_case), then ``PhoneDictionary.lookup``'s order."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        key, _, phones = line.partition(" ")
        phones = phones.strip()
        if key and phones:
            entries.setdefault(key, phones)
            if fold_case:
                entries.setdefault(key.casefold(), phones)
    for spelling in spellings(word):
        if spelling in entries:
            return entries[spelling]
    return entries.get(word.casefold()) if fold_case else None


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def cached_files(cache: Path) -> list[Path]:
    folder = cache / tables.CACHE_DIR
    return sorted(folder.iterdir()) if folder.is_dir() else []


def the_table(cache: Path) -> Path:
    (path,) = cached_files(cache)
    return path


def hindi_table(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The test Hindi dictionary, a cache, and the table loading it wrote there."""
    source = write(tmp_path / "hindi", HINDI)
    cache = tmp_path / "cache"
    tables.load_table(source, False, cache)
    return source, cache, the_table(cache)


@pytest.fixture
def forbid_parsing(monkeypatch):
    """Make parsing the source (and building a table) fail: only a table read from the cache works."""
    def refuse(*args, **kwargs):
        raise AssertionError("the source was parsed")

    monkeypatch.setattr(tables, "parse_dictionary", refuse)
    monkeypatch.setattr(tables, "encode_table", refuse)


@pytest.fixture
def forbid_pickle(monkeypatch):
    """Any unpickling at all fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    for name in ("load", "loads", "Unpickler", "_load", "_loads", "_Unpickler"):
        if hasattr(pickle, name):
            monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickletools, "genops", refuse)
    monkeypatch.setattr(pickletools, "dis", refuse)


# -- the same answers ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "fold_case", "queries"), [(HINDI, False, HINDI_QUERIES),
                                                            (ENGLISH, True, ENGLISH_QUERIES),
                                                            (ENGLISH, False, ENGLISH_QUERIES)])
def test_lookups_through_the_table_equal_lookups_in_the_text(tmp_path, text, fold_case, queries):
    source = write(tmp_path / "dictionary", text)
    cache = tmp_path / "cache"
    expected = [reference_lookup(text, fold_case, word) for word in queries]
    assert any(expected) and None in expected
    built = PhoneDictionary(source, fold_case, cache)  # parsed, written
    assert [built.lookup(word) for word in queries] == expected
    tables.shared_table.cache_clear()
    read = PhoneDictionary(source, fold_case, cache)  # read from the cache
    assert [read.lookup(word) for word in queries] == expected
    assert len(cached_files(cache)) == 1


def test_the_nukta_spellings_and_first_entries_through_the_table(tmp_path):
    source = write(tmp_path / "hindi", HINDI)
    cache = tmp_path / "cache"
    tables.load_table(source, False, cache)
    dictionary = PhoneDictionary(source, cache=cache)
    assert dictionary.lookup("नमस्ते") == "namastE"  # the first of two entries
    assert dictionary.lookup("ज\u093cरूर") == "zarUr"  # decomposed asked, precomposed stored
    assert dictionary.lookup("\u095b्यादा") == "zyAdA"  # precomposed asked, decomposed stored
    assert dictionary.lookup("ज\u093c्\u200dयादा") == "zyAdA"  # with a zero-width joiner
    assert dictionary.lookup("जरूर") is None


def test_the_english_table_folds_case_as_the_text_did(tmp_path):
    source = write(tmp_path / "english", ENGLISH)
    cache = tmp_path / "cache"
    tables.load_table(source, True, cache)
    dictionary = PhoneDictionary(source, fold_case=True, cache=cache)
    # an exact spelling first; else the first entry whose folded form matches ("US" came before
    # "us", so "us" folded is already taken when its own line comes)
    assert [dictionary.lookup(word) for word in ("aPPle", "APPLE", "US", "us", "Us", "STRASSE", "INDIA", "India")] == \
        ["Epal", "EPAL", "yUes", "yUes", "yUes", "strAse", "iNडiyA", "INDIA"]
    # a case-folded table and an exact one of the same source are two files
    tables.load_table(source, False, cache)
    assert len(cached_files(cache)) == 2


@pytest.mark.skipif(not (SHARED / "phone_dict" / "hindi").is_file(), reason="no ../shared/iitm-fs2hs/main")
@pytest.mark.parametrize(("language", "fold_case"), [("hindi", False), ("english", True)])
def test_a_real_dictionary_through_its_table(tmp_path, monkeypatch, language, fold_case):
    path = SHARED / "phone_dict" / language  # read in place
    text = path.read_text(encoding="utf-8")
    entries: dict[str, str] = {}  # as the text was parsed before the cache
    for line in text.splitlines():
        word, _, phones = line.partition(" ")
        if word and phones.strip():
            entries.setdefault(word, phones.strip())
            if fold_case:
                entries.setdefault(word.casefold(), phones.strip())

    def expected(word: str) -> str | None:
        for spelling in spellings(word):
            if spelling in entries:
                return entries[spelling]
        return entries.get(word.casefold()) if fold_case else None

    cache = tmp_path / "cache"
    assert len(tables.load_table(path, fold_case, cache)) == len(entries)
    monkeypatch.setattr(tables, "parse_dictionary", None)  # from here on, only the table answers
    tables.shared_table.cache_clear()
    dictionary = PhoneDictionary(path, fold_case, cache)
    words = [line.partition(" ")[0] for line in text.splitlines()[::23]]
    words += [word.upper() for word in words[::5]] + [word.title() for word in words[::7]]
    words += [unicodedata.normalize("NFD", word) for word in words[::3]] + ["नहीं-है-यह", "zzzz", "ৎ"]
    assert [dictionary.lookup(word) for word in words] == [expected(word) for word in words]


# -- written once, read after, made again on a change --------------------------------------------


def test_the_table_is_written_once_then_read_without_parsing(tmp_path, monkeypatch, forbid_pickle):
    source, cache, table = hindi_table(tmp_path)
    before = table.stat()
    assert stat.S_IMODE(before.st_mode) == 0o644 & ~umask()
    assert table.name == f"phones-{hashlib.sha256(source.read_bytes()).hexdigest()}-exact.v{tables.FORMAT_VERSION}"

    def refuse(*args, **kwargs):
        raise AssertionError("the source was parsed")

    monkeypatch.setattr(tables, "parse_dictionary", refuse)
    monkeypatch.setattr(tables, "encode_table", refuse)
    monkeypatch.setattr(tables, "replace_file", refuse)
    tables.shared_table.cache_clear()
    dictionary = PhoneDictionary(source, cache=cache)
    assert dictionary.lookup("ज\u093cरूर") == "zarUr"
    after = table.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not written again


def test_an_edited_source_makes_a_new_table(tmp_path):
    source = write(tmp_path / "hindi", "एक Ek\nदो dO\n")
    cache = tmp_path / "cache"
    assert tables.load_table(source, False, cache).get("एक") == "Ek"
    old = the_table(cache)
    info = source.stat()
    write(source, "एक ik\nदो dO\n")  # the same size
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))  # and the same time: only the bytes tell
    assert tables.load_table(source, False, cache).get("एक") == "ik"
    assert len(cached_files(cache)) == 2 and old in cached_files(cache)
    write(source, "एक ik\nदो dO\nतीन tIn\n")
    assert PhoneDictionary(source, cache=cache).lookup("तीन") == "tIn"
    assert len(cached_files(cache)) == 3


def test_the_frontend_keeps_its_tables_in_the_cache_it_is_given(tmp_path, monkeypatch):
    root = tmp_path / "models"
    (root / "phone_dict").mkdir(parents=True)
    write(root / "phone_dict" / "hindi", HINDI)
    write(root / "phone_dict" / "english", ENGLISH)
    given = tmp_path / "given"
    frontend = Frontend("hindi", "male", FrontendKind.PHRASES, root, cache=given)
    assert frontend.prepare("नमस्ते India").model_input == "$namastEINDIA."
    assert len(cached_files(given)) == 2  # the Hindi table and the folded English one
    monkeypatch.setenv("LAVANYA_CACHE", str(tmp_path / "default"))
    tables.shared_table.cache_clear()
    Frontend("hindi", "male", FrontendKind.PHRASES, root).prepare("एक apple")
    assert len(cached_files(tmp_path / "default")) == 2


# -- a table not to trust ------------------------------------------------------------------------


def _rewrite(data: bytes, **fields) -> bytes:
    """``data`` with header fields replaced (and, unless ``crc`` is given, a CRC that fits)."""
    names = ("magic", "version", "flags", "digest", "count", "keys", "values", "crc")
    values = dict(zip(names, tables._HEADER.unpack_from(data)))
    body = bytearray(data[tables._HEADER.size:])
    for offset, value in fields.pop("body", {}).items():
        body[offset:offset + len(value)] = value
    values.update(fields)
    if "crc" not in fields:
        values["crc"] = zlib.crc32(body)
    return tables._HEADER.pack(*values.values()) + bytes(body)


HOSTILE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[:-7],
    "header only": lambda data: data[:tables._HEADER.size],
    "half a header": lambda data: data[:40],
    "a byte flipped": lambda data: data[:-3] + bytes([data[-3] ^ 0x20]) + data[-2:],
    "grown": lambda data: data + b"\0" * 4,
    "a pickle": lambda data: pickle.dumps({"नमस्ते": "hacked"}),
    "another magic": lambda data: _rewrite(data, magic=b"NOTMAGIC"),
    "another version": lambda data: _rewrite(data, version=tables.FORMAT_VERSION + 1),
    "other flags": lambda data: _rewrite(data, flags=1),
    "another source": lambda data: _rewrite(data, digest=b"\1" * 32),
    "a huge count": lambda data: _rewrite(data, count=2**63),
    "huge blobs": lambda data: _rewrite(data, keys=2**40, values=2**40),
    "a count off by one": lambda data: _rewrite(data, count=_count(data) - 1),
    "a last key offset beyond the keys": lambda data: _rewrite(
        data, body={4 * _count(data): struct.pack("<I", 2**31)}),
    "value offsets starting past zero": lambda data: _rewrite(
        data, body={4 * (_count(data) + 1): struct.pack("<I", 3)}),
}


def _count(data: bytes) -> int:
    return tables._HEADER.unpack_from(data)[4]


@pytest.mark.parametrize("damage", sorted(HOSTILE))
def test_a_damaged_or_hostile_table_falls_back_to_the_source_and_is_made_again(tmp_path, damage, forbid_pickle):
    source, cache, table = hindi_table(tmp_path)
    good = table.read_bytes()
    table.write_bytes(HOSTILE[damage](good))
    table.chmod(0o666)
    tables.shared_table.cache_clear()
    dictionary = PhoneDictionary(source, cache=cache)
    assert [dictionary.lookup(word) for word in HINDI_QUERIES] == \
        [reference_lookup(HINDI, False, word) for word in HINDI_QUERIES]
    assert table.read_bytes() == good  # written again, whole
    assert stat.S_IMODE(table.stat().st_mode) == 0o644 & ~umask()  # never group- or world-writable


def test_a_table_crafted_past_its_checks_never_raises_or_reads_outside_its_blobs(tmp_path):
    source, cache, table = hindi_table(tmp_path)
    data = table.read_bytes()
    count = _count(data)
    # inner offsets out of order and beyond the blobs, invalid UTF-8 in a value, a CRC that fits
    values_at = tables._HEADER.size + 8 * (count + 1) + tables._HEADER.unpack_from(data)[5]
    crafted = _rewrite(data, body={4 * 1: struct.pack("<I", 2**32 - 1), 4 * 3: struct.pack("<I", 0),
                                   4 * (count + 2): struct.pack("<I", 2**31),
                                   values_at - tables._HEADER.size: b"\xff\xfe"})
    table.write_bytes(crafted)
    crafted_table = tables.read_table(table, hashlib.sha256(source.read_bytes()).digest(), False,
                                      source.stat().st_size)
    for word in HINDI_QUERIES + [line.partition(" ")[0] for line in HINDI.splitlines()]:
        for spelling in spellings(word):
            result = crafted_table.get(spelling)
            assert result is None or isinstance(result, str)


def _abc_table(tmp_path: Path, key_offsets: list[int] | None = None, value_offsets: list[int] | None = None,
               values: bytes | None = None):
    """A cached table of a→x, b→y, c→z (keys "abc", then values "xyz" right after them),
    its offsets replaced and its CRC made to fit: it passes every check made on opening."""
    tmp_path.mkdir(exist_ok=True)
    source = write(tmp_path / "abc", "a x\nb y\nc z\n")
    digest = hashlib.sha256(source.read_bytes()).digest()
    data = tables.encode_table({"a": "x", "b": "y", "c": "z"}, digest, False)
    body = {}
    if key_offsets:
        body[0] = struct.pack("<4I", *key_offsets)
    if value_offsets:
        body[16] = struct.pack("<4I", *value_offsets)
    if values:
        body[35] = values  # after the offsets (32 bytes) and the keys (3)
    place = tables.table_path(tmp_path / "cache", digest, False)
    place.parent.mkdir(parents=True)
    place.write_bytes(_rewrite(data, body=body))
    return tables.read_table(place, digest, False, source.stat().st_size)


def test_a_crafted_key_offset_reads_nothing_past_the_keys(tmp_path):
    assert _abc_table(tmp_path).get("b") == "y"
    # entry 1's key claimed at keys[3:4], which is the first value byte "x"
    table = _abc_table(tmp_path / "crafted", key_offsets=[0, 3, 4, 3])
    assert table.get("x") is None


def test_a_crafted_value_offset_reads_nothing_past_the_values(tmp_path):
    table = _abc_table(tmp_path, value_offsets=[0, 5, 2, 3])
    assert table.get("a") is None  # values[0:5] runs past the end of the values
    assert table.get("c") == "z"
    assert _abc_table(tmp_path / "not utf-8", values=b"x\xffz").get("b") == "\ufffd"  # never raises


def test_counts_beyond_the_source_are_refused_before_the_body_is_read(tmp_path, monkeypatch):
    source = write(tmp_path / "hindi", HINDI)
    digest = hashlib.sha256(source.read_bytes()).digest()
    size = source.stat().st_size
    place = tables.table_path(tmp_path / "cache", digest, False)
    place.parent.mkdir(parents=True)
    count = size + 1  # more entries than the source has bytes
    header = tables._HEADER.pack(tables.MAGIC, tables.FORMAT_VERSION, 0, digest, count, 0, 0, 0)
    with open(place, "wb") as handle:  # as large as the header says, all but the header a hole
        handle.write(header)
        handle.truncate(tables._file_size(count, 0, 0))
    read: list[int] = []
    real_open = tables.open_regular

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            data = self.handle.read(size)
            read.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(tables, "open_regular", lambda *args: Counting(real_open(*args)))
    with pytest.raises(tables.BadTable):
        tables.read_table(place, digest, False, size)
    assert sum(read) <= tables._HEADER.size


@pytest.mark.parametrize("thing", ["fifo", "link to /dev/zero", "directory", "dangling link", "sparse giant"])
def test_something_else_in_the_tables_place_falls_back_to_the_source(tmp_path, thing):
    source = write(tmp_path / "hindi", HINDI)
    cache = tmp_path / "cache"
    digest = hashlib.sha256(source.read_bytes()).digest()
    place = tables.table_path(cache, digest, False)
    place.parent.mkdir(parents=True)
    if thing == "fifo":
        os.mkfifo(place)
    elif thing == "link to /dev/zero":
        place.symlink_to("/dev/zero")
    elif thing == "directory":
        place.mkdir()
    elif thing == "dangling link":
        place.symlink_to(tmp_path / "nowhere")
    else:
        with open(place, "wb") as handle:
            handle.write(b"LVPHDICT")
            handle.truncate(1 << 40)
    result: dict[str, object] = {}

    def load() -> None:  # in a thread: a FIFO opened for reading must not hang the test
        result["answers"] = [PhoneDictionary(source, cache=cache).lookup(word) for word in HINDI_QUERIES]

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "reading the table's place blocked"
    assert result["answers"] == [reference_lookup(HINDI, False, word) for word in HINDI_QUERIES]
    if thing == "dangling link":  # the link itself is replaced by a real table
        assert not place.is_symlink() and tables.read_table(place, digest, False, source.stat().st_size)


def test_the_table_is_never_a_pickle(tmp_path, forbid_pickle):
    source = write(tmp_path / "english", ENGLISH)
    cache = tmp_path / "cache"
    tables.load_table(source, True, cache)
    tables.shared_table.cache_clear()
    assert PhoneDictionary(source, True, cache).lookup("APPLE") == "EPAL"  # read back, no unpickling
    data = the_table(cache).read_bytes()
    assert data.startswith(tables.MAGIC) and not data.startswith(b"\x80")  # a pickle opens with PROTO
    # and the module has no way to run one: no serializer that executes imported, no eval or exec
    tree = ast.parse(Path(tables.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"pickle", "_pickle", "pickletools", "marshal", "shelve", "dill", "cloudpickle", "copyreg"}
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_the_table_bytes_do_not_parse_as_a_pickle(tmp_path):
    source = write(tmp_path / "english", ENGLISH)
    cache = tmp_path / "cache"
    tables.load_table(source, True, cache)
    data = the_table(cache).read_bytes()
    with pytest.raises(ValueError):
        for _ in pickletools.genops(data):  # reads opcodes, runs nothing
            pass


# -- a cache that cannot be written ------------------------------------------------------------


def test_a_file_in_the_caches_place_costs_only_the_parse(tmp_path):
    source = write(tmp_path / "english", ENGLISH)
    cache = tmp_path / "cache"
    cache.write_bytes(b"not a directory")
    for _ in range(2):
        tables.shared_table.cache_clear()
        assert PhoneDictionary(source, True, cache).lookup("india") == "iNडiyA"
    assert cache.read_bytes() == b"not a directory"


def test_a_read_only_cache_costs_only_the_parse(tmp_path, monkeypatch):
    source = write(tmp_path / "hindi", HINDI)
    cache = tmp_path / "cache"
    (cache / tables.CACHE_DIR).mkdir(parents=True)
    (cache / tables.CACHE_DIR).chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: the file system says no instead

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(tables, "replace_file", read_only)
    try:
        assert PhoneDictionary(source, cache=cache).lookup("\u095b्यादा") == "zyAdA"
        assert cached_files(cache) == []
    finally:
        (cache / tables.CACHE_DIR).chmod(0o755)


def test_a_server_parses_and_keeps_no_table(tmp_path, monkeypatch):
    from lavanya_cli import fileio

    source = write(tmp_path / "hindi", HINDI)
    cache = tmp_path / "cache"
    monkeypatch.setitem(fileio._time_savers, "write", False)  # what lavanya serve sets
    assert PhoneDictionary(source, cache=cache).lookup("\u095b्यादा") == "zyAdA"
    assert not cache.exists()


def test_writers_at_once_leave_one_whole_table(tmp_path):
    source = write(tmp_path / "hindi", HINDI)
    cache = tmp_path / "cache"
    answers: list[str | None] = []

    def load() -> None:
        answers.append(tables.load_table(source, False, cache).get("नमस्ते"))

    workers = [threading.Thread(target=load) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert answers == ["namastE"] * 8
    assert [path.name for path in cached_files(cache)] == [the_table(cache).name]  # no temporary left
    tables.read_table(the_table(cache), hashlib.sha256(source.read_bytes()).digest(), False, source.stat().st_size)


"""The torch-free checkpoint reader: torch.save's files read back as torch reads them, and every
hostile or malformed file refused with one line naming it, before anything in it runs."""

from __future__ import annotations

import collections
import copyreg
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lavanya_cli.fileio import NotReadable
from lavanya_cli.modeltree import checkpoint
from lavanya_cli.modeltree.checkpoint import (
    CheckpointRefused,
    TensorRecord,
    open_checkpoint,
    tensor_dict,
)


# A pickle written opcode by opcode, as torch writes one (protocol 2), so tests can say what torch
# would never say without torch.
def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _str(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text.encode())) + text.encode()


def _int(number: int) -> bytes:
    return b"J" + struct.pack("<i", number)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(key: str, numel: int, shape: tuple[int, ...], stride: tuple[int, ...], offset: int = 0,
            storage: str = "FloatStorage") -> bytes:
    reference = _tuple(_str("storage"), _global("torch", storage), _str(key), _str("cpu"), _int(numel)) + b"Q"
    hooks = _global("collections", "OrderedDict") + b")R"
    args = _tuple(reference, _int(offset), _tuple(*map(_int, shape)), _tuple(*map(_int, stride)), b"\x89", hooks)
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_dict(**tensors: bytes) -> bytes:
    return b"\x80\x02}(" + b"".join(_str(name) + value for name, value in tensors.items()) + b"u."


def _write(path: Path, pickled: bytes, storages: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")
    return path


def _refusal(path: Path, what: str = "the acoustic model") -> str:
    with pytest.raises(CheckpointRefused) as caught:
        open_checkpoint(path, what).close()
    message = caught.value.message
    assert "\n" not in message and message.startswith(f"{path}: {what} ")
    return message


FLOATS = np.arange(6, dtype="<f4")


def test_a_hand_written_checkpoint_reads_its_views(tmp_path):
    path = _write(tmp_path / "model.pth", _state_dict(w=_tensor("0", 6, (2, 3), (3, 1)), t=_tensor("0", 6, (3, 2), (1, 3)),
                                                      s=_tensor("0", 6, (), (), offset=4)), {"0": FLOATS.tobytes()})
    with open_checkpoint(path, "the acoustic model") as weights:
        records = tensor_dict(weights.root)
        assert records is not None and list(records) == ["w", "t", "s"]
        assert records["t"] == TensorRecord(np.dtype("float32"), (3, 2), "0", np.dtype("<f4"), 0, (1, 3))
        transposed = weights.array(records["t"])
        assert transposed.tolist() == [[0, 3], [1, 4], [2, 5]] and transposed.flags.c_contiguous
        assert transposed.flags.writeable and weights.array(records["s"]).shape == ()
        assert weights.array(records["s"]) == 4.0
        beyond = TensorRecord(np.dtype("float32"), (7,), "0", np.dtype("<f4"), 0, (1,))  # not from this file
        with pytest.raises(CheckpointRefused, match=r"model\.pth: the acoustic model has a tensor reaching beyond "):
            weights.array(beyond)


def test_a_big_endian_checkpoint_reads_in_native_order(tmp_path):
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", _state_dict(w=_tensor("0", 3, (3,), (1,), storage="LongStorage")))
        archive.writestr("model/byteorder", "big")
        archive.writestr("model/data/0", np.array([1, -2, 1 << 40], ">i8").tobytes())
    with open_checkpoint(path, "the acoustic model") as weights:
        values = weights.array(weights.root["w"])
        assert values.tolist() == [1, -2, 1 << 40] and values.dtype == np.dtype("int64")
        assert weights.root["w"].storage_dtype == np.dtype(">i8")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "bool", "int8", "uint8", "float64"])
def test_torch_saved_state_dicts_read_as_torch_reads_them(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    kind = getattr(torch, dtype)
    base = (torch.arange(24) % 5).to(kind)
    state = collections.OrderedDict(
        weight=base[:12].reshape(3, 4), transposed=base[:12].reshape(3, 4).t(), shared=base[6:18:2],
        scalar=base[7].clone(), empty=torch.zeros(0, 3, dtype=kind), param=torch.nn.Parameter(base[:4].clone(),
                                                                                               requires_grad=False))
    state._metadata = collections.OrderedDict({"": {"version": 1}})
    torch.save({"generator": state, "steps": 7, "names": ("a", None, 1.5)}, tmp_path / "generator")
    expected = torch.load(tmp_path / "generator", weights_only=True)
    with open_checkpoint(tmp_path / "generator", "the vocoder") as weights:
        assert tensor_dict(weights.root) is None and weights.root["steps"] == 7
        assert weights.root["names"] == ("a", None, 1.5) and type(weights.root["generator"]) is dict
        records = tensor_dict(weights.root["generator"])
        assert records is not None and list(records) == list(state)
        for name, record in records.items():
            values = expected["generator"][name]
            wanted = (values.float() if dtype == "bfloat16" else values).numpy()
            got = weights.array(record)
            assert record.dtype == got.dtype == wanted.dtype and record.shape == tuple(values.shape)
            assert np.array_equal(got, wanted) and got.flags.c_contiguous and got.flags.writeable, name


def test_bfloat16_keeps_its_values_as_float32(tmp_path):
    torch = pytest.importorskip("torch")
    values = torch.tensor([1.5, -2.0, 3.140625, 1e-3, 65280.0], dtype=torch.bfloat16)
    torch.save({"v": values}, tmp_path / "model.pth")
    with open_checkpoint(tmp_path / "model.pth", "the acoustic model") as weights:
        assert np.array_equal(weights.array(weights.root["v"]), values.float().numpy())


def test_a_tensor_with_python_state_goes_through_rebuild_from_type(tmp_path):
    torch = pytest.importorskip("torch")
    values = torch.arange(4.0)
    values.note = "kept by torch, dropped here"
    torch.save({"v": values}, tmp_path / "model.pth")
    with zipfile.ZipFile(tmp_path / "model.pth") as archive:
        assert b"_rebuild_from_type_v2" in archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    with open_checkpoint(tmp_path / "model.pth", "the acoustic model") as weights:
        assert weights.array(weights.root["v"]).tolist() == [0, 1, 2, 3]


def test_a_pickle_that_runs_a_command_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = _write(tmp_path / "model.pth", pickle.dumps({"w": Payload()}, protocol=2), {})
    message = _refusal(path)
    assert ("posix.system" in message or "os.system" in message) and "could run code" in message
    assert message.endswith(checkpoint.RESTORE_WEIGHTS) and "weights_only" not in message
    assert not marker.exists()


@pytest.mark.parametrize(("pickled", "named"), [
    (pickle.dumps(type("E", (), {"__reduce__": lambda self: (eval, ("1",))})(), protocol=4), "builtins.eval"),
    (pickle.dumps(type("G", (), {"__reduce__": lambda self: (getattr, (1, "real"))})(), protocol=2),
     "__builtin__.getattr"),
    (b"\x80\x02" + _global("torch", "load") + b")R.", "torch.load"),
    (b"\x80\x02" + _global("_codecs", "encode") + b")R.", "_codecs.encode"),
])
def test_any_other_global_is_refused_by_name(tmp_path, pickled, named):
    assert f"asks for {named}, not only tensors" in _refusal(_write(tmp_path / "model.pth", pickled, {}))


@pytest.mark.parametrize(("pickled", "says"), [
    (b"\x80\x02\x82\x01.", "opcode EXT1"),  # copyreg's cache would answer without find_class
    (b"\x80\x02" + _global("torch", "Tensor") + b")\x81.", "opcode NEWOBJ"),
    (b"\x80\x02" + _global("torch", "FloatStorage") + b")R.", "calls torch.FloatStorage"),
    (b"\x80\x02" + _global("torch._utils", "_rebuild_tensor_v2") + b"N}" + _str("call") + b"Ns\x86b.",
     "sets the state of torch._utils._rebuild_tensor_v2"),
    (b"\x80\x02" + _global("collections", "OrderedDict") + b")R}" + _str("x") + b"Nsb.", "other than _metadata"),
    (b"\x80\x02" + _tuple(_str("module"), _str("x")) + b"Q.", "persistent reference other than a storage"),
    (b"\x80\x02" + _global("torch", "FloatStorage") + b".", "holds torch.FloatStorage where only tensors"),
    (b"\x80\x02]q\x00h\x00a.", "nests containers deeper than 64"),  # a list that holds itself
    (b"\x80\x02}", "truncated or corrupt"),
    (b"\x80\x02" + _global("torch._utils", "_rebuild_parameter") + _tuple(_int(1), b"\x89", b"}") + b"R.",
     "makes a parameter of something other than a tensor"),
])
def test_what_torch_never_writes_is_refused(tmp_path, pickled, says):
    assert says in _refusal(_write(tmp_path / "model.pth", pickled, {}))


def test_an_extension_code_cannot_reach_copyregs_cache(tmp_path):
    # The C unpickler answers EXT from copyreg's process-wide cache without asking find_class, once
    # anything in the process has loaded that code; the scan refuses EXT before it can.
    copyreg.add_extension("os", "getpid", 0xF1)
    try:
        assert pickle.loads(b"\x80\x02\x82\xf1.") is os.getpid  # now in the cache
        message = _refusal(_write(tmp_path / "model.pth", b"\x80\x02\x82\xf1)R.", {}))
    finally:
        copyreg.remove_extension("os", "getpid", 0xF1)
    assert "uses the opcode EXT1, which torch never writes" in message


def test_a_memo_index_cannot_make_the_unpickler_allocate(tmp_path):
    # Nine bytes: the C unpickler would allocate and zero 2**32 memo slots (32 GiB).
    pickled = b"\x80\x02Nr" + struct.pack("<I", 1 << 31) + b"."
    assert f"memoizes at index {1 << 31}" in _refusal(_write(tmp_path / "model.pth", pickled, {}))


@pytest.mark.parametrize(("tensor", "says"), [
    (_tensor("7", 6, (6,), (1,)), "names a storage '7' that is not in the archive"),
    (_tensor("0", 6, (4,), (1,), offset=3), "reaching beyond its storage 0 of 6 elements"),
    (_tensor("0", 6, (2, 3), (4, 1)), "reaching beyond its storage 0"),
    (_tensor("0", 6, (1 << 30,), (0,)), "more elements than its storage 0 holds (an expanded view)"),
    (_tensor("0", 7, (6,), (1,)), "storage 0 of 7 elements in a record of 24 bytes"),
    (_tensor("0", 6, (6,), (-1,)), "not non-negative whole numbers"),
    (_tensor("0", 6, (1,) * 9, (1,) * 9), "rank 9 (at most 8)"),
    (_tensor("0", 6, (6,), (1,), storage="ComplexFloatStorage"), "asks for torch.ComplexFloatStorage"),
])
def test_a_tensor_outside_its_storage_is_refused(tmp_path, tensor, says):
    assert says in _refusal(_write(tmp_path / "model.pth", _state_dict(w=tensor), {"0": FLOATS.tobytes()}))


def test_archive_bounds_and_foreign_files_are_refused(tmp_path, monkeypatch):
    good = _state_dict(w=_tensor("0", 6, (6,), (1,)))
    packed = _write(tmp_path / "packed.pth", good, {"0": FLOATS.tobytes()}, zipfile.ZIP_DEFLATED)
    assert "holds a compressed record (archive/data.pkl)" in _refusal(packed)
    (tmp_path / "text.pth").write_text("version https://git-lfs.github.com/spec/v1\n")
    assert "is not in PyTorch's zip checkpoint format" in _refusal(tmp_path / "text.pth")
    whole = _write(tmp_path / "model.pth", good, {"0": FLOATS.tobytes()}).read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[: len(whole) // 2])
    assert "is not in PyTorch's zip checkpoint format" in _refusal(tmp_path / "cut.pth")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert "not a PyTorch checkpoint (0 <folder>/data.pkl records" in _refusal(tmp_path / "other.zip")
    monkeypatch.setattr(checkpoint, "TENSORS_MAX", 1)
    two = _write(tmp_path / "two.pth", _state_dict(a=_tensor("0", 6, (6,), (1,)), b=_tensor("0", 6, (6,), (1,))),
                 {"0": FLOATS.tobytes()})
    assert "holds more than 1 tensors" in _refusal(two)
    monkeypatch.setattr(checkpoint, "PICKLE_OPS_MAX", 20)
    assert "is a pickle of more than 20 opcodes" in _refusal(tmp_path / "model.pth")
    monkeypatch.setattr(checkpoint, "PICKLE_MAX_BYTES", 64)
    assert "has a record archive/data.pkl larger than 64 bytes" in _refusal(tmp_path / "model.pth")
    monkeypatch.setattr(checkpoint, "CHECKPOINT_RECORDS_MAX", 3)
    assert "lists 4 records in" in _refusal(tmp_path / "model.pth")
    assert "is missing" in _refusal(tmp_path / "absent.pth")


def test_a_fifo_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "model.pth")
    with pytest.raises(NotReadable, match=r"model\.pth: the acoustic model is a FIFO, not a regular file"):
        open_checkpoint(tmp_path / "model.pth", "the acoustic model")


def test_a_damaged_storage_record_fails_its_crc_when_read(tmp_path):
    path = _write(tmp_path / "model.pth", _state_dict(w=_tensor("0", 6, (6,), (1,))), {"0": FLOATS.tobytes()})
    data = path.read_bytes()
    at = data.index(FLOATS.tobytes())
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:])
    with open_checkpoint(path, "the acoustic model") as weights, pytest.raises(CheckpointRefused) as caught:
        weights.array(weights.root["w"])
    assert caught.value.message.startswith(f"{path}: the acoustic model has a damaged record archive/data/0 (")


def test_torch_before_1_6_is_sent_to_lavanya_torch(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    assert "before 1.6" in _refusal(tmp_path / "old.pth") and "lavanya[torch]" in _refusal(tmp_path / "old.pth")


def test_load_weights_refuses_a_compressed_record_through_the_same_check(tmp_path):
    pytest.importorskip("torch")
    from lavanya_cli.errors import FileError
    from lavanya_cli.speech.torch_weights import load_weights

    path = _write(tmp_path / "model.pth", _state_dict(), {}, zipfile.ZIP_DEFLATED)
    with pytest.raises(FileError, match="model.pth: the acoustic model holds a compressed record .*git lfs pull"):
        load_weights(path, "the acoustic model")


def test_tensor_dict_takes_only_a_non_empty_dict_of_tensors():
    record = TensorRecord(np.dtype("float32"), (2,), "0", np.dtype("<f4"), 0, (1,))
    assert tensor_dict({"a": record}) == {"a": record}
    for value in ({}, {"a": record, "b": 1}, {1: record}, [record], record, None, {"a": {"b": record}}):
        assert tensor_dict(value) is None


def test_the_reader_never_imports_torch(tmp_path):
    path = _write(tmp_path / "model.pth", _state_dict(w=_tensor("0", 6, (2, 3), (1, 2))), {"0": FLOATS.tobytes()})
    code = ("import sys; sys.modules['torch'] = None\n"
            "from lavanya_cli.modeltree.checkpoint import open_checkpoint\n"
            f"with open_checkpoint({str(path)!r}, 'w') as c: print(c.array(c.root['w']).tolist())\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]", "['torch']"]


def test_views_into_one_storage_read_only_their_own_bytes(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    big = torch.arange(1 << 20, dtype=torch.float32)
    views = {f"w{i}": big[i * 1000:(i + 1) * 1000].view(10, 100) for i in range(50)}
    path = tmp_path / "model.pth"
    torch.save(views, path)
    reads = []
    with checkpoint.open_checkpoint(path, "the acoustic model") as opened:
        span = opened._span
        monkeypatch.setattr(opened, "_span", lambda name, start, length: reads.append(length) or span(name, start, length))
        for key, record in checkpoint.tensor_dict(opened.root).items():
            assert np.array_equal(opened.array(record), views[key].numpy())
    assert reads == [1000 * 4] * 50  # each view's 4,000 bytes, not the 4 MiB storage 50 times

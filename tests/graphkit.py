"""Hostile ONNX graphs and the trees that carry them: a copy of the bundled demo tree whose
generator (or encoder) is replaced, its export manifest rewritten to match, as the author of a
hostile deploy root would do. Needs the ``onnx`` package (the torch extra)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from lavanya_cli.modeltree.layout import BUNDLED_ROOT

onnx = __import__("pytest").importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

VOCODER = Path("vocoder/male/aryan/hifigan")
MODEL = Path("hindi/male/model")
N_MELS = 80


def model(nodes, initializers=(), inputs=None, outputs=None, opset: int = 17):
    """A generator-shaped model (``mel [1, 80, frames]`` -> ``audio``) unless told otherwise."""
    inputs = inputs or [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, N_MELS, "frames"])]
    outputs = outputs or [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, 1, "samples"])]
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8).SerializeToString()


def tensor(name: str, array) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def loop_forever() -> bytes:
    """A Loop of 10^15 iterations around the mel."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c2"]), helper.make_node("Identity", ["x"], ["x2"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x2", TensorProto.FLOAT, None)])
    return model([helper.make_node("Loop", ["trip", "cond", "mel"], ["audio"], body=body)],
                 [tensor("trip", np.array(10**15, dtype=np.int64)), tensor("cond", np.array(True))])


def constant_of_shape() -> bytes:
    """2.4 GB of zeros from a constant shape."""
    return model([helper.make_node("ConstantOfShape", ["shape"], ["audio"],
                                   value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]))],
                 [tensor("shape", np.array([1, 1, 600_000_000], dtype=np.int64))])


def external_data() -> bytes:
    """An initializer whose bytes would be read from /etc/passwd."""
    weight = tensor("w", np.zeros((1, 1, 1), np.float32))
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    return model([helper.make_node("Add", ["mel", "w"], ["audio"])], [weight])


def huge_range() -> bytes:
    """Range over a constant limit of 10^9, where ours count up to an input's length."""
    return model([helper.make_node("Range", ["start", "limit", "delta"], ["r"]),
                  helper.make_node("Add", ["mel", "r"], ["audio"])],
                 [tensor("start", np.array(0.0, np.float32)), tensor("limit", np.array(1e9, np.float32)),
                  tensor("delta", np.array(1.0, np.float32))])


def wide_stride() -> bytes:
    """One ConvTranspose that makes 1000 samples a frame (ours make at most 8)."""
    return model([helper.make_node("ConvTranspose", ["mel", "w"], ["audio"], strides=[1000], kernel_shape=[4])],
                 [tensor("w", np.zeros((N_MELS, 1, 4), np.float32))])


def wide_channels() -> bytes:
    """Upsampling by 256, then 16,384 channels: gigabytes per vocoder window."""
    return model([helper.make_node("ConvTranspose", ["mel", "up"], ["a"], strides=[16], kernel_shape=[16]),
                  helper.make_node("ConvTranspose", ["a", "up"], ["b"], strides=[16], kernel_shape=[16]),
                  helper.make_node("Conv", ["b", "wide"], ["audio"], kernel_shape=[1])],
                 [tensor("up", np.zeros((N_MELS, N_MELS, 16), np.float32)),
                  tensor("wide", np.zeros((16384, N_MELS, 1), np.float32))])


def failing_at_run() -> bytes:
    """A graph that loads but fails on an input of other than 5 frames (shapes that cannot broadcast)."""
    return model([helper.make_node("Add", ["mel", "w"], ["audio"])], [tensor("w", np.zeros((1, 1, 5), np.float32))])


def slow(nodes: int = 10_000) -> bytes:
    """A legal-looking generator that computes for a long time: thousands of 63-tap convolutions
    of the mel, one weight shared, then upsampled to 256 samples a frame (what the engine asks)."""
    chain = [helper.make_node("Conv", ["mel", "w"], ["c0"], kernel_shape=[63], pads=[31, 31])]
    for index in range(1, nodes):
        chain.append(helper.make_node("Conv", [f"c{index - 1}", "w"], [f"c{index}"], kernel_shape=[63], pads=[31, 31]))
    chain += [helper.make_node("ConvTranspose", [f"c{nodes - 1}", "up"], ["u"], strides=[16], kernel_shape=[16]),
              helper.make_node("ConvTranspose", ["u", "down"], ["audio"], strides=[16], kernel_shape=[16])]
    return model(chain, [tensor("w", np.full((N_MELS, N_MELS, 63), 1e-4, np.float32)),
                         tensor("up", np.full((N_MELS, N_MELS, 16), 1e-3, np.float32)),
                         tensor("down", np.full((N_MELS, 1, 16), 1e-3, np.float32))])


def outer_product_encoder() -> bytes:
    """An encoder whose tensors grow as the fourth power of the tokens (gigabytes for 100)."""
    nodes = [
        helper.make_node("Cast", ["token_ids"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["x", "axis1"], ["column"]),
        helper.make_node("Transpose", ["column"], ["row"], perm=[1, 0]),
        helper.make_node("MatMul", ["column", "row"], ["square"]),
        helper.make_node("Reshape", ["square", "flat"], ["long"]),
        helper.make_node("Transpose", ["long"], ["wide"], perm=[1, 0]),
        helper.make_node("MatMul", ["long", "wide"], ["hidden"]),
        helper.make_node("ReduceSum", ["hidden", "axis1"], ["log_durations"], keepdims=0),
    ]
    return model(nodes, [tensor("axis1", np.array([1], np.int64)), tensor("flat", np.array([-1, 1], np.int64))],
                 inputs=[helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["tokens"])],
                 outputs=[helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["a", "b"]),
                          helper.make_tensor_value_info("log_durations", TensorProto.FLOAT, ["a"])])


def hostile_tree(target: Path, *, generator: bytes | None = None, encoder: bytes | None = None,
                 special: str | None = None) -> Path:
    """A copy of the bundled tree at ``target`` with its generator (or encoder) replaced by
    ``generator`` (``encoder``) and the manifest rewritten to list it; ``special``: the generator
    becomes a FIFO (``fifo``) or a link to /dev/zero (``zero``) instead."""
    shutil.copytree(BUNDLED_ROOT, target)
    if generator is not None or special is not None:
        _replace(target / VOCODER, "generator.onnx", generator, special)
    if encoder is not None:
        _replace(target / MODEL, "acoustic_encoder.onnx", encoder, None)
    return target


def _replace(directory: Path, name: str, data: bytes | None, special: str | None) -> None:
    path = directory / name
    path.unlink()
    if special == "fifo":
        os.mkfifo(path)
        return
    if special == "zero":
        path.symlink_to("/dev/zero")
        return
    path.write_bytes(data)
    manifest_path = directory / "lavanya-export.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest_path.write_text(json.dumps(manifest))


def hidden_behind_a_second_graph() -> bytes:
    """A model whose first graph a runtime merges with a second, innocent-looking one: a
    ConstantOfShape that only the first holds."""
    hidden = model([helper.make_node("ConstantOfShape", ["shape"], ["evil"],
                                     value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]))],
                   [tensor("shape", np.array([1, 1, 600_000_000], dtype=np.int64))])
    shown = model([helper.make_node("Add", ["mel", "evil"], ["audio"])])
    return hidden + shown


def range_over_a_constant_node() -> bytes:
    """Range whose limit is a Constant node of 10^9 rather than a dimension of the input."""
    return model([helper.make_node("Constant", [], ["limit"], value=helper.make_tensor("l", TensorProto.FLOAT, [], [1e9])),
                  helper.make_node("Range", ["start", "limit", "delta"], ["r"]),
                  helper.make_node("Add", ["mel", "r"], ["audio"])],
                 [tensor("start", np.array(0.0, np.float32)), tensor("delta", np.array(1.0, np.float32))])


def concat_maze(depth: int = 24) -> bytes:
    """A Range limit behind ``depth`` layers of 16-way Concats (16^depth paths back to Shape)."""
    nodes = [helper.make_node("Shape", ["mel"], ["s0"])]
    for level in range(1, depth + 1):
        nodes.append(helper.make_node("Concat", [f"s{level - 1}"] * 16, [f"s{level}"], axis=0))
    nodes += [helper.make_node("Range", ["start", f"s{depth}", "delta"], ["r"]),
              helper.make_node("Add", ["mel", "r"], ["audio"])]
    return model(nodes, [tensor("start", np.array(0, np.int64)), tensor("delta", np.array(1, np.int64))])


def constant_of_unread_size() -> bytes:
    """A generator that adds a Constant given as value_floats (a list this check does not size)."""
    return model([helper.make_node("Constant", [], ["c"], value_floats=[0.0] * 5000),
                  helper.make_node("Add", ["mel", "c"], ["audio"])])


def folded_on_load() -> bytes:
    """An encoder whose first node adds two constants into a 16384 x 16384 tensor: computed by a
    runtime while it loads the graph (constant folding), outside every bound on memory."""
    nodes = [helper.make_node("Add", ["column", "row"], ["big"]),
             helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
             helper.make_node("Cast", ["token_ids"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["x", "axis1"], ["column_x"]),
             helper.make_node("Mul", ["column_x", "total"], ["hidden"]),
             helper.make_node("Mul", ["x", "total"], ["log_durations"])]
    return model(nodes, [tensor("column", np.ones((16384, 1), np.float32)),
                         tensor("row", np.ones((1, 16384), np.float32)), tensor("axis1", np.array([1], np.int64))],
                 inputs=[helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["tokens"])],
                 outputs=[helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["a", "b"]),
                          helper.make_tensor_value_info("log_durations", TensorProto.FLOAT, ["a"])])


def wide_hidden_encoder() -> bytes:
    """An encoder whose hidden states are 16 x 16,384 wide (the engine's numpy repeat of them
    would make gigabytes of frames), within every static bound."""
    nodes = [helper.make_node("Cast", ["token_ids"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["x", "axis1"], ["column"]),
             helper.make_node("Add", ["column", "wide"], ["row"]),
             helper.make_node("Concat", ["row"] * 16, ["hidden"], axis=1),
             helper.make_node("Mul", ["x", "zero"], ["log_durations"])]
    return model(nodes, [tensor("axis1", np.array([1], np.int64)), tensor("wide", np.zeros((1, 16384), np.float32)),
                         tensor("zero", np.array(0.0, np.float32))],
                 inputs=[helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["tokens"])],
                 outputs=[helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["a", "b"]),
                          helper.make_tensor_value_info("log_durations", TensorProto.FLOAT, ["a"])])

"""A voice's ONNX graphs checked as data before any runtime sees them: the kind of graph
``lavanya export`` writes, or refused with one line.

A model tree (a deploy root, or a cache someone else can write) may hold a hostile graph: a FIFO
or a link to ``/dev/zero`` where a graph belongs, a ``Loop`` of 10^15 iterations, a
``ConstantOfShape`` of gigabytes, initializers stored in "external data" files anywhere on the
disk, nodes hidden behind a second copy of the graph. So a graph is:

* opened as a regular file of at most ``GRAPH_MAX_BYTES`` (``fileio.open_regular``), and where
  its export manifest lists it, of exactly that size and SHA-256 (a different graph is not
  spoken); the runtime then loads that open file through its descriptor (``Graph.source``), and
  a file that changed meanwhile is refused;
* walked as protobuf within a budget of ``WALK_ITEMS_MAX`` fields (initializer payloads are
  skipped, not copied; a message protobuf would merge may appear once) and refused unless it is
  one of ours: the standard operator set only, the operators our encoder, decoder and generator
  use (``OPERATORS``), no subgraphs, functions, sparse or external tensors, the inputs and
  outputs the engine feeds and reads, every node reading only what comes before it and none
  computed from constants alone (a runtime would compute it while loading), every tensor of rank
  at most 4 with dimensions at most ``DIMENSION_MAX``, convolution attributes within
  ``CONV_ATTRIBUTE_MAX``; ``Range`` only over a dimension read from a shape, in steps of one (the
  positional encodings), so no operator can make a tensor larger than its inputs allow;
* for the generator, the one graph OpenVINO runs, the largest memory its tensors can hold at
  once for a vocoder window is computed from those shapes (``generator_peak_bytes``) and
  bounded. ONNX Runtime's own arena is capped as well, and every output's shape is checked by
  the engine (``onnx_engine``).

No library reads ONNX's structure without copying every weight into Python objects (``onnx``
is also not part of the light install), so the few fields needed are read here;
``tests/test_hostile_graphs.py`` checks the walker against the ``onnx`` package.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FileError, LavanyaError
from ..fileio import MIB, format_size, open_regular, stat_signature
from ..modeltree.layout import DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME, GENERATOR_GRAPH_NAME

# The largest graph lavanya reads: a real voice's encoder and decoder are 71-78 MB, its
# generator 56 MB; four times the largest leaves room for larger published voices.
GRAPH_MAX_BYTES = 512 * MIB
# Opset versions ``lavanya export`` may have written (it writes 17).
OPSET_RANGE = (13, 21)
IR_VERSION_RANGE = (7, 11)
DIMENSION_MAX = 16384
RANK_MAX = 4
NODES_MAX = 100_000
NODE_INPUTS_MAX = 16
# Protobuf fields and numbers read from one file at most (the real-size voice's largest graph
# has about 5,000).
WALK_ITEMS_MAX = 1_000_000
# Bounds on convolutions' attributes, far above what the exports use (HiFi-GAN's largest kernel
# is 16, its largest stride 8, its largest dilation 5, its largest padding 25).
CONV_ATTRIBUTE_MAX = {"kernel_shape": 64, "strides": 16, "dilations": 16, "output_padding": 16, "pads": 1024,
                      "group": 4096}
CONV_OTHER_MAX = 1024
# The most memory the generator's tensors may hold at once for one vocoder window (the real
# 512-channel HiFi-GAN at 22,050 Hz: 54 MiB for 256 frames and their context).
GENERATOR_PEAK_MAX = 512 * MIB
_FIX = "export the voice again with lavanya export"

# Operators whose output is never larger than their inputs' (or weights') sizes allow: views,
# element-wise arithmetic, reductions, attention's pieces, convolutions. ``Range`` is checked
# on its own (see ``_range_problems``).
_ACOUSTIC = frozenset({
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Sqrt", "Exp", "Log", "Abs", "Erf", "Tanh", "Relu", "Sigmoid",
    "Softplus", "Softmax", "LogSoftmax", "LayerNormalization", "ReduceMean", "ReduceSum", "MatMul", "Gemm",
    "Conv", "Cast", "Concat", "Constant", "Gather", "Identity", "Reshape", "Shape", "Slice", "Squeeze",
    "Unsqueeze", "Transpose", "Where", "Equal", "Less", "Greater", "Not", "Clip", "Sin", "Cos", "Range",
    "Floor", "Ceil", "Round", "Min", "Max", "Dropout",
    # An int8 acoustic export (``speech.quantize``): activations quantized to the size they
    # had, integer products of the same shapes as the MatMul and Conv they replace.
    "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
})
_GENERATOR = frozenset({
    "Add", "Sub", "Mul", "Div", "Conv", "ConvTranspose", "LeakyRelu", "Tanh", "Constant", "Identity",
})
OPERATORS = {ENCODER_GRAPH_NAME: _ACOUSTIC, DECODER_GRAPH_NAME: _ACOUSTIC, GENERATOR_GRAPH_NAME: _GENERATOR}
# What each graph takes and gives: (name, element type, rank); 1 is float32, 7 int64.
SIGNATURES = {
    ENCODER_GRAPH_NAME: ([("token_ids", 7, 1)], [("hidden", 1, 2), ("log_durations", 1, 1)]),
    DECODER_GRAPH_NAME: ([("hidden", 1, 2)], [("mel", 1, 2)]),
    GENERATOR_GRAPH_NAME: ([("mel", 1, 3)], [("audio", 1, 3)]),
}
# Operators a ``Range`` limit may pass through on its way from ``Shape`` (by their first input).
_SHAPE_PATH = frozenset({"Gather", "Cast", "Squeeze", "Unsqueeze", "Identity", "Reshape"})


class GraphRefused(FileError):
    """A graph that is not one ``lavanya export`` writes (the reason names what differs)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(path, f"not a graph lavanya exports: {reason}", _FIX)


# -- the protobuf walk --------------------------------------------------------------------

class _Malformed(Exception):
    pass


class _Walk:
    """The fields of a protobuf buffer, read without copying it, within a budget of fields and
    numbers for the whole file (so no file, however shaped, costs more than a bounded amount of
    time and memory to summarise)."""

    def __init__(self, data: memoryview):
        self.data = data
        self.budget = WALK_ITEMS_MAX

    def _spend(self, items: int = 1) -> None:
        self.budget -= items
        if self.budget < 0:
            raise _Malformed(f"more than {WALK_ITEMS_MAX} fields")

    def varint(self, position: int, end: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            if position >= end or shift > 63:
                raise _Malformed("a truncated or overlong number")
            byte = self.data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, position
            shift += 7

    def fields(self, span: tuple[int, int], singular: frozenset[int] = frozenset()) -> Iterator[tuple[int, int, Any]]:
        """``(field number, wire type, value)`` of one message: an int for varints and fixed
        widths, ``(start, end)`` offsets for length-delimited fields. A field in ``singular``
        (a message protobuf would merge, not replace, when repeated) may appear once: a second
        copy could hide nodes from this walk that a runtime would still run."""
        position, end = span
        seen: set[int] = set()
        while position < end:
            self._spend()
            key, position = self.varint(position, end)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, position = self.varint(position, end)
            elif wire == 2:
                length, position = self.varint(position, end)
                if position + length > end:
                    raise _Malformed("a field runs past its message")
                value, position = (position, position + length), position + length
            elif wire in (1, 5):
                width = 8 if wire == 1 else 4
                if position + width > end:
                    raise _Malformed("a field runs past its message")
                value = int.from_bytes(self.data[position:position + width], "little")
                position += width
            else:
                raise _Malformed(f"wire type {wire}")
            if number in singular:
                if number in seen or wire != 2:
                    raise _Malformed(f"field {number} repeated or of the wrong type")
                seen.add(number)
            yield number, wire, value

    def text(self, wire: int, value: Any) -> str:
        if wire != 2:
            raise _Malformed("a name that is not a string")
        return bytes(self.data[value[0]:value[1]]).decode("utf-8", "replace")

    def message(self, wire: int, value: Any) -> tuple[int, int]:
        if wire != 2:
            raise _Malformed("a message that is not length-delimited")
        return value

    def ints(self, wire: int, value: Any, limit: int = 64, strict: bool = True) -> list[int]:
        """A repeated int64 field, packed or not (negative numbers as two's complement): at most
        ``limit`` numbers, beyond which it is _Malformed (``strict``) or cut short."""
        if wire == 0:
            numbers = [value]
        elif wire == 2:
            numbers, position = [], value[0]
            while position < value[1]:
                if len(numbers) >= limit:
                    if strict:
                        raise _Malformed(f"a list of more than {limit} numbers")
                    break
                number, position = self.varint(position, value[1])
                numbers.append(number)
        else:
            raise _Malformed(f"wire type {wire} for a list of numbers")
        self._spend(len(numbers))
        return [n - (1 << 64) if n >= 1 << 63 else n for n in numbers]


@dataclass
class Tensor:
    dims: list[int] = field(default_factory=list)
    data_type: int = 0
    name: str = ""
    external: bool = False
    raw: tuple[int, int] | None = None
    numbers: list[float] = field(default_factory=list)  # float_data, int32_data, int64_data, double_data


@dataclass
class Node:
    op_type: str = ""
    domain: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    ints: dict[str, list[int]] = field(default_factory=dict)  # int and ints attributes
    tensors: dict[str, Tensor] = field(default_factory=dict)
    floats: dict[str, float] = field(default_factory=dict)
    other: int = 0  # graph, tensor-list, sparse or type attributes (If, Loop, Scan bodies ...)


@dataclass
class ValueInfo:
    name: str
    elem_type: int
    dims: list[int | str | None]


@dataclass
class GraphSummary:
    """What the checks need of a model: opsets, nodes, initializers, inputs and outputs."""

    data: memoryview
    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    initializers: dict[str, Tensor] = field(default_factory=dict)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)  # functions, training info, sparse tensors: refused

    def scalar(self, name: str, producers: dict[str, Node]) -> float | None:
        """The value of a one-element constant (initializer or ``Constant`` node), else None."""
        tensor = self.initializers.get(name)
        if tensor is None and name in producers and producers[name].op_type == "Constant":
            constant = producers[name]
            if "value_int" in constant.ints:
                return float(constant.ints["value_int"][0])
            if "value_float" in constant.floats:
                return constant.floats["value_float"]
            tensor = constant.tensors.get("value")
        if tensor is None or math.prod(tensor.dims) != 1:
            return None
        if tensor.numbers:
            return float(tensor.numbers[0])
        formats = {1: "<f", 6: "<i", 7: "<q", 11: "<d"}
        if tensor.raw is None or tensor.data_type not in formats:
            return None
        raw = bytes(self.data[tensor.raw[0]:tensor.raw[1]])
        if len(raw) != struct.calcsize(formats[tensor.data_type]):
            return None
        return float(struct.unpack(formats[tensor.data_type], raw)[0])


# ONNX's field numbers (onnx.proto3), for the messages and fields read here.
_MODEL_GRAPH, _MODEL_OPSET, _MODEL_IR, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 8, 1, 20, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 15, 11, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP, _NODE_ATTRIBUTE, _NODE_DOMAIN = 1, 2, 4, 5, 7
_ATTRIBUTE_NAME, _ATTRIBUTE_F, _ATTRIBUTE_I, _ATTRIBUTE_T, _ATTRIBUTE_INTS = 1, 2, 3, 5, 8
_ATTRIBUTE_OTHER = frozenset({6, 10, 11, 14, 15, 22, 23})  # g, tensors, graphs, tp, type_protos, sparse
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_NAME, _TENSOR_RAW = 1, 2, 8, 9
_TENSOR_EXTERNAL, _TENSOR_LOCATION = 13, 14


def _tensor(walk: _Walk, span: tuple[int, int]) -> Tensor:
    tensor = Tensor()
    for number, wire, value in walk.fields(span):
        if number == _TENSOR_DIMS:
            tensor.dims += walk.ints(wire, value, RANK_MAX + 1)
            if len(tensor.dims) > RANK_MAX + 1:
                raise _Malformed("a tensor of too many dimensions")
        elif number == _TENSOR_TYPE:
            tensor.data_type = value
        elif number == _TENSOR_NAME:
            tensor.name = walk.text(wire, value)
        elif number == _TENSOR_RAW:
            tensor.raw = walk.message(wire, value)
        elif number in (_TENSOR_EXTERNAL, _TENSOR_LOCATION):
            tensor.external = tensor.external or number == _TENSOR_EXTERNAL or value == 1
        elif number in (5, 7) and not tensor.numbers:  # int32_data, int64_data: the first few
            tensor.numbers = walk.ints(wire, value, 4, strict=False)
        elif number in (4, 10) and not tensor.numbers:  # float_data, double_data: the first few
            width, code = (4, "f") if number == 4 else (8, "d")
            if wire == 2:
                start, stop = value
                count = min((stop - start) // width, 4)
                tensor.numbers = list(struct.unpack(f"<{count}{code}", bytes(walk.data[start:start + count * width])))
            elif wire == (5 if number == 4 else 1):
                tensor.numbers = [struct.unpack(f"<{code}", value.to_bytes(width, "little"))[0]]
    return tensor


def _attribute(walk: _Walk, span: tuple[int, int], node: Node) -> None:
    name, ints, tensor, real = "", [], None, None
    for number, wire, value in walk.fields(span, singular=frozenset({_ATTRIBUTE_T})):
        if number == _ATTRIBUTE_NAME:
            name = walk.text(wire, value)
        elif number in (_ATTRIBUTE_I, _ATTRIBUTE_INTS):
            ints += walk.ints(wire, value)
            if len(ints) > 64:
                raise _Malformed("an attribute of more than 64 numbers")
        elif number == _ATTRIBUTE_F and wire == 5:
            real = struct.unpack("<f", value.to_bytes(4, "little"))[0]
        elif number == _ATTRIBUTE_T:
            tensor = _tensor(walk, value)
        elif number in _ATTRIBUTE_OTHER:
            node.other += 1
    if ints:
        node.ints[name] = ints
    if tensor is not None:
        node.tensors[name] = tensor
    if real is not None:
        node.floats[name] = real


def _node(walk: _Walk, span: tuple[int, int]) -> Node:
    node = Node()
    for number, wire, value in walk.fields(span):
        if number == _NODE_INPUT:
            node.inputs.append(walk.text(wire, value))
        elif number == _NODE_OUTPUT:
            node.outputs.append(walk.text(wire, value))
        elif number == _NODE_OP:
            node.op_type = walk.text(wire, value)
        elif number == _NODE_DOMAIN:
            node.domain = walk.text(wire, value)
        elif number == _NODE_ATTRIBUTE:
            _attribute(walk, walk.message(wire, value), node)
        if len(node.inputs) > NODE_INPUTS_MAX or len(node.outputs) > NODE_INPUTS_MAX:
            raise _Malformed(f"a node with more than {NODE_INPUTS_MAX} inputs or outputs")
    return node


def _value_info(walk: _Walk, span: tuple[int, int]) -> ValueInfo:
    """A graph input or output: its name, and its element type and dimensions where it is a
    tensor (anything else keeps element type 0, which no signature accepts)."""
    name, elem_type, dims, other_kind = "", 0, [], False
    for number, wire, value in walk.fields(span, singular=frozenset({2})):
        if number == 1:
            name = walk.text(wire, value)
        elif number == 2:  # TypeProto: only tensor_type (1) is read; any other kind is refused
            for type_number, _type_wire, tensor_type in walk.fields(value, singular=frozenset({1, 4, 5, 8, 9})):
                if type_number != 1:
                    other_kind = True
                    continue
                for tensor_number, _tensor_wire, tensor_value in walk.fields(tensor_type, singular=frozenset({2})):
                    if tensor_number == 1:
                        elem_type = tensor_value
                    elif tensor_number == 2:  # shape
                        for _n, dim_wire, dim in walk.fields(tensor_value):
                            size: int | str | None = None
                            for dim_number, size_wire, dim_value in walk.fields(walk.message(dim_wire, dim)):
                                if dim_number == 1:
                                    size = dim_value
                                elif dim_number == 2:
                                    size = walk.text(size_wire, dim_value)
                            dims.append(size)
                            if len(dims) > RANK_MAX + 1:
                                raise _Malformed("an input or output of too many dimensions")
    return ValueInfo(name, 0 if other_kind else elem_type, dims)


def summarize(data: bytes | memoryview) -> GraphSummary:
    """The structure of an ONNX model (``ModelProto``); _Malformed where it does not parse.
    ``data`` is referred to (``GraphSummary.data``), not copied; on a failure the reference is
    released at once."""
    view = memoryview(data)
    try:
        return _summarize(_Walk(view))
    except _Malformed:
        view.release()
        raise
    except (TypeError, ValueError, OverflowError, IndexError, struct.error) as exc:  # fields of the wrong type
        view.release()
        raise _Malformed(f"{type(exc).__name__} while reading it") from None


def _summarize(walk: _Walk) -> GraphSummary:
    summary = GraphSummary(walk.data)
    graph = None
    for number, wire, value in walk.fields((0, len(walk.data)), singular=frozenset({_MODEL_GRAPH})):
        if number == _MODEL_IR:
            summary.ir_version = value
        elif number == _MODEL_OPSET:
            domain, version = "", 0
            for sub_number, sub_wire, sub_value in walk.fields(walk.message(wire, value)):
                if sub_number == 1:
                    domain = walk.text(sub_wire, sub_value)
                elif sub_number == 2:
                    version = sub_value
            summary.opsets[domain] = version
        elif number == _MODEL_GRAPH:
            graph = value
        elif number == _MODEL_TRAINING:
            summary.extras.append("training information")
        elif number == _MODEL_FUNCTIONS:
            summary.extras.append("local functions")
    if graph is None:
        raise _Malformed("no graph")
    for number, wire, value in walk.fields(graph):
        if number == _GRAPH_NODE:
            if len(summary.nodes) >= NODES_MAX:
                raise _Malformed(f"more than {NODES_MAX} nodes")
            summary.nodes.append(_node(walk, walk.message(wire, value)))
        elif number == _GRAPH_INITIALIZER:
            tensor = _tensor(walk, walk.message(wire, value))
            if tensor.name in summary.initializers:
                raise _Malformed(f"two initializers named {tensor.name!r}")
            summary.initializers[tensor.name] = tensor
        elif number == _GRAPH_SPARSE:
            summary.extras.append("sparse initializers")
        elif number == _GRAPH_INPUT:
            summary.inputs.append(_value_info(walk, walk.message(wire, value)))
        elif number == _GRAPH_OUTPUT:
            summary.outputs.append(_value_info(walk, walk.message(wire, value)))
        if len(summary.inputs) + len(summary.outputs) > NODES_MAX:
            raise _Malformed("too many inputs and outputs")
    return summary


# -- the checks ---------------------------------------------------------------------------

def graph_problems(summary: GraphSummary, name: str) -> list[str]:
    """Every way the graph ``summary`` differs from what ``lavanya export`` writes as ``name``
    (``acoustic_encoder.onnx``, ``acoustic_decoder.onnx`` or ``generator.onnx``)."""
    problems = [f"it holds {extra}" for extra in summary.extras]
    if not IR_VERSION_RANGE[0] <= summary.ir_version <= IR_VERSION_RANGE[1]:
        problems.append(f"ONNX IR version {summary.ir_version}")
    for domain, version in summary.opsets.items():
        if domain not in ("", "ai.onnx") or not OPSET_RANGE[0] <= version <= OPSET_RANGE[1]:
            problems.append(f"operator set {domain or 'ai.onnx'} {version}")
    allowed = OPERATORS[name]
    unknown = sorted({node.op_type for node in summary.nodes
                      if node.op_type not in allowed or node.domain not in ("", "ai.onnx")})
    if unknown:
        problems.append(f"operators {', '.join(unknown[:8])}")
    for node in summary.nodes:
        if node.other:
            problems.append(f"a {node.op_type} with a subgraph, tensor list or type attribute")
        if len(node.inputs) > NODE_INPUTS_MAX:
            problems.append(f"a {node.op_type} with {len(node.inputs)} inputs")
        if node.op_type in ("Conv", "ConvInteger", "ConvTranspose"):
            for key, values in node.ints.items():
                bound = CONV_ATTRIBUTE_MAX.get(key, CONV_OTHER_MAX)
                if any(not 0 <= value <= bound for value in values):
                    problems.append(f"a {node.op_type} with {key} beyond {bound}")
    tensors = [*summary.initializers.values(),
               *(tensor for node in summary.nodes for tensor in node.tensors.values())]
    for tensor in tensors:
        if tensor.external:
            problems.append("a tensor stored outside the file (external data)")
        if len(tensor.dims) > RANK_MAX or any(not 0 <= dim <= DIMENSION_MAX for dim in tensor.dims):
            problems.append(f"a tensor of shape {tensor.dims[:6]}")
    problems += _undefined_inputs(summary)
    problems += _constant_nodes(summary)
    problems += _range_problems(summary)
    problems += _signature_problems(summary, name)
    return list(dict.fromkeys(problems))


def _undefined_inputs(summary: GraphSummary) -> list[str]:
    """Every node's inputs must be the graph's inputs, its initializers or an earlier node's
    outputs (ONNX's own rule): what is checked is all that runs, in order."""
    known = {value.name for value in summary.inputs} | set(summary.initializers) | {""}
    for node in summary.nodes:
        missing = [source for source in node.inputs if source not in known]
        if missing:
            return [f"a {node.op_type} reading {missing[0][:40]!r}, which nothing before it makes"]
        known.update(node.outputs)
    return []


def _constant_nodes(summary: GraphSummary) -> list[str]:
    """A node that computes from constants alone (the exporter folds them; only ``Identity``
    aliases remain) would be computed by the runtime while it loads the graph, outside every
    bound on memory: refused."""
    constants = set(summary.initializers)
    for node in summary.nodes:
        inputs = [source for source in node.inputs if source]
        if node.op_type == "Constant" or (node.op_type == "Identity" and inputs and inputs[0] in constants):
            constants.update(node.outputs)
        elif inputs and all(source in constants for source in inputs):
            return [f"a {node.op_type} computed from constants alone"]
    return []


def _range_problems(summary: GraphSummary) -> list[str]:
    """``Range`` may only count 0, 1, 2... up to a length read from a tensor's shape."""
    producers = {output: node for node in summary.nodes for output in node.outputs}
    from_shape: dict[str, bool] = {}
    problems = []
    for node in summary.nodes:
        if node.op_type != "Range" or len(node.inputs) != 3:
            continue
        start, limit, delta = node.inputs
        if summary.scalar(start, producers) != 0 or summary.scalar(delta, producers) != 1 \
                or not _from_shape(limit, producers, from_shape):
            problems.append("a Range that is not over a length of the input")
    return problems


def _from_shape(name: str, producers: dict[str, Node], known: dict[str, bool], depth: int = 0) -> bool:
    """Whether ``name`` is a dimension read from a tensor's shape: ``Shape``, then only
    operators that pick, cast or reshape what they are given (their first input), no arithmetic
    and no constant in its place. Remembered by name, so any graph costs one visit per node."""
    if name not in known:
        node = producers.get(name)
        if node is None or depth > 16:
            known[name] = False
        elif node.op_type == "Shape":
            known[name] = True
        else:
            known[name] = (node.op_type in _SHAPE_PATH and bool(node.inputs)
                           and _from_shape(node.inputs[0], producers, known, depth + 1))
    return known[name]


def _signature_problems(summary: GraphSummary, name: str) -> list[str]:
    inputs, outputs = SIGNATURES[name]
    initializer_names = set(summary.initializers)
    found_inputs = [(v.name, v.elem_type, len(v.dims)) for v in summary.inputs if v.name not in initializer_names]
    found_outputs = [(v.name, v.elem_type, len(v.dims)) for v in summary.outputs]
    problems = []
    if found_inputs != inputs:
        problems.append(f"inputs {_shown(found_inputs)} instead of {_shown(inputs)}")
    if found_outputs != outputs:
        problems.append(f"outputs {_shown(found_outputs)} instead of {_shown(outputs)}")
    return problems


def _shown(signature: list[tuple[str, int, int]]) -> str:
    return ", ".join(f"{name} (rank {rank})" for name, _type, rank in signature[:4]) or "none"


def generator_peak_bytes(summary: GraphSummary, mel_frames: int) -> int:
    """The most bytes the generator's tensors hold at once for an input of ``mel_frames``
    frames: every tensor's shape worked out from its producer (the generator's operators keep
    tensors at ``[1, channels, length]``), live from its producer to its last consumer, in the
    graph's own (topological) order. Raises _Malformed where a shape cannot be worked out."""
    shapes: dict[str, list[int]] = {name: list(t.dims) for name, t in summary.initializers.items()}
    graph_input = summary.inputs[0]
    channels = graph_input.dims[1] if len(graph_input.dims) == 3 and isinstance(graph_input.dims[1], int) else None
    if channels is None:
        raise _Malformed("the generator's input has no fixed channel count")
    shapes[graph_input.name] = [1, channels, mel_frames]
    last_use = {}
    for index, node in enumerate(summary.nodes):
        for source in node.inputs:
            last_use[source] = index
    live: dict[str, int] = {}
    held = peak = 0
    for index, node in enumerate(summary.nodes):
        output_shape = _output_shape(node, shapes)
        for output in node.outputs:
            shapes[output] = output_shape
            held += math.prod(output_shape) * 4 - live.get(output, 0)
            live[output] = math.prod(output_shape) * 4
        peak = max(peak, held)
        for source in node.inputs:
            if last_use.get(source) == index:
                held -= live.pop(source, 0)
    return peak


def _output_shape(node: Node, shapes: dict[str, list[int]]) -> list[int]:
    if node.op_type == "Constant":
        tensor = node.tensors.get("value")
        if tensor is None:  # value_floats and the like: of a size this walk does not read
            raise _Malformed("a Constant without a tensor value")
        return list(tensor.dims)
    known = [shapes.get(source) for source in node.inputs if source]
    if any(shape is None for shape in known) or not known:
        raise _Malformed(f"a {node.op_type} whose input shapes are unknown")
    if node.op_type in ("Conv", "ConvTranspose"):
        data, weight = known[0], known[1]
        if len(data) != 3 or len(weight) != 3:
            raise _Malformed(f"a {node.op_type} that is not one-dimensional")
        kernel = node.ints.get("kernel_shape", [weight[2]])[0]
        stride = node.ints.get("strides", [1])[0]
        dilation = node.ints.get("dilations", [1])[0]
        pads = node.ints.get("pads", [0, 0])
        if stride < 1 or dilation < 1 or kernel < 1:
            raise _Malformed(f"a {node.op_type} with a zero kernel, stride or dilation")
        if node.op_type == "Conv":
            length = (data[2] + sum(pads[:2]) - dilation * (kernel - 1) - 1) // stride + 1
            return [data[0], weight[0], max(length, 0)]
        extra = node.ints.get("output_padding", [0])[0]
        length = (data[2] - 1) * stride - sum(pads[:2]) + dilation * (kernel - 1) + extra + 1
        return [data[0], weight[1] * node.ints.get("group", [1])[0], max(length, 0)]
    ranks = max(len(shape) for shape in known)
    padded = [[1] * (ranks - len(shape)) + list(shape) for shape in known]
    return [max(column) for column in zip(*padded)]


# -- reading ------------------------------------------------------------------------------

class Graph:
    """A checked graph, open: what a runtime loads (``source``) is the file that was checked,
    through the descriptor it was checked on. ``path`` only names it in messages. Use it in a
    ``with`` block, or ``close`` it."""

    def __init__(self, path: Path, handle: BinaryIO, summary: GraphSummary, signature: tuple[int, int, int]):
        self.path = path
        self.summary = summary
        self._handle = handle
        self._signature = signature

    def source(self) -> str | bytes:
        """For a runtime to load: ``/proc/self/fd/N``, the open file itself, which the runtime
        reads (and maps) without a copy in Python's memory (bytes held there raised the load's
        peak; docs/engines.md); its bytes where there is no such path."""
        descriptor = f"/proc/self/fd/{self._handle.fileno()}"
        if os.path.exists(descriptor):
            return descriptor
        return os.pread(self._handle.fileno(), self._signature[0], 0)

    def stat_signature(self) -> list[int]:
        """The open file's device, inode, size, modification and change times (``DigestMemo``'s
        signature)."""
        return stat_signature(os.fstat(self._handle.fileno()))

    def unchanged(self) -> None:
        """Refuse the graph when its file changed after it was opened to be checked (a write in
        place moves its size or its change time, which no user can set)."""
        if _signature(self._handle) != self._signature:
            raise LavanyaError(f"{self.path}: changed while it was checked or loaded; load it again")

    def copy_to(self, destination: BinaryIO) -> None:
        """Write the checked file's bytes to ``destination`` (a deploy root's copy)."""
        os.lseek(self._handle.fileno(), 0, os.SEEK_SET)
        remaining = self._signature[0]
        while remaining > 0:
            chunk = self._handle.read(min(MIB, remaining))
            if not chunk:
                break
            destination.write(chunk)
            remaining -= len(chunk)
        self.unchanged()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "Graph":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _signature(handle: BinaryIO) -> tuple[int, int, int]:
    info = os.fstat(handle.fileno())
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


def read_graph(path: Path, expected: dict[str, Any] | None = None,
               hashed: tuple[list[int], str] | None = None) -> Graph:
    """The graph at ``path`` (named as ``lavanya export`` names it), opened as a bounded regular
    file and checked (see the module doc); its bytes are read to be hashed and walked, then let
    go before a runtime loads the same open file. ``expected``: its export manifest entry
    (``size``, ``sha256``), which the file must match. ``hashed``: the stat signature (device,
    inode, size, modification and change times) and SHA-256 a digest memo recorded for it: an
    open file with that very signature is not hashed again (the memo's rule: see
    ``export_store``). Raises GraphRefused or another LavanyaError naming the file and the fix."""
    path = Path(path)
    handle = open_regular(path, "ONNX graph")
    try:
        signature = _signature(handle)
        if signature[0] > GRAPH_MAX_BYTES:
            raise FileError(path, f"ONNX graph is larger than {format_size(GRAPH_MAX_BYTES)}, far beyond any voice's",
                            _FIX)
        data = handle.read(GRAPH_MAX_BYTES + 1)
        if len(data) != signature[0]:
            raise LavanyaError(f"{path}: changed while it was checked; load it again")
        if expected is not None and (len(data) != expected.get("size")
                                     or _digest(handle, data, hashed) != expected.get("sha256")):
            raise FileError(path, "differs from the graph its export manifest lists (another graph, or damaged)", _FIX)
        summary = check_graph(data, path)
        del data
        return Graph(path, handle, summary, signature)
    except BaseException:
        handle.close()
        raise


def _digest(handle: BinaryIO, data: bytes, hashed: tuple[list[int], str] | None) -> str:
    """The SHA-256 of ``data``, the open file's bytes: the memo's where the file's signature is
    the one it was hashed with."""
    if hashed is not None and hashed[0] == stat_signature(os.fstat(handle.fileno())):
        return hashed[1]
    return hashlib.sha256(data).hexdigest()


def check_graph(data: bytes | memoryview, path: Path) -> GraphSummary:
    """``data`` walked and checked as the graph ``path.name``; GraphRefused for anything else.
    The summary keeps no reference to ``data``."""
    if path.name not in OPERATORS:
        raise LavanyaError(f"{path}: lavanya reads only {', '.join(OPERATORS)} as graphs")
    if not data:
        raise GraphRefused(path, "it is empty")
    try:
        summary = summarize(data)
        try:
            problems = graph_problems(summary, path.name)
        finally:
            summary.data.release()  # the walk is done: nothing keeps the graph's bytes
    except _Malformed as exc:
        raise GraphRefused(path, f"it does not parse as ONNX ({exc})") from None
    if problems:
        raise GraphRefused(path, "; ".join(problems[:3]))
    return summary


def check_generator_memory(summary: GraphSummary, mel_frames: int, path: Path) -> int:
    """The generator's peak bytes for ``mel_frames`` (see ``generator_peak_bytes``), refused
    above ``GENERATOR_PEAK_MAX``."""
    try:
        peak = generator_peak_bytes(summary, mel_frames)
    except _Malformed as exc:
        raise GraphRefused(path, str(exc)) from None
    if peak > GENERATOR_PEAK_MAX:
        raise GraphRefused(path, f"its tensors would hold {format_size(peak)} at once for {mel_frames} frames "
                                 f"(at most {format_size(GENERATOR_PEAK_MAX)})")
    return peak


__all__ = ["GRAPH_MAX_BYTES", "Graph", "GraphRefused", "GraphSummary", "OPERATORS", "check_generator_memory",
           "check_graph", "generator_peak_bytes", "graph_problems", "read_graph", "summarize"]

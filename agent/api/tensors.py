"""KServe v2 tensors: JSON `data`, Triton's binary tensor extension (what `tritonclient.http` sends by default)
and BYTES elements (4-byte little-endian length, then the bytes). Every malformed part is an ApiError(400)
naming the field."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtimes.processing import Array

from ..errors import ApiError

DTYPES: dict[str, str] = {"BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
                          "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
                          "FP16": "float16", "FP32": "float32", "FP64": "float64"}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}
HEADER = "inference-header-content-length"

# A tensor in or out: numbers as an array, BYTES as a list of byte strings.
Value = Array | list[bytes]


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    value: Value


def datatype(dtype: Any) -> str:
    return NAMES.get(np.dtype(dtype), "FP32")


def bad(where: str, message: str) -> ApiError:
    return ApiError(400, f"{where}: {message}")


def read_request(body: bytes, header_length: str | None) -> tuple[dict[str, Any], list[Tensor]]:
    """An HTTP infer request: its JSON and its input tensors (binary parts sliced in input order)."""
    head, rest = _split(body, header_length)
    try:
        doc = json.loads(head)
    except ValueError as exc:
        raise bad("body", f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise bad("inputs", "the request needs a non-empty list of inputs")
    tensors, offset = [], 0
    for i, item in enumerate(doc["inputs"]):
        tensor, used = _input(item, f"inputs[{i}]", rest, offset)
        tensors.append(tensor)
        offset += used
    if offset != len(rest):
        raise bad("body", f"{len(rest) - offset} bytes of binary data beyond what the inputs declare")
    return doc, tensors


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise bad("Inference-Header-Content-Length", f"{header_length!r} is not a length within the body "
                  f"({len(body)} bytes)")
    return body[: int(header_length)], body[int(header_length) :]


def _input(item: Any, where: str, rest: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(item, dict):
        raise bad(where, "not an object")
    name, dtype, shape = item.get("name"), item.get("datatype"), item.get("shape")
    if not isinstance(name, str):
        raise bad(f"{where}.name", "missing or not a string")
    if dtype != "BYTES" and dtype not in DTYPES:
        raise bad(f"{where}.datatype", f"{dtype!r} is not a KServe v2 datatype ({', '.join([*DTYPES, 'BYTES'])})")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise bad(f"{where}.shape", f"{shape!r} is not a list of non-negative integers")
    size = (item.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(rest):
            raise bad(f"{where}.parameters.binary_data_size", f"{size!r} goes beyond the body's binary data "
                      f"({len(rest) - offset} bytes left): truncated?")
        return Tensor(name, dtype, shape, from_bytes(rest[offset : offset + size], dtype, shape, where)), size
    if "data" not in item:
        raise bad(f"{where}.data", "missing (and no parameters.binary_data_size)")
    return Tensor(name, dtype, shape, from_json(item["data"], dtype, shape, where)), 0


def from_bytes(raw: bytes, dtype: str, shape: list[int], where: str) -> Value:
    count = int(np.prod(shape)) if shape else 1
    if dtype == "BYTES":
        items = bytes_elements(raw, where)
        if len(items) != count:
            raise bad(where, f"{len(items)} BYTES elements where shape {shape} holds {count}")
        return items
    want = count * np.dtype(DTYPES[dtype]).itemsize
    if len(raw) != want:
        raise bad(where, f"{len(raw)} bytes of {dtype} where shape {shape} needs {want}")
    array: Array = np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape)
    return array


def from_json(data: Any, dtype: str, shape: list[int], where: str) -> Value:
    flat = _flatten(data)
    count = int(np.prod(shape)) if shape else 1
    if len(flat) != count:
        raise bad(f"{where}.data", f"{len(flat)} elements where shape {shape} holds {count}")
    if dtype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise bad(f"{where}.data", "BYTES elements must be strings")
        return [v.encode() for v in flat]
    try:
        array: Array = np.asarray(flat, dtype=DTYPES[dtype]).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise bad(f"{where}.data", f"not {dtype} numbers ({exc})") from None
    return array


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item))
    return out


def bytes_elements(raw: bytes, where: str) -> list[bytes]:
    items, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise bad(where, "a BYTES element's 4-byte length is cut off")
        (length,) = struct.unpack_from("<I", raw, pos)
        if pos + 4 + length > len(raw):
            raise bad(where, f"a BYTES element of {length} bytes is cut off")
        items.append(raw[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return items


def to_bytes(value: Value) -> bytes:
    if isinstance(value, list):
        return b"".join(struct.pack("<I", len(v)) + v for v in value)
    return np.ascontiguousarray(value).tobytes()


def shape_of(value: Value) -> list[int]:
    return [len(value)] if isinstance(value, list) else list(value.shape)


def type_of(value: Value) -> str:
    return "BYTES" if isinstance(value, list) else datatype(value.dtype)


def write_response(head: dict[str, Any], outputs: dict[str, Value],
                   binary: dict[str, bool]) -> tuple[bytes, int | None]:
    """The response body, and the JSON part's length when any output is binary (Inference-Header-Content-Length)."""
    items, blobs = [], []
    for name, value in outputs.items():
        item: dict[str, Any] = {"name": name, "datatype": type_of(value), "shape": shape_of(value)}
        if binary.get(name):
            blob = to_bytes(value)
            item["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            item["data"] = [v.decode(errors="replace") for v in value] if isinstance(value, list) \
                else value.reshape(-1).tolist()
        items.append(item)
    text = json.dumps({**head, "outputs": items}).encode()
    return (text + b"".join(blobs), len(text)) if blobs else (text, None)

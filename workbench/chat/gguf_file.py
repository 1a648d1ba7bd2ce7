"""Read a GGUF file's header in pure Python: is it a GGUF, is it whole, what is in it.

Nothing here runs native code, so a broken or hostile file can only raise :class:`GGUFFileError`
(with a one-line message saying what is wrong and what to do), never crash the process. The
chat engine reads this before handing the file to llama.cpp, and the Chat screen can show it
(architecture, quantization, size, context length) before loading anything.

Format: ``GGUF`` magic, version, tensor and key/value counts, the key/value pairs (metadata),
the tensor descriptions, then the aligned tensor data. See llama.cpp's ``docs/gguf.md``.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.chat.errors import ChatError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
MAX_COUNT = 1 << 24
"""More tensors or metadata keys than this is a corrupt header, not a model."""
MAX_KEPT_ARRAY = 64
"""Arrays up to this length are kept in `metadata`; longer ones (the vocabulary) are skipped."""

# GGUF metadata value types.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(8, 13)
_SCALARS: dict[int, str] = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}

#: llama.cpp's `general.file_type` (LLAMA_FTYPE_MOSTLY_*) as the names users know.
FILE_TYPES: dict[int, str] = {
    0: "f32",
    1: "f16",
    2: "q4_0",
    3: "q4_1",
    7: "q8_0",
    8: "q5_0",
    9: "q5_1",
    10: "q2_k",
    11: "q3_k_s",
    12: "q3_k_m",
    13: "q3_k_l",
    14: "q4_k_s",
    15: "q4_k_m",
    16: "q5_k_s",
    17: "q5_k_m",
    18: "q6_k",
    30: "iq4_xs",
    32: "bf16",
}


class GGUFFileError(ChatError):
    """The file cannot be used as a GGUF model; the message says why and what to do."""


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF header says, plus the sizes the memory check needs."""

    path: Path
    file_bytes: int
    version: int
    tensor_count: int
    weights_bytes: int
    """Bytes of tensor data (what llama.cpp maps into memory)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Scalar and string values, and arrays of at most `MAX_KEPT_ARRAY` items."""

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def name(self) -> str:
        """The model's own name, else the file's."""
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def quantization(self) -> str:
        """`q4_k_m`, `f16`, ...; empty when the file does not say."""
        file_type = self.metadata.get("general.file_type")
        if not isinstance(file_type, int):
            return ""
        return FILE_TYPES.get(file_type, f"type {file_type}")

    @property
    def chat_template(self) -> str:
        """The Jinja2 chat template the file carries (untrusted input), or ''."""
        return str(self.metadata.get("tokenizer.chat_template") or "")

    def arch_value(self, key: str, default: Any = None) -> Any:
        """`<architecture>.<key>`, e.g. `context_length`."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def context_length(self) -> int:
        """The context the model was trained for (0 when unknown)."""
        return _as_int(self.arch_value("context_length"))

    @property
    def block_count(self) -> int:
        return _as_int(self.arch_value("block_count"))

    def kv_cache_bytes(self, n_ctx: int) -> int:
        """Bytes of an f16 key/value cache holding `n_ctx` tokens (an estimate)."""
        heads = _as_int(self.arch_value("attention.head_count"))
        kv_heads = _as_int(self.arch_value("attention.head_count_kv")) or heads
        embedding = _as_int(self.arch_value("embedding_length"))
        head_dim = embedding // heads if heads else 0
        key = _as_int(self.arch_value("attention.key_length")) or head_dim
        value = _as_int(self.arch_value("attention.value_length")) or head_dim
        return n_ctx * self.block_count * kv_heads * (key + value) * 2


def _as_int(value: Any) -> int:
    """An int from a metadata value; per-layer arrays count by their largest entry."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, list) and value and all(isinstance(item, int) for item in value):
        return max(value)
    return 0


def read_gguf_info(path: Path) -> GGUFInfo:
    """Parse the header of the GGUF file at `path` and check that its tensor data is all there.

    Raises:
        GGUFFileError: missing or unreadable file, not a GGUF, an unsupported version, a
            corrupt header, or a file shorter than its tensors (a truncated download or copy).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise GGUFFileError(f"{path}: no such file; pick a .gguf file or an export")
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            if size < 24:
                return _too_small(path, size)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _Parser(path, data, size).parse()
    except OSError as exc:
        raise GGUFFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _too_small(path: Path, size: int) -> GGUFInfo:
    """A file too short to hold even the fixed header."""
    with open(path, "rb") as handle:
        start = handle.read(4)
    if size >= 4 and start == MAGIC:
        raise GGUFFileError(_truncated(path, size))
    raise GGUFFileError(_not_gguf(path))


def _not_gguf(path: Path) -> str:
    return (
        f"{path.name} is not a GGUF model file (it does not start with 'GGUF'); "
        "export one with `workbench export` or convert a model to GGUF first"
    )


def _truncated(path: Path, size: int, expected: int | None = None) -> str:
    wanted = f" of {expected:,} bytes" if expected else ""
    return (
        f"{path.name} is truncated: {size:,} bytes{wanted}; the download or copy did not "
        "finish, so fetch or export the file again"
    )


class _Parser:
    """Walks a memory-mapped GGUF header; every read is bounds-checked."""

    def __init__(self, path: Path, data: mmap.mmap, size: int) -> None:
        self.path, self.data, self.size, self.pos = path, data, size, 0

    def parse(self) -> GGUFInfo:
        if self.data[:4] != MAGIC:
            raise GGUFFileError(_not_gguf(self.path))
        self.pos = 4
        version = self._scalar(_UINT32)
        if version not in SUPPORTED_VERSIONS:
            raise GGUFFileError(
                f"{self.path.name}: GGUF version {version} is not supported (this llama.cpp "
                f"reads versions {', '.join(map(str, SUPPORTED_VERSIONS))}); re-export the model"
            )
        tensor_count, kv_count = self._count(), self._count()
        metadata = {self._string(): self._value() for _ in range(kv_count)}
        tensors_end = self._tensors_end(tensor_count, metadata)
        if tensors_end > self.size:
            raise GGUFFileError(_truncated(self.path, self.size, tensors_end))
        weights = tensors_end - self._data_start(metadata) if tensor_count else 0
        return GGUFInfo(self.path, self.size, version, tensor_count, weights, metadata)

    # --- primitives ------------------------------------------------------------------------

    def _take(self, count: int) -> int:
        """Advance by `count` bytes; return where they start."""
        start = self.pos
        if count < 0 or start + count > self.size:
            raise GGUFFileError(_truncated(self.path, self.size))
        self.pos += count
        return start

    def _scalar(self, kind: int) -> Any:
        fmt = _SCALARS[kind]
        start = self._take(struct.calcsize(fmt))
        return struct.unpack_from(fmt, self.data, start)[0]

    def _count(self) -> int:
        count = int(self._scalar(_UINT64))
        if count > MAX_COUNT:
            raise GGUFFileError(
                f"{self.path.name} has a corrupt GGUF header (a count of {count:,}); "
                "the file is damaged: export or download it again"
            )
        return count

    def _string(self) -> str:
        length = int(self._scalar(_UINT64))
        start = self._take(length)
        return bytes(self.data[start : start + length]).decode("utf-8", "replace")

    def _value(self, kind: int | None = None) -> Any:
        kind = self._scalar(_UINT32) if kind is None else kind
        if kind in _SCALARS:
            return self._scalar(kind)
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            return self._array()
        raise GGUFFileError(
            f"{self.path.name} has a corrupt GGUF header (unknown value type {kind}); "
            "the file is damaged or from a newer llama.cpp"
        )

    def _array(self) -> Any:
        kind, count = self._scalar(_UINT32), self._count()
        if count > MAX_KEPT_ARRAY:
            self._skip_array(kind, count)
            return {"array_of": count}
        return [self._value(kind) for _ in range(count)]

    def _skip_array(self, kind: int, count: int) -> None:
        if kind in _SCALARS:
            self._take(struct.calcsize(_SCALARS[kind]) * count)
        elif kind == _STRING:
            for _ in range(count):
                self._take(int(self._scalar(_UINT64)))
        else:
            for _ in range(count):
                self._value(kind)

    # --- tensors ---------------------------------------------------------------------------

    def _tensors_end(self, tensor_count: int, metadata: Mapping[str, Any]) -> int:
        """The file offset where the last tensor's data ends."""
        sizes = _quant_sizes()
        infos = [self._tensor_info(sizes) for _ in range(tensor_count)]
        data_start = self._data_start(metadata)
        return max((data_start + offset + nbytes for offset, nbytes in infos), default=self.pos)

    def _tensor_info(self, sizes: Mapping[int, tuple[int, int]]) -> tuple[int, int]:
        name = self._string()
        n_dims = self._scalar(_UINT32)
        if n_dims > MAX_DIMS:
            raise GGUFFileError(f"{self.path.name}: tensor {name!r} has {n_dims} dimensions")
        elements = 1
        for _ in range(n_dims):
            elements *= int(self._scalar(_UINT64))
        ggml_type, offset = self._scalar(_UINT32), int(self._scalar(_UINT64))
        if ggml_type not in sizes:
            raise GGUFFileError(
                f"{self.path.name}: tensor {name!r} has a type ({ggml_type}) this llama.cpp "
                "does not know; the file is damaged or needs a newer llama-cpp-python"
            )
        block, type_size = sizes[ggml_type]
        return offset, elements // block * type_size

    def _data_start(self, metadata: Mapping[str, Any]) -> int:
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0:
            alignment = DEFAULT_ALIGNMENT
        return -(-self.pos // alignment) * alignment


def _quant_sizes() -> dict[int, tuple[int, int]]:
    """(block size, bytes per block) for each ggml tensor type, from the `gguf` package."""
    from gguf.constants import GGML_QUANT_SIZES

    return {int(kind): sizes for kind, sizes in GGML_QUANT_SIZES.items()}

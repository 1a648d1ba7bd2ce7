"""A file handed to the chat engine is checked in pure Python first: a non-GGUF, a truncated
download or a model far bigger than free memory each get a clear message, and llama.cpp never
sees the file."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from workbench.chat.engine import ChatModel, ChatSettings, ModelLoadError, check_fits_in_memory
from workbench.chat.errors import ChatError
from workbench.chat.gguf_file import GGUFFileError, read_gguf_info

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def write_gguf(path: Path, rows: int = 64, huge_bytes: int = 0) -> Path:
    """A small llama-shaped GGUF with real tensors, or one whose single tensor is `huge_bytes`
    long (written as a sparse file: no disk is used)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny test model")
    writer.add_context_length(2048)
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(1)
    writer.add_chat_template(TEMPLATE)
    writer.add_token_list([f"t{i}".encode() for i in range(100)])  # an array longer than 64
    if huge_bytes:
        elements = huge_bytes // 4
        writer.add_tensor_info("huge.weight", (elements,), np.dtype(np.float32), elements * 4)
    else:
        writer.add_tensor("a.weight", np.ones((rows, 64), dtype=np.float16))
        writer.add_tensor("b.weight", np.ones((64,), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    if huge_bytes:
        writer.write_ti_data_to_file()
        writer.close()
        data_start = -(-path.stat().st_size // 32) * 32
        os.truncate(path, data_start + huge_bytes)
    else:
        writer.write_tensors_to_file()
        writer.close()
    return path


def test_header_is_read_without_native_code(tmp_path: Path) -> None:
    info = read_gguf_info(write_gguf(tmp_path / "tiny.gguf"))
    assert (info.architecture, info.name, info.quantization) == ("llama", "tiny test model", "f16")
    assert info.context_length == 2048 and info.block_count == 2 and info.tensor_count == 2
    assert info.chat_template == TEMPLATE
    assert info.weights_bytes >= 64 * 64 * 2 + 64 * 4
    assert info.metadata["tokenizer.ggml.tokens"] == {"array_of": 100}
    # 2 layers x 2 kv heads x (16 + 16) dims x 2 bytes per token
    assert info.kv_cache_bytes(1000) == 1000 * 2 * 2 * 32 * 2


def test_a_file_that_is_not_a_gguf_is_named_as_such(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not weights\n" * 10)
    with pytest.raises(GGUFFileError, match=r"notes\.txt is not a GGUF model file"):
        read_gguf_info(notes)
    with pytest.raises(ChatError, match="no such file"):
        ChatModel.load(tmp_path / "missing.gguf")


@pytest.mark.parametrize("keep", [0.5, 0.9, 20])
def test_a_truncated_gguf_says_to_fetch_it_again(tmp_path: Path, keep: float) -> None:
    path = write_gguf(tmp_path / "model.gguf", rows=512)
    size = path.stat().st_size
    os.truncate(path, int(size * keep) if keep < 1 else int(keep))
    with pytest.raises(GGUFFileError) as excinfo:
        ChatModel.load(path)
    message = str(excinfo.value)
    assert "model.gguf is truncated" in message and "again" in message


def test_a_corrupt_header_is_reported_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 1) + b"\0" * 64)
    with pytest.raises(GGUFFileError, match="corrupt GGUF header"):
        read_gguf_info(path)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 99, 0, 0))
    with pytest.raises(GGUFFileError, match="version 99 is not supported"):
        read_gguf_info(path)


def test_a_model_bigger_than_free_memory_is_refused_before_loading(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "giant.gguf", huge_bytes=4 * 2**40)  # 4 TiB, sparse
    info = read_gguf_info(path)
    assert info.weights_bytes == 4 * 2**40
    with pytest.raises(ModelLoadError) as excinfo:
        ChatModel.load(path, ChatSettings(n_gpu_layers=0))
    message = str(excinfo.value)
    assert "giant.gguf needs about 45" in message and "GiB of memory" in message
    assert "smaller quantization" in message
    # The same check with GPU offload compares against the GPU's free memory.
    with pytest.raises(ModelLoadError, match=r"GPU memory.*fewer layers"):
        check_fits_in_memory(info, 4096, gpu_layers=10, gpu_free=8 * 2**30)
    check_fits_in_memory(read_gguf_info(write_gguf(tmp_path / "small.gguf")), 4096, 0)

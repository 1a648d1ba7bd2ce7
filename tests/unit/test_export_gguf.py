"""GGUF conversion and quantization as the export job runs them: child processes that report
progress, can be stopped at once, and never leave a partial file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from filelock import FileLock

from workbench.chat.gguf_file import read_gguf_info
from workbench.export.convert import convert_to_gguf, iter_convert
from workbench.export.process import Cancelled
from workbench.export.quantize import QuantizeError, iter_quantize, quantize_gguf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def f16(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model as an f16 GGUF named demo-run, converted once for all xdist workers."""
    base = tmp_path_factory.getbasetemp()
    target = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "demo-run.gguf"
    with FileLock(f"{target}.lock"):
        if not target.is_file():
            convert_to_gguf(demo_model_dir, target, model_name="demo-run")
    return target


def test_the_f16_gguf_is_named_and_readable_by_others(f16: Path) -> None:
    info = read_gguf_info(f16)
    assert info.name == "demo-run" and info.quantization == "f16"
    assert f16.stat().st_mode & stat.S_IROTH, "a GGUF is meant to be copied and shared"


@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"])
def test_quantizing_reports_progress_and_shrinks_the_file(
    f16: Path, tmp_path: Path, quant: str
) -> None:
    target = tmp_path / f"demo-{quant}.gguf"
    progress = list(iter_quantize(f16, target, quant))
    assert progress and progress[-1][0] == progress[-1][1] == read_gguf_info(f16).tensor_count
    info = read_gguf_info(target)
    assert info.quantization == quant
    assert target.stat().st_size < 0.6 * f16.stat().st_size
    assert [path.name for path in tmp_path.iterdir()] == [target.name]


def test_bad_quantization_requests_fail_with_one_line(f16: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="unknown quantization 'q9'"):
        quantize_gguf(f16, tmp_path / "x.gguf", "q9")
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(QuantizeError, match=r"quantizing notes\.gguf to q8_0 failed"):
        quantize_gguf(not_gguf, tmp_path / "y.gguf", "q8_0")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.gguf"]


def test_a_stop_request_ends_the_converter_and_leaves_nothing(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    cancel = threading.Event()
    lines = iter_convert(demo_model_dir, tmp_path / "out.gguf", "f16", cancel)
    with pytest.raises(Cancelled):
        for _ in lines:
            cancel.set()  # at the converter's first line of output
    assert list(tmp_path.iterdir()) == []


def test_a_stop_request_ends_the_quantizer_and_leaves_nothing(f16: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        quantize_gguf(f16, tmp_path / "q.gguf", "q4_k_m", cancel)
    assert list(tmp_path.iterdir()) == []

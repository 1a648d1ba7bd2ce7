"""Which accelerator this machine has, and how busy its GPU is: nvidia-smi, without torch."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

_QUERY = "--query-gpu=name,memory.free,memory.total,utilization.gpu"
_UTIL_QUERY = "--query-gpu=utilization.gpu"
UTIL_EVERY_S = 2.0


@dataclass(frozen=True)
class Gpu:
    """One CUDA device as nvidia-smi reports it."""

    name: str
    free_mib: int
    total_mib: int
    utilization: int | None


@dataclass(frozen=True)
class Accelerator:
    """The machine's GPUs; none means CPU only."""

    gpus: tuple[Gpu, ...] = ()
    note: str = ""

    @property
    def is_cuda(self) -> bool:
        return bool(self.gpus)

    @property
    def label(self) -> str:
        """Short text for the header: `CPU` or `NVIDIA H100 · 70.2/79.6 GiB free`."""
        if not self.gpus:
            return "CPU"
        first = self.gpus[0]
        count = f"{len(self.gpus)}x " if len(self.gpus) > 1 else ""
        free = sum(gpu.free_mib for gpu in self.gpus) / 1024
        total = sum(gpu.total_mib for gpu in self.gpus) / 1024
        return f"{count}{first.name} · {free:.1f}/{total:.1f} GiB free"


def parse_nvidia_smi(output: str) -> tuple[Gpu, ...]:
    """GPUs from `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` output."""
    gpus = []
    for line in output.strip().splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 3:
            continue
        try:
            free, total = int(float(parts[1])), int(float(parts[2]))
        except ValueError:
            continue
        utilization = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else None
        gpus.append(Gpu(parts[0], free, total, utilization))
    return tuple(gpus)


def detect_accelerator(timeout: float = 3.0) -> Accelerator:
    """Ask nvidia-smi; no driver, an error or a timeout all mean CPU (with a note why)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Accelerator(note="nvidia-smi not found")
    try:
        result = subprocess.run(
            [smi, _QUERY, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Accelerator(note=f"nvidia-smi failed: {exc}")
    if result.returncode != 0:
        return Accelerator(note=(result.stderr or result.stdout).strip()[:200])
    return Accelerator(gpus=parse_nvidia_smi(result.stdout))


def gpu_selector(
    visible_index: int, uuid: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """nvidia-smi's `-i` for the GPU that CUDA numbers `visible_index` in this process.

    CUDA's numbering follows CUDA_VISIBLE_DEVICES (and may order GPUs unlike nvidia-smi), so the
    device's UUID, when torch gives it, is the sure name; else the CUDA_VISIBLE_DEVICES entry.
    """
    if uuid:
        return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES", "")
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    return entries[visible_index] if visible_index < len(entries) else str(visible_index)


def parse_gpu_util(output: str) -> float | None:
    """Percent from `--query-gpu=utilization.gpu` output; None for `[N/A]` or anything odd."""
    first = output.strip().partition("\n")[0]
    try:
        value = float(first.strip().rstrip("%"))
    except ValueError:
        return None
    return value if 0.0 <= value <= 100.0 else None


def read_gpu_util(selector: str, timeout: float = UTIL_EVERY_S) -> float | None:
    """The GPU's utilization now; None when nvidia-smi is missing, fails or is too slow."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    command = [smi, _UTIL_QUERY, "--format=csv,noheader,nounits", "-i", selector]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_gpu_util(result.stdout) if result.returncode == 0 else None


class GpuUtilSampler:
    """Polls one GPU's utilization in a daemon thread, so a training step never waits for it.

    `latest` is the last reading: None before the first, after a failed one, and always when
    `selector` is None (no CUDA). Use it as a context manager around the training.
    """

    def __init__(self, selector: str | None, every_s: float = UTIL_EVERY_S) -> None:
        self.selector = selector
        self.every_s = every_s
        self.latest: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="workbench-gpu-util", daemon=True)

    def __enter__(self) -> GpuUtilSampler:
        if self.selector is not None:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Stop polling; a reading under way is abandoned, not waited for."""
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.is_set() and self.selector is not None:
            value = None
            with contextlib.suppress(Exception):  # a reading must never hurt the run
                value = read_gpu_util(self.selector, timeout=self.every_s)
            self.latest = value
            self._stop.wait(self.every_s)

"""Which accelerator this machine has, found without importing torch (nvidia-smi)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

_QUERY = "--query-gpu=name,memory.free,memory.total,utilization.gpu"


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

"""The accelerator shown in the header, found through nvidia-smi without torch."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from workbench.accelerator import Accelerator, Gpu, detect_accelerator, parse_nvidia_smi


def fake_nvidia_smi(directory: Path, body: str) -> None:
    path = directory / "nvidia-smi"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_parse_two_gpus() -> None:
    gpus = parse_nvidia_smi(
        "NVIDIA H100 80GB HBM3, 80000, 81559, 3\nNVIDIA H100 80GB HBM3, 100, 81559, 97\n"
    )
    assert gpus[1] == Gpu("NVIDIA H100 80GB HBM3", 100, 81559, 97)
    assert Accelerator(gpus).label == "2x NVIDIA H100 80GB HBM3 · 78.2/159.3 GiB free"


def test_no_gpu_is_cpu() -> None:
    assert Accelerator().label == "CPU"


def test_detect_reads_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, 'echo "NVIDIA H200, 140000, 143771, [N/A]"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    accelerator = detect_accelerator()
    assert accelerator.is_cuda
    assert accelerator.gpus[0].utilization is None
    assert accelerator.label.startswith("NVIDIA H200 · 136.7/140.4 GiB free")


def test_failing_driver_falls_back_to_cpu_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(tmp_path, 'echo "NVIDIA-SMI has failed: driver not loaded" >&2; exit 9')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    accelerator = detect_accelerator()
    assert accelerator.label == "CPU"
    assert "driver not loaded" in accelerator.note

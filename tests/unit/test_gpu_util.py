"""GPU utilization for the step events: a real (fake) nvidia-smi on PATH, and every None path."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.accelerator import GpuUtilSampler, gpu_selector, parse_gpu_util, read_gpu_util


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on PATH, for the fake nvidia-smi."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def fake_nvidia_smi(directory: Path, body: str) -> Path:
    """An executable `nvidia-smi` that records its arguments in `args` and runs `body`."""
    staging = directory / "nvidia-smi.new"  # renamed into place: it may be running right now
    staging.write_text(f'#!/bin/sh\necho "$@" > "{directory}/args"\n{body}\n')
    staging.chmod(staging.stat().st_mode | stat.S_IEXEC)
    staging.replace(directory / "nvidia-smi")
    return directory / "args"


def test_reads_the_utilization_of_the_named_gpu(bin_dir: Path) -> None:
    args = fake_nvidia_smi(bin_dir, 'echo "87"')
    assert read_gpu_util("GPU-1234") == 87.0
    assert args.read_text().split() == [
        "--query-gpu=utilization.gpu",
        "--format=csv,noheader,nounits",
        "-i",
        "GPU-1234",
    ]


@pytest.mark.parametrize(
    "body",
    [
        'echo "[N/A]"',  # a MIG slice, or a driver that does not say
        'echo "No devices were found" >&2; exit 6',
        "echo 250",
        "exec sleep 5",  # hung: given up after the timeout
    ],
)
def test_an_unusable_answer_is_none(bin_dir: Path, body: str) -> None:
    fake_nvidia_smi(bin_dir, body)
    assert read_gpu_util("0", timeout=0.5) is None


def test_no_nvidia_smi_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert read_gpu_util("0") is None


def test_parsing_takes_the_first_line() -> None:
    assert parse_gpu_util("42\n7\n") == 42.0
    assert parse_gpu_util("") is None


def test_the_gpu_is_named_by_uuid_or_by_cuda_visible_devices() -> None:
    uuid = "58d3d5a6-aaaa-bbbb-cccc-0123456789ab"
    assert gpu_selector(0, uuid, {}) == f"GPU-{uuid}"
    assert gpu_selector(1, None, {"CUDA_VISIBLE_DEVICES": "2, 3"}) == "3"
    assert gpu_selector(1, None, {}) == "1"


def test_the_sampler_polls_in_the_background_until_stopped(bin_dir: Path) -> None:
    fake_nvidia_smi(bin_dir, 'echo "63"')
    with GpuUtilSampler("0", every_s=0.05) as sampler:
        assert sampler._thread is not threading.current_thread()
        wait_for(lambda: sampler.latest == 63.0)
        fake_nvidia_smi(bin_dir, 'echo "[N/A]"')  # a failed reading replaces the last one
        wait_for(lambda: sampler.latest is None)
        assert sampler._thread.is_alive()
    sampler._thread.join(timeout=10)
    assert not sampler._thread.is_alive()


def wait_for(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "the sampler never got there"
        time.sleep(0.01)


def test_without_cuda_the_sampler_reads_nothing(bin_dir: Path) -> None:
    args = fake_nvidia_smi(bin_dir, 'echo "63"')
    with GpuUtilSampler(None, every_s=0.05) as sampler:
        assert not sampler._thread.is_alive()
    assert sampler.latest is None and not args.exists()

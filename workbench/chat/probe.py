"""Try a GGUF in a child process before the app loads it: a crash there costs nothing here.

llama.cpp is native code: a damaged file, or a kernel bug such as the AMX one (see `runtime`),
ends the whole process with a signal, and Python cannot catch that. So before a model is loaded
into the app, `python -m workbench.chat.probe FILE` loads it the same way and evaluates a short
multi-token prompt. The verdict is remembered per file (path, size, modification time) and
load settings in the user cache, so each file is probed once.

    python -m workbench.chat.probe FILE [--gpu-layers N] [--extra-buffers on|off]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workbench.chat.errors import ChatError
from workbench.paths import cache_dir

PROBE_TEXT = "Hello! Please answer in one short sentence: what is a GGUF file?"
PROBE_CTX = 256
CACHE_FILE = "gguf-probes.json"
MIN_TIMEOUT_S = 60.0
SECONDS_PER_GIB = 30.0
"""Timeout allowance per GiB of model (a cold disk reads a few hundred MB/s)."""


class ProbeFailed(ChatError):
    """The test prompt failed or crashed llama.cpp in the child process."""


def ensure_probed(path: Path, *, gpu_layers: int, extra_buffers: bool) -> None:
    """Probe `path` unless an earlier probe with the same settings passed; raise ProbeFailed."""
    key = _cache_key(path, gpu_layers, extra_buffers)
    cache = _read_cache()
    if cache.get(key, {}).get("ok"):
        return
    result = run_probe(path, gpu_layers=gpu_layers, extra_buffers=extra_buffers)
    cache[key] = {"ok": True, "checked_at": round(time.time()), "seconds": result["seconds"]}
    _write_cache(cache)


def run_probe(path: Path, *, gpu_layers: int, extra_buffers: bool) -> dict[str, Any]:
    """Run the child probe; its JSON report when it passed, else ProbeFailed with the reason."""
    command = [
        sys.executable,
        "-m",
        "workbench.chat.probe",
        str(path),
        "--gpu-layers",
        str(gpu_layers),
        "--extra-buffers",
        "on" if extra_buffers else "off",
    ]
    timeout = MIN_TIMEOUT_S + SECONDS_PER_GIB * path.stat().st_size / 2**30
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeFailed(
            f"{path.name}: a test prompt took over {timeout:.0f} s in llama.cpp; the file may be "
            "damaged or too big for this machine"
        ) from exc
    return _verdict(path, result)


def _verdict(path: Path, result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Read the child's JSON line; explain a crash or an error."""
    if result.returncode < 0:
        raise ProbeFailed(
            f"llama.cpp crashed ({_signal_name(-result.returncode)}) running a test prompt on "
            f"{path.name}; the file is damaged or this llama-cpp-python build mishandles it "
            "(nothing was loaded into the app)"
        )
    report = _last_json(result.stdout)
    if result.returncode == 0 and report.get("ok"):
        return report
    reason = report.get("error") or _last_line(result.stderr) or f"exit {result.returncode}"
    raise ProbeFailed(f"{path.name} failed a test prompt in llama.cpp: {reason}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


# --- the verdict cache -----------------------------------------------------------------------


def _cache_key(path: Path, gpu_layers: int, extra_buffers: bool) -> str:
    stat = path.stat()
    where = "gpu" if gpu_layers else "cpu"
    extra = "extra" if extra_buffers else "plain"
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{where}|{extra}"


def _cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    """The remembered verdicts; an unreadable cache is an empty one (it is rebuilt)."""
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict[str, Any]) -> None:
    from workbench.config import atomic_write_text

    try:
        _cache_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(_cache_path(), json.dumps(cache, indent=1) + "\n")
    except OSError:
        pass  # a cache that cannot be written only means probing again next time


# --- the child -------------------------------------------------------------------------------


def probe_here(path: Path, gpu_layers: int, extra_buffers: bool) -> dict[str, Any]:
    """Load `path` in this process and evaluate a short prompt plus one token."""
    from workbench.chat import runtime

    started = time.perf_counter()
    llm = runtime.open_llama(
        path, n_ctx=PROBE_CTX, n_gpu_layers=gpu_layers, extra_buffers=extra_buffers
    )
    try:
        tokens = llm.tokenize(PROBE_TEXT.encode("utf-8"), add_bos=True, special=True)
        token = next(iter(llm.generate(tokens, temp=0.0)))
        return {
            "ok": True,
            "prompt_tokens": len(tokens),
            "first_token": int(token),
            "seconds": round(time.perf_counter() - started, 3),
        }
    finally:
        llm.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process: one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m workbench.chat.probe")
    parser.add_argument("path", type=Path)
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--extra-buffers", choices=("on", "off"), default="off")
    args = parser.parse_args(argv)
    try:
        report = probe_here(args.path, args.gpu_layers, args.extra_buffers == "on")
    except Exception as exc:
        from workbench.chat import runtime

        reason = runtime.last_native_error() or f"{type(exc).__name__}: {exc}"
        print(json.dumps({"ok": False, "error": reason}), flush=True)
        return 1
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

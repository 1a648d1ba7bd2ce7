"""Child processes for the export steps: output read line by line, stoppable through a cancel flag.

The converter and the quantizer run as children of the export job, so a crash or an
out-of-memory kill in them cannot take the job down with it, and a stop request ends them at
once (a native call in this process could not be interrupted).
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

POLL_S = 0.2
KEEP_LINES = 2000
"""Lines of output kept for error messages and a "details" view."""
TERMINATE_GRACE_S = 5.0


class Cancelled(Exception):
    """The export was asked to stop while a child process ran; the child has been ended."""


class ChildProcess:
    """A command whose combined output is read line by line (`lines`), then `returncode`."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.returncode: int | None = None
        self._tail: deque[str] = deque(maxlen=KEEP_LINES)
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def log(self) -> str:
        """The last `KEEP_LINES` lines of output."""
        return "\n".join(self._tail)

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def lines(self, cancel: threading.Event | None = None) -> Iterator[str]:
        """Each output line as it comes; ends when the child exits (then `returncode` is set).

        Raises:
            Cancelled: `cancel` was set; the child was terminated (killed if it lingered).
        """
        while True:
            if cancel is not None and cancel.is_set():
                self.stop()
                raise Cancelled(f"stopped {Path(self.command[0]).name}")
            try:
                line = self._lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                break
            self._tail.append(line)
            yield line
        self.returncode = self._process.wait()

    def run(self, cancel: threading.Event | None = None) -> int:
        """Read the output to the end; the exit status."""
        for _ in self.lines(cancel):
            pass
        assert self.returncode is not None
        return self.returncode

    def stop(self) -> None:
        """Terminate the child, then kill it if it does not end within a few seconds."""
        if self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, offline for the hub, UTF-8 output, plus `extra`."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def publish(partial: Path, target: Path) -> None:
    """Rename a finished file into place with the usual permissions (mkstemp made it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    partial.chmod(0o666 & ~umask)
    os.replace(partial, target)

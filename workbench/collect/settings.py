"""The capture proxy's settings, light to import (the command line builds them at startup)."""

from __future__ import annotations

from dataclasses import dataclass

ANTHROPIC_URL = "https://api.anthropic.com"
OPENAI_URL = "https://api.openai.com"
TAG_HEADER = "x-workbench-tag"
"""A request header naming the user's tag for the captured example; not forwarded."""


@dataclass(frozen=True)
class CaptureSettings:
    """Where the proxy listens and where it forwards to."""

    host: str = "127.0.0.1"
    port: int = 8765
    anthropic_url: str = ANTHROPIC_URL
    """Base URL of the Anthropic API; `/v1/messages` is appended as the caller sent it."""
    openai_url: str = OPENAI_URL
    """Base URL of the OpenAI-compatible API (callers use `http://HOST:PORT/v1`)."""
    default_tag: str = ""
    """Tag for captured examples whose request has no X-Workbench-Tag header."""
    timeout_s: float = 600.0
    """Longest wait for the upstream between two pieces of an answer."""

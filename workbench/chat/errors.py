"""The one exception family of the chat engine: every message is one line that says what to do."""

from __future__ import annotations


class ChatError(Exception):
    """Chatting cannot go on as asked; `str(error)` is a one-line message for the user."""

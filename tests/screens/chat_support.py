"""Shared by the Chat screen tests and snapshots: the demo model as a GGUF (and broken ones),
opening the Chat screen, loading a model through the picker, and waiting for answers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, TypeVar

from support import SIZE, notifications, wait_until
from textual import events
from textual.pilot import Pilot
from textual.widgets import Static

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from fake_anthropic import demo_gguf  # the f16 demo GGUF, built once per test session

from screens.chat import ChatScreen
from screens.chat_dialogs import ModelPickerScreen
from screens.widgets.chat_transcript import AnswerTurn, UserTurn

T = TypeVar("T")
QUESTION = "Write a title for a page about cafés."
MALICIOUS_TEMPLATE = (
    "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch pwned') }}"
)

__all__ = ["SIZE", "demo_gguf", "notifications", "wait_until"]

wait_for = wait_until  # the name the Chat snapshots import


# --- files ------------------------------------------------------------------------------------


def with_template(source: Path, target: Path, template: str) -> Path:
    """A copy of the GGUF at `source` whose chat template is `template` (weights unchanged)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(source, "r")
    arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(target, arch=arch, endianess=reader.endianess)
    details = MetadataDetails(gguf.GGUFValueType.STRING, template)
    copy_with_new_metadata(reader, writer, {"tokenizer.chat_template": details}, [])
    return target


def truncated_copy(source: Path, target: Path) -> Path:
    """The first half of a GGUF, as a download cut short leaves it."""
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def giant_gguf(target: Path, size: int = 4 * 2**40) -> Path:
    """A llama GGUF whose one tensor is `size` bytes (a sparse file: no disk is used)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(target), "llama")
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_file_type(1)
    writer.add_tensor_info("huge.weight", (size // 4,), np.dtype(np.float32), size)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    data_start = -(-target.stat().st_size // 32) * 32
    os.truncate(target, data_start + size)
    return target


def not_a_gguf(target: Path) -> Path:
    target.write_text("these are meeting notes, not weights\n" * 20)
    return target


def copy_model(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


# --- driving the screen -------------------------------------------------------------------------


async def open_chat(pilot: Pilot[None]) -> ChatScreen:
    await pilot.press("3")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ChatScreen)
    return screen


async def pick_path(pilot: Pilot[None], path: Path, *fields: tuple[str, str]) -> None:
    """In the open model picker: type a path (and other fields, e.g. `("n-ctx", "256")`),
    then Enter."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerScreen), what="the picker")
    picker = app.screen
    picker.query_one("#chat-picker-path").focus()
    await paste(pilot, str(path))
    for name, value in fields:
        field = picker.query_one(f"#chat-picker-{name}")
        field.focus()
        field.value = ""  # type: ignore[attr-defined]
        await paste(pilot, value)
    await pilot.press("enter")


async def load_model(
    pilot: Pilot[None], screen: ChatScreen, path: Path, side: int = 0, key: str = "ctrl+o"
) -> None:
    """Open the picker with `key`, type the path of a good model, wait until it is loaded."""
    await pilot.press(key)
    await pick_path(pilot, path)
    await wait_until(pilot, lambda: screen.paths[side] == path.resolve(), what="the model")


async def send(pilot: Pilot[None], screen: ChatScreen, text: str) -> None:
    """Type a message in the prompt and press Enter."""
    screen.action_focus_prompt()
    await paste(pilot, text)
    await pilot.press("enter")


async def paste(pilot: Pilot[None], text: str) -> None:
    """Paste `text` into the focused widget (as a terminal does; faster than key by key)."""
    focused = pilot.app.focused
    assert focused is not None
    pilot.app.post_message(events.Paste(text))  # as the terminal driver does
    await pilot.pause()


async def answered(pilot: Pilot[None], screen: ChatScreen, timeout: float = 60.0) -> None:
    """Wait until no answer is being written."""
    await pilot.pause(0.05)
    await wait_until(
        pilot,
        lambda: not screen.answering and not screen._answers,
        timeout,
        "the answer",
    )
    await pilot.pause()


def answers(screen: ChatScreen, side: int = 0) -> list[AnswerTurn]:
    return [turn for turn in screen.pane(side).turns if isinstance(turn, AnswerTurn)]


def questions(screen: ChatScreen, side: int = 0) -> list[str]:
    return [turn.text for turn in screen.pane(side).turns if isinstance(turn, UserTurn)]


def status_line(screen: ChatScreen, side: int = 0) -> str:
    line = screen.pane(side).query_one(".chat-model-line", Static)
    return str(line.render())


def sent(messages: list[Any], kind: type[T]) -> list[T]:
    """Each message of `kind` once (the hook sees a bubbling message at every level)."""
    seen: dict[int, T] = {}
    for message in messages:
        if isinstance(message, kind):
            seen.setdefault(id(message), message)
    return list(seen.values())


# --- fixed conversations (snapshots): the screen's own widgets, no model --------------------


def show_model(screen: ChatScreen, side: int, path: Path, line: str) -> None:
    """Show `path` as loaded on `side` with a fixed model line (nothing is loaded)."""
    screen.paths[side], screen.lines[side] = path, line
    screen._show_model(side)


def show_turn(screen: ChatScreen, side: int, question: str, answer: str, status: str) -> None:
    """One question and its answer, in the pane and in the conversation."""
    pane = screen.pane(side)
    pane.add_user(question)
    pane.add_answer(screen.side_label(side), answer, status)
    screen.conversations[side].ask(question)
    screen.conversations[side].answered(answer)

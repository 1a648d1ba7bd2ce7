"""Compare mode: one conversation answered by several models (base vs fine-tuned, q4_k_m vs f16).

:func:`compare_stream` merges the models' event streams into one, each event tagged with the
index of the model that produced it, so a screen can fill its panes side by side from one
worker. By default the models answer one after the other: on a CPU, two models generating at
once share the cores and both timings would be wrong. With `together=True` (a GPU, or when
only the text matters) they answer at the same time, each in its own thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from workbench.chat.engine import AnswerDone, ChatEvent, ChatModel, ChatSettings, Message


@dataclass(frozen=True)
class SideEvent:
    """An event of the model at `side` (its index in the list given)."""

    side: int
    event: ChatEvent


@dataclass(frozen=True)
class SideFailed:
    """The model at `side` could not answer (its error message); the others go on."""

    side: int
    message: str


CompareEvent = SideEvent | SideFailed


def compare_stream(
    models: Sequence[ChatModel],
    messages: Sequence[Message],
    settings: ChatSettings | None = None,
    cancel: threading.Event | None = None,
    together: bool = False,
) -> Iterator[CompareEvent]:
    """Every model's answer to `messages`, as tagged events; `cancel` stops them all."""
    if together:
        yield from _together(models, messages, settings, cancel)
        return
    for side, model in enumerate(models):
        yield from _side(side, model, messages, settings, cancel)


def compare_answers(
    models: Sequence[ChatModel],
    messages: Sequence[Message],
    settings: ChatSettings | None = None,
) -> list[AnswerDone | str]:
    """Each model's finished answer (or its error message), in order."""
    results: list[AnswerDone | str] = ["" for _ in models]
    for item in compare_stream(models, messages, settings):
        if isinstance(item, SideFailed):
            results[item.side] = item.message
        elif isinstance(item.event, AnswerDone):
            results[item.side] = item.event
    return results


def _side(
    side: int,
    model: ChatModel,
    messages: Sequence[Message],
    settings: ChatSettings | None,
    cancel: threading.Event | None,
) -> Iterator[CompareEvent]:
    from workbench.chat.errors import ChatError

    try:
        for event in model.stream(messages, settings, cancel):
            yield SideEvent(side, event)
    except ChatError as exc:
        yield SideFailed(side, str(exc))


_DONE = object()


def _together(
    models: Sequence[ChatModel],
    messages: Sequence[Message],
    settings: ChatSettings | None,
    cancel: threading.Event | None,
) -> Iterator[CompareEvent]:
    """Run each model in a thread; pass their events on in the order they come."""
    events: queue.Queue[object] = queue.Queue()

    def work(side: int, model: ChatModel) -> None:
        try:
            for item in _side(side, model, messages, settings, cancel):
                events.put(item)
        finally:
            events.put(_DONE)

    threads = [
        threading.Thread(target=work, args=(side, model), daemon=True)
        for side, model in enumerate(models)
    ]
    for thread in threads:
        thread.start()
    remaining = len(threads)
    while remaining:
        item = events.get()
        if item is _DONE:
            remaining -= 1
        elif isinstance(item, SideEvent | SideFailed):
            yield item
    for thread in threads:
        thread.join()

"""What the Chat screen keeps besides widgets, without a model or an app: a model is never
closed under a running answer, a late load is dropped, tokens are batched without losing text,
and the timing and settings lines read as the screen shows them."""

from __future__ import annotations

from typing import Any

import pytest

from screens.chat_session import (
    ModelSlots,
    SettingsError,
    TextBatcher,
    answer_settings,
    done_line,
    streaming_line,
)
from workbench.chat.engine import AnswerDone, ChatSettings, TokenStreamed
from workbench.config import ChatSection


class FakeModel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_replaced_model_is_closed_but_not_under_a_running_answer() -> None:
    slots = ModelSlots()
    first, second = FakeModel("first"), FakeModel("second")
    assert slots.put(0, first, slots.ticket(0))  # type: ignore[arg-type]
    slots.start_answering()
    assert slots.put(0, second, slots.ticket(0))  # type: ignore[arg-type]
    assert slots.get(0) is second and not first.closed, "first is still answering"
    slots.stop_answering()
    assert first.closed and not second.closed


def test_only_the_newest_load_of_a_side_is_kept() -> None:
    slots = ModelSlots()
    slow, fast = FakeModel("slow"), FakeModel("fast")
    slow_ticket, fast_ticket = slots.ticket(0), slots.ticket(0)
    assert slots.put(0, fast, fast_ticket)  # type: ignore[arg-type]
    assert not slots.put(0, slow, slow_ticket)  # type: ignore[arg-type]
    assert slots.get(0) is fast and slow.closed


def test_models_are_closed_when_the_screen_goes_even_if_they_arrive_later() -> None:
    slots = ModelSlots()
    loaded, late = FakeModel("a"), FakeModel("late")
    slots.put(1, loaded, slots.ticket(1))  # type: ignore[arg-type]
    ticket = slots.ticket(0)
    slots.start_answering()
    slots.close_all()
    assert not loaded.closed, "an answer is still running"
    slots.stop_answering()
    assert loaded.closed and slots.get(1) is None
    assert not slots.put(0, late, ticket) and late.closed  # type: ignore[arg-type]


def test_removing_a_side_drops_its_model_and_a_load_in_flight() -> None:
    slots = ModelSlots()
    model, in_flight = FakeModel("b"), FakeModel("in flight")
    slots.put(1, model, slots.ticket(1))  # type: ignore[arg-type]
    ticket = slots.ticket(1)
    slots.remove(1)
    assert model.closed and slots.get(1) is None
    assert not slots.put(1, in_flight, ticket) and in_flight.closed  # type: ignore[arg-type]


def token(index: int, text: str) -> TokenStreamed:
    return TokenStreamed(text, 100 + index, index, 0.1 + index * 0.01)


def test_tokens_are_batched_on_a_time_budget_and_no_text_is_lost() -> None:
    now = [0.0]
    batch = TextBatcher(interval=0.03, clock=lambda: now[0])
    due = []
    for index, piece in enumerate(["Ca", "fé", "", "s ", "ne", "ar"], start=1):
        now[0] += 0.01
        due.append(batch.add(token(index, piece)))
    assert due == [True, False, False, True, False, False]
    assert batch.text == "Cafés near" and batch.tokens == 6
    assert batch.first_token_s == pytest.approx(0.11)


def done(**changes: Any) -> AnswerDone:
    fields: dict[str, Any] = {
        "text": "Cafés",
        "stop_reason": "end",
        "prompt_tokens": 30,
        "completion_tokens": 42,
        "time_to_first_token_s": 0.214,
        "tokens_per_s": 37.53,
        "total_s": 1.3,
    }
    return AnswerDone(**(fields | changes))


def test_timing_lines() -> None:
    assert done_line(done()) == "42 tokens · first token 0.21 s · 37.5 tokens/s"
    assert done_line(done(stop_reason="cancelled")).endswith("37.5 tokens/s · stopped")
    assert done_line(done(stop_reason="length")).endswith("· max tokens reached")
    assert done_line(done(stop_reason="context")).endswith("· context full")
    assert done_line(done(completion_tokens=1, tokens_per_s=0.0, stop_reason="end")) == (
        "1 token · first token 0.21 s"
    )
    assert done_line(done(completion_tokens=0, stop_reason="cancelled")) == (
        "stopped before the first token"
    )
    assert streaming_line(11, 0.2, 0.7) == "11 tokens · first token 0.20 s · 20.0 tokens/s …"
    assert streaming_line(1, 0.2, 0.2) == "1 token · first token 0.20 s …"


def test_sampling_settings_are_checked_by_the_config_rules() -> None:
    section = ChatSection()
    typed = {"temperature": "0", "top_p": "0.5", "max_tokens": "64", "repeat_penalty": "1"}
    settings = answer_settings(ChatSettings(n_ctx=512), section, typed)
    assert (settings.temperature, settings.top_p, settings.max_tokens) == (0.0, 0.5, 64)
    assert settings.n_ctx == 512, "load settings are left alone"
    with pytest.raises(SettingsError, match=r"^Top-p: input should be greater than 0$"):
        answer_settings(ChatSettings(), section, typed | {"top_p": "0"})
    with pytest.raises(SettingsError, match=r"^Max tokens: input should be a valid integer"):
        answer_settings(ChatSettings(), section, typed | {"max_tokens": "lots"})

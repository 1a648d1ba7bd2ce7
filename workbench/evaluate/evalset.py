"""The eval set: held-out examples, each split into its input and the old pipeline's answer.

An item's input is the example without its final assistant message (the system prompt, if the
example has one, stays: it is what the model was trained with); the final assistant message is the
stored answer of the old pipeline. The set is frozen into `items.jsonl` when the eval is created.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.data.store import Example, ExampleStore, Query, Split
from workbench.evaluate.spec import EvalError, SplitChoice

ITEMS_FILE = "items.jsonl"
Message = dict[str, Any]


@dataclass(frozen=True)
class EvalItem:
    """One input to evaluate, with the old pipeline's stored answer."""

    index: int
    example_id: int
    messages: list[Message]
    """The conversation up to (not including) the answer to judge."""
    reference: str = ""
    """The stored final assistant answer ("" when the example has none)."""
    stored_latency_s: float | None = None
    """The old pipeline's latency for this answer, when the imported data recorded one."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_text(self) -> str:
        """The input as the judge sees it: the non-system turns (one user turn: just its text)."""
        return render_input(self.messages)

    @property
    def system_prompt(self) -> str:
        """The example's own system message ("" if none)."""
        return "\n\n".join(
            str(m.get("content") or "") for m in self.messages if m.get("role") == "system"
        )

    @property
    def preview(self) -> str:
        """The first non-empty line of the input, shortened for lists."""
        for line in self.input_text.splitlines():
            if line.strip():
                return line.strip()[:80]
        return ""


def render_input(messages: Sequence[Mapping[str, Any]]) -> str:
    """The conversation without system messages, as plain text."""
    turns = [m for m in messages if m.get("role") != "system"]
    if len(turns) == 1 and turns[0].get("role") == "user":
        return str(turns[0].get("content") or "")
    return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in turns)


def item_from_example(index: int, example: Example) -> EvalItem:
    """Split an example into input and stored answer."""
    messages = [dict(m) for m in example.messages]
    reference = ""
    if messages and messages[-1].get("role") == "assistant":
        reference = str(messages.pop().get("content") or "")
    return EvalItem(
        index=index,
        example_id=example.id,
        messages=messages,
        reference=reference,
        stored_latency_s=_stored_latency(example.extra),
    )


def _stored_latency(extra: Mapping[str, Any]) -> float | None:
    """A latency recorded with imported request logs (`latency_s` or `latency_ms`), if any."""
    for key, scale in (("latency_s", 1.0), ("latency_ms", 0.001)):
        value = extra.get(key)
        if isinstance(value, int | float) and value >= 0:
            return float(value) * scale
    return None


def choose_split(store: ExampleStore, split: SplitChoice) -> Split:
    """The split to evaluate on: as asked, or for `auto` the test split, else validation."""
    if split != "auto":
        return split
    return "test" if store.count(Query(split="test")) else "val"


def select_items(
    store: ExampleStore,
    split: SplitChoice = "auto",
    limit: int = 200,
    text: str = "",
    tag: str = "",
) -> list[EvalItem]:
    """The eval set: live, not-bad examples of the split matching the filter, in id order."""
    chosen = choose_split(store, split)
    query = Query(split=chosen, text=text, tag=tag or None)
    items: list[EvalItem] = []
    for example_id in store.ids(query):
        example = store.get(example_id)
        if example.flag != "bad":
            items.append(item_from_example(len(items), example))
        if len(items) >= limit:
            break
    if not items:
        raise EvalError(_empty_reason(store, chosen, text, tag))
    return items


def _empty_reason(store: ExampleStore, split: Split, text: str, tag: str) -> str:
    if store.count(Query(split=split)) == 0:
        return (
            f"no examples in the {split} split: split the data first "
            "(Data screen, or `workbench data split --test 0.1`)"
        )
    return f"no {split} examples match the filter (text {text!r}, tag {tag!r}): widen it"


def write_items(eval_dir: Path, items: Iterable[EvalItem]) -> None:
    """Freeze the eval set into `items.jsonl`."""
    lines = [json.dumps(asdict(item), ensure_ascii=False) for item in items]
    (eval_dir / ITEMS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_items(eval_dir: Path) -> list[EvalItem]:
    """The frozen eval set; EvalError when it is missing."""
    path = eval_dir / ITEMS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalError(f"{path}: cannot read the eval set ({exc.strerror})") from exc
    return [EvalItem(**json.loads(line)) for line in text.splitlines() if line.strip()]

"""Render a GGUF's chat template safely.

A chat template is Jinja2 source read from the model file's metadata: untrusted input.
CVE-2024-34359 ("Llama Drama") ran arbitrary code through one. Templates here are compiled in
Jinja2's `ImmutableSandboxedEnvironment` (no attribute walks to `__globals__`, no mutation of
the data passed in), rendered with the same globals and options as transformers'
`apply_chat_template` (so a conversation becomes the same text as in training), and bounded in
output size and time. Every failure is a :class:`ChatTemplateError` with a one-line message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from workbench.chat.errors import ChatError

MAX_OUTPUT_CHARS = 4_000_000
"""A prompt longer than this is a runaway template, not a conversation."""
MAX_RENDER_SECONDS = 5.0
"""Rendering a prompt takes milliseconds; a template still producing output after this is
stopped."""

#: Used when a GGUF carries no chat template (base models): ChatML, as llama.cpp knows it.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class ChatTemplateError(ChatError):
    """The chat template cannot be compiled or rendered; the message says why in one line."""


class ChatTemplate:
    """A compiled, sandboxed chat template.

    Args:
        source: The Jinja2 template (e.g. the GGUF's `tokenizer.chat_template`).
        special_tokens: Values such as `bos_token` and `eos_token` the template may use.
    """

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.special_tokens = dict(special_tokens or {})
        self._template = _compile(source)

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        **extra: Any,
    ) -> str:
        """The prompt text for `messages` (OpenAI-style `{"role", "content"}` dicts).

        Raises:
            ChatTemplateError: the template failed, rejected the conversation, tried something
                the sandbox forbids, or ran away (too long or too slow).
        """
        context = {
            **self.special_tokens,
            "messages": [dict(message) for message in messages],
            "tools": None,
            "documents": None,
            "add_generation_prompt": add_generation_prompt,
            **extra,
        }
        try:
            return _bounded_render(self._template, context)
        except SecurityError as exc:
            raise ChatTemplateError(
                f"the model's chat template tried an unsafe operation and was stopped ({exc}); "
                "do not trust this GGUF file: re-export it or get it from a trusted source"
            ) from exc
        except _TemplateRaised as exc:
            raise ChatTemplateError(f"the chat template rejected the conversation: {exc}") from exc
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"the chat template failed: {exc}") from exc
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            raise ChatTemplateError(
                f"the chat template failed on this conversation ({type(exc).__name__}: {exc})"
            ) from exc


class _TemplateRaised(Exception):
    """`raise_exception(...)` called by the template itself (e.g. roles must alternate)."""


def _raise_exception(message: str) -> None:
    raise _TemplateRaised(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """transformers' `tojson`: plain JSON, without Jinja's HTML escaping."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(format_: str) -> str:
    return datetime.now().strftime(format_)


class _GenerationTag(jinja2.ext.Extension):
    """transformers' `{% generation %}...{% endgeneration %}` block, rendered as its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> Any:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _compile(source: str) -> Any:
    """Compile `source` in the immutable sandbox with transformers' options and helpers."""
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_GenerationTag, jinja2.ext.loopcontrols],
        undefined=jinja2.Undefined,
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    try:
        return environment.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ChatTemplateError(
            f"the model's chat template is not valid Jinja2 (line {exc.lineno}: {exc.message}); "
            "re-export the model with a working template"
        ) from exc
    except jinja2.TemplateError as exc:
        raise ChatTemplateError(f"the model's chat template cannot be compiled: {exc}") from exc


def _bounded_render(template: Any, context: dict[str, Any]) -> str:
    """Render chunk by chunk, stopping a template whose output or time runs away."""
    deadline = time.monotonic() + MAX_RENDER_SECONDS
    parts: list[str] = []
    length = 0
    for chunk in template.generate(**context):
        parts.append(chunk)
        length += len(chunk)
        if length > MAX_OUTPUT_CHARS or time.monotonic() > deadline:
            raise ChatTemplateError(
                "the chat template produced a runaway prompt (too long or too slow) and was "
                "stopped; do not trust this GGUF file"
            )
    return "".join(parts)

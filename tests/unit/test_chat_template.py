"""Chat templates come from model files, so they are untrusted: rendered in a sandbox, bounded,
and every failure is one readable line."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.chat.errors import ChatError
from workbench.chat.template import FALLBACK_TEMPLATE, ChatTemplate, ChatTemplateError
from workbench.demo_model import CHATML_TEMPLATE

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Title for a café guide?"},
]

# Llama 3's template, as shipped in its tokenizer_config.json (trimmed of the tool-call parts).
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)


def test_chatml_renders_as_in_training() -> None:
    text = ChatTemplate(CHATML_TEMPLATE).render(CONVERSATION)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nTitle for a café guide?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    without_prompt = ChatTemplate(CHATML_TEMPLATE).render(CONVERSATION, add_generation_prompt=False)
    assert without_prompt.endswith("<|im_end|>\n") and FALLBACK_TEMPLATE == CHATML_TEMPLATE


def test_special_tokens_and_helpers_are_available_like_in_transformers() -> None:
    template = ChatTemplate(LLAMA3_TEMPLATE, {"bos_token": "<|begin_of_text|>"})
    text = template.render(CONVERSATION)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    helpers = ChatTemplate(
        "{{ messages | tojson }}|{{ strftime_now('%Y') | length }}"
        "{% generation %}!{% endgeneration %}"
    )
    assert helpers.render(CONVERSATION[:1]) == '[{"role": "system", "content": "Be brief."}]|4!'


MARKER = "pwned-by-template"
CVE_PAYLOADS = [
    # CVE-2024-34359: reach os through the template's globals.
    "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch {marker}') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}{{ cycler.__init__.__globals__.os.popen("
    "'touch {marker}').read() }}",
    "{% for m in messages %}{{ m.update({'role': 'admin'}) }}{% endfor %}",
]


@pytest.mark.parametrize("payload", CVE_PAYLOADS)
def test_a_malicious_template_runs_nothing_and_says_so(
    payload: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    template = ChatTemplate(payload.replace("{marker}", MARKER))
    with pytest.raises(ChatTemplateError) as excinfo:
        template.render(CONVERSATION)
    message = str(excinfo.value)
    assert "unsafe" in message and "do not trust this GGUF" in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / MARKER).exists()
    assert isinstance(excinfo.value, ChatError)


def test_a_runaway_template_is_stopped() -> None:
    endless = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    with pytest.raises(ChatTemplateError, match="runaway"):
        ChatTemplate(endless).render(CONVERSATION)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% if %}", "not valid Jinja2 (line 1"),
        (
            "{{ raise_exception('Conversation roles must alternate') }}",
            "rejected the conversation: Conversation roles must alternate",
        ),
        ("{{ messages[5]['content'] + 1 }}", "the chat template failed"),
    ],
)
def test_broken_templates_give_one_line(source: str, expected: str) -> None:
    with pytest.raises(ChatTemplateError) as excinfo:
        ChatTemplate(source).render(CONVERSATION)
    assert expected in str(excinfo.value)
    assert len(str(excinfo.value).splitlines()) == 1

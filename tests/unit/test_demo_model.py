"""The demo base model: loads in transformers, trains with LoRA, exports to GGUF.

BOS convention checked here: the demo tokenizer never adds ``<s>`` -- not in
transformers (``add_bos_token`` false, the ChatML template has no BOS) and not
in llama.cpp (the GGUF carries ``tokenizer.ggml.add_bos_token = false``, so
even ``add_bos=True`` adds nothing). Token ids therefore match whichever
``add_bos`` a caller passes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.demo_model import CHATML_TEMPLATE, IM_END, IM_START, build_demo_model
from workbench.export.convert import GGUFConversionError, convert_to_gguf

MAX_PARAMS = 3_000_000

CONVERSATION = [
    {"role": "system", "content": "You are a concise SEO writing assistant."},
    # Non-ASCII (en dash, accents, CJK) is outside the demo vocabulary: byte fallback.
    {"role": "user", "content": "Write a title for a café guide \u2013 naïve tips, 日本 edition."},
    {"role": "assistant", "content": "Café Basics:\n\n12 Naïve  Mistakes to Avoid"},
]


@pytest.fixture(scope="module")
def hf_tokenizer(demo_model_dir: Path) -> Any:
    """The demo model's tokenizer, loaded with ``AutoTokenizer``."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir)


@pytest.fixture(scope="module")
def demo_gguf(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model converted to an f16 GGUF."""
    return convert_to_gguf(demo_model_dir, tmp_path_factory.mktemp("gguf") / "demo-f16.gguf", "f16")


@pytest.fixture(scope="module")
def llm(demo_gguf: Path) -> Iterator[Any]:
    """The f16 GGUF loaded in llama-cpp-python (closed after the module)."""
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(demo_gguf), verbose=False, n_ctx=256, seed=0)
    yield model
    model.close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_transformers_loads_a_small_chatml_model(demo_model_dir: Path, hf_tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(demo_model_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert model.config.architectures == ["LlamaForCausalLM"]
    assert model.num_parameters() < MAX_PARAMS
    assert model.config.vocab_size == len(hf_tokenizer)

    tok = hf_tokenizer
    im_start_id, im_end_id = tok.convert_tokens_to_ids([IM_START, IM_END])
    assert tok.eos_token == IM_END and tok.eos_token_id == im_end_id
    assert tok.encode(IM_START + IM_END, add_special_tokens=False) == [im_start_id, im_end_id]

    prompt = tok.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.startswith(f"{IM_START}system\nYou are")
    assert f"{IM_END}\n{IM_START}user\n" in prompt
    assert prompt.endswith(f"{IM_END}\n{IM_START}assistant\n")

    encoded = tok(prompt, return_tensors="pt")
    assert encoded["input_ids"][0, 0].item() == im_start_id, "no BOS token is expected"
    output = model.generate(**encoded, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert output.shape[1] == encoded["input_ids"].shape[1] + 4
    assert isinstance(tok.decode(output[0, -4:]), str)


def test_build_is_fast_deterministic_and_trains_on_given_texts(tmp_path: Path) -> None:
    texts = [
        "Short pages can answer a question well.\nTitles make a promise.",
        "Keep the reader in mind.",
    ]
    start = time.perf_counter()
    first = build_demo_model(tmp_path / "a", texts, seed=7)
    elapsed = time.perf_counter() - start
    # Building over an old checkpoint drops files that would shadow the new tokenizer.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "tokenizer.json").write_text("{}")
    second = build_demo_model(tmp_path / "b", texts, seed=7)
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())
    other_seed = build_demo_model(tmp_path / "c", texts, seed=8)

    assert elapsed < 5.0
    for name in ("model.safetensors", "tokenizer.model", "tokenizer_config.json", "config.json"):
        assert _sha256(first / name) == _sha256(second / name), name
    assert _sha256(first / "model.safetensors") != _sha256(other_seed / "model.safetensors")
    # A tiny corpus cannot fill 1024 pieces; config.json records the real size.
    vocab_size = json.loads((first / "config.json").read_text())["vocab_size"]
    assert 256 < vocab_size < 1024


def test_build_rejects_empty_texts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no non-blank lines"):
        build_demo_model(tmp_path, ["", "  \n"])


def test_importing_workbench_modules_stays_light() -> None:
    code = (
        "import sys, workbench.demo_model, workbench.export.convert\n"
        "heavy = {'torch', 'transformers', 'llama_cpp', 'textual', 'rich'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_lora_step_on_chat_batch_updates_only_the_adapter(
    demo_model_dir: Path, hf_tokenizer: Any
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    texts = [
        hf_tokenizer.apply_chat_template(CONVERSATION, tokenize=False),
        hf_tokenizer.apply_chat_template(CONVERSATION[1:], tokenize=False),
    ]
    batch = hf_tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    adapter = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert adapter and all("lora_" in name for name in adapter)

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    loss = model(**batch, labels=labels).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()

    params = dict(model.named_parameters())
    lora_b = [name for name in adapter if "lora_B" in name]
    assert any(not torch.equal(params[name], adapter[name]) for name in lora_b)
    assert all(torch.equal(params[name], before) for name, before in frozen.items())


@pytest.mark.slow
def test_gguf_loads_and_generates_in_llama_cpp(
    demo_gguf: Path, llm: Any, hf_tokenizer: Any
) -> None:
    assert [p.name for p in demo_gguf.parent.iterdir()] == ["demo-f16.gguf"], "no partial file"
    metadata = llm.metadata
    assert metadata["general.architecture"] == "llama"
    assert metadata["tokenizer.chat_template"] == CHATML_TEMPLATE
    assert metadata["tokenizer.ggml.add_bos_token"] == "false"
    assert llm.token_eos() == hf_tokenizer.convert_tokens_to_ids(IM_END)
    assert llm.tokenize(IM_START.encode(), add_bos=False, special=True) == [
        hf_tokenizer.convert_tokens_to_ids(IM_START)
    ]

    prompt = hf_tokenizer.apply_chat_template(
        CONVERSATION[:2], tokenize=False, add_generation_prompt=True
    )
    completion = llm.create_completion(
        prompt, max_tokens=4, temperature=0.0, logit_bias={llm.token_eos(): -1000.0}
    )
    assert completion["usage"]["completion_tokens"] == 4
    assert completion["choices"][0]["finish_reason"] == "length"

    # The chat API renders the GGUF's own template.
    chat = llm.create_chat_completion(messages=CONVERSATION[:2], max_tokens=3, temperature=0.0)
    assert chat["choices"][0]["message"]["role"] == "assistant"


@pytest.mark.slow
def test_chat_prompt_token_ids_match_between_transformers_and_llama_cpp(
    llm: Any, hf_tokenizer: Any
) -> None:
    text = hf_tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    hf_ids = hf_tokenizer(text)["input_ids"]
    assert hf_ids == hf_tokenizer(text, add_special_tokens=False)["input_ids"]
    tokens = hf_tokenizer.convert_ids_to_tokens(hf_ids)
    assert any(token.startswith("<0x") for token in tokens), "the text should need byte fallback"

    for add_bos in (False, True):
        llama_ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        assert llama_ids == hf_ids, f"add_bos={add_bos}"
    assert llm.detokenize(hf_ids, special=True).decode("utf-8") == text
    assert hf_tokenizer.decode(hf_ids) == text


@pytest.mark.slow
def test_unsupported_architecture_raises_a_readable_error(tmp_path: Path) -> None:
    model_dir = tmp_path / "mystery"
    model_dir.mkdir()
    config = {"architectures": ["NoSuchModelForCausalLM"]}
    (model_dir / "config.json").write_text(json.dumps(config))

    with pytest.raises(GGUFConversionError) as excinfo:
        convert_to_gguf(model_dir, tmp_path / "out.gguf")

    message = str(excinfo.value)
    assert "NoSuchModelForCausalLM" in message and "not supported" in message
    assert "Traceback" not in message and len(message.splitlines()) <= 2
    assert excinfo.value.returncode not in (0, None)
    assert "NoSuchModelForCausalLM" in excinfo.value.log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mystery"], "no partial file is left"


@pytest.mark.parametrize(
    ("source", "destination", "outtype", "expected"),
    [
        ("absent", "out.gguf", "f16", "is not a directory"),
        ("empty", "out.gguf", "f16", "no config.json"),
        ("demo", "out.gguf", "q4_k_m", "unknown output type 'q4_k_m'"),
        ("demo", "empty", "f16", "is a directory, not a file path"),
    ],
)
def test_convert_rejects_bad_inputs_before_running(
    tmp_path: Path,
    demo_model_dir: Path,
    source: str,
    destination: str,
    outtype: str,
    expected: str,
) -> None:
    (tmp_path / "empty").mkdir()
    paths = {"demo": demo_model_dir}
    with pytest.raises(GGUFConversionError, match=expected):
        convert_to_gguf(
            paths.get(source, tmp_path / source),
            paths.get(destination, tmp_path / destination),
            outtype,
        )
    assert not (tmp_path / "out.gguf").exists()

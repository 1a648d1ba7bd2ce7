"""A tiny, offline, randomly initialised Llama base model for tests and demos.

:func:`build_demo_model` writes a directory that looks like a Hugging Face base
model checkpoint and stands in for a real one wherever no model hub is
available:

* ``tokenizer.model`` -- a SentencePiece BPE model trained on the given texts
  (byte fallback, so any text tokenizes; no normalisation and no dummy prefix,
  so llama.cpp and transformers split text identically);
* ``tokenizer_config.json`` -- ChatML chat template, ``<|im_end|>`` as EOS,
  no BOS token added (see below);
* ``config.json`` / ``generation_config.json`` -- a small ``LlamaForCausalLM``;
* ``model.safetensors`` -- random float32 weights, deterministic for a seed.

No ``tokenizer.json`` is written on purpose: llama.cpp's converter reads the
SentencePiece model first for Llama checkpoints, and transformers builds its
fast tokenizer from ``tokenizer.model`` on load, so both sides share a single
source of truth.

BOS handling: the chat template never emits ``<s>`` and ``add_bos_token`` is
false, so neither transformers nor llama.cpp (whose GGUF then carries
``tokenizer.ggml.add_bos_token = false``) prepends a BOS token, whatever
``add_special_tokens``/``add_bos`` says. This matches ChatML models such as
Qwen.

The weights are generated with NumPy rather than by instantiating the model in
torch: the result is identical for a given seed across torch versions, and the
build takes well under a second because neither torch nor transformers has to
be imported.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

#: ChatML, in the exact form llama.cpp recognises as its ``chatml`` template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

#: Bundled training text used when no texts are given.
DEFAULT_CORPUS = Path(__file__).parent / "assets" / "demo_corpus.txt"

# Fixed ids of the special pieces; the SentencePiece trainer is told to use them.
UNK_ID, BOS_ID, EOS_PIECE_ID, PAD_ID, IM_START_ID, IM_END_ID = range(6)
_SPECIAL_PIECES = {
    UNK_ID: "<unk>",
    BOS_ID: "<s>",
    EOS_PIECE_ID: "</s>",
    PAD_ID: "<pad>",
    IM_START_ID: IM_START,
    IM_END_ID: IM_END,
}

# Cap on the text fed to the tokenizer trainer, to keep the build fast and
# deterministic for large corpora (the first characters are used).
_MAX_CORPUS_CHARS = 2_000_000
_MAX_LINE_BYTES = 16_384
_INIT_STD = 0.02
# Files of a Hugging Face checkpoint that this builder does not write but that
# loaders would prefer to the ones it does.
_STALE_FILES = (
    "tokenizer.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "model.safetensors.index.json",
    "pytorch_model.bin",
)


@dataclass(frozen=True)
class DemoArchitecture:
    """Shape of the demo model.

    Every weight row (``hidden_size``, ``intermediate_size``) is a multiple of
    256, the k-quant block size, so the GGUF quantizes to any llama.cpp type
    (q4_k_m included) without fallbacks.
    """

    hidden_size: int = 256
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.hidden_size // self.num_attention_heads


DEMO_ARCHITECTURE = DemoArchitecture()


def build_demo_model(
    out_dir: Path,
    texts: Iterable[str] | None = None,
    *,
    vocab_size: int = 1024,
    seed: int = 0,
) -> Path:
    """Write a tiny random-weight Llama base model with a ChatML tokenizer.

    Args:
        out_dir: Directory to write into (created if missing; files of the
            same name are overwritten).
        texts: Text to train the tokenizer on; defaults to the bundled corpus
            ``workbench/assets/demo_corpus.txt``.
        vocab_size: Target vocabulary size. A corpus too small to support it
            yields a smaller vocabulary; ``config.json`` records the real size.
        seed: Seed for the weights; the same inputs give byte-identical files.

    Returns:
        ``out_dir``, ready for ``from_pretrained`` and for GGUF conversion.

    Raises:
        ValueError: If the texts are empty or ``vocab_size`` is too small for
            the special, byte and character pieces the corpus needs.
    """
    out_dir = Path(out_dir)
    if isinstance(texts, str):
        texts = [texts]
    lines = _training_lines(_read_default_corpus() if texts is None else texts)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_files(out_dir)
    real_vocab_size = _train_tokenizer(lines, vocab_size, out_dir / "tokenizer.model")
    _write_tokenizer_config(out_dir)
    _write_model_config(out_dir, DEMO_ARCHITECTURE, real_vocab_size)
    _write_generation_config(out_dir)
    _write_weights(out_dir / "model.safetensors", DEMO_ARCHITECTURE, real_vocab_size, seed)
    return out_dir


def _remove_stale_files(out_dir: Path) -> None:
    """Delete files that would override the ones written here when loading.

    A ``tokenizer.json`` left from an earlier save, for instance, would win
    over ``tokenizer.model`` in transformers but not in llama.cpp.
    """
    for name in _STALE_FILES:
        (out_dir / name).unlink(missing_ok=True)


def _read_default_corpus() -> list[str]:
    """Return the bundled demo corpus as a one-element list."""
    return [DEFAULT_CORPUS.read_text(encoding="utf-8")]


def _training_lines(texts: Iterable[str]) -> list[str]:
    """Split texts into the non-empty lines the SentencePiece trainer sees."""
    lines: list[str] = []
    budget = _MAX_CORPUS_CHARS
    for text in texts:
        for line in text.splitlines():
            if not line.strip():
                continue
            line = line[:budget]
            while len(line.encode("utf-8")) > _MAX_LINE_BYTES:
                line = line[: len(line) // 2]
            lines.append(line)
            budget -= len(line)
            if budget <= 0:
                return lines
    if not lines:
        raise ValueError("cannot train the demo tokenizer: the texts contain no non-blank lines")
    return lines


def _train_tokenizer(lines: list[str], vocab_size: int, model_path: Path) -> int:
    """Train a byte-fallback SentencePiece BPE model; return its vocabulary size."""
    import sentencepiece as spm

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type="bpe",
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            byte_fallback=True,
            character_coverage=1.0,
            # llama.cpp applies no normalisation and no dummy prefix: match it.
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            allow_whitespace_only_pieces=True,
            split_digits=True,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_PIECE_ID,
            pad_id=PAD_ID,
            pad_piece=_SPECIAL_PIECES[PAD_ID],
            user_defined_symbols=[IM_START, IM_END],
            max_sentence_length=_MAX_LINE_BYTES,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise ValueError(
            f"cannot train the demo tokenizer with vocab_size={vocab_size}: {exc}"
        ) from exc
    model_path.write_bytes(model.getvalue())
    return spm.SentencePieceProcessor(model_proto=model.getvalue()).vocab_size()


def _added_tokens_decoder() -> dict[str, dict[str, object]]:
    """Describe the special pieces the way ``tokenizer_config.json`` expects."""
    return {
        str(token_id): {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token_id, content in _SPECIAL_PIECES.items()
    }


def _write_tokenizer_config(out_dir: Path) -> None:
    """Write ``tokenizer_config.json`` (ChatML template, EOS, no BOS, no prefix space)."""
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "legacy": False,
        "bos_token": _SPECIAL_PIECES[BOS_ID],
        "eos_token": IM_END,
        "unk_token": _SPECIAL_PIECES[UNK_ID],
        "pad_token": _SPECIAL_PIECES[PAD_ID],
        "added_tokens_decoder": _added_tokens_decoder(),
        "chat_template": CHATML_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": DEMO_ARCHITECTURE.max_position_embeddings,
        "padding_side": "right",
    }
    _write_json(out_dir / "tokenizer_config.json", config)


def _write_model_config(out_dir: Path, arch: DemoArchitecture, vocab_size: int) -> None:
    """Write ``config.json`` for a ``LlamaForCausalLM`` of the given shape."""
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.intermediate_size,
        "num_hidden_layers": arch.num_hidden_layers,
        "num_attention_heads": arch.num_attention_heads,
        "num_key_value_heads": arch.num_key_value_heads,
        "head_dim": arch.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": arch.max_position_embeddings,
        "rms_norm_eps": arch.rms_norm_eps,
        "rope_theta": arch.rope_theta,
        "attention_bias": False,
        "mlp_bias": False,
        "initializer_range": _INIT_STD,
        "tie_word_embeddings": False,
        "use_cache": True,
        "bos_token_id": BOS_ID,
        "eos_token_id": IM_END_ID,
        "pad_token_id": PAD_ID,
        "dtype": "float32",
    }
    _write_json(out_dir / "config.json", config)


def _write_generation_config(out_dir: Path) -> None:
    """Write ``generation_config.json`` so generation stops at ``<|im_end|>``."""
    _write_json(
        out_dir / "generation_config.json",
        {"bos_token_id": BOS_ID, "eos_token_id": IM_END_ID, "pad_token_id": PAD_ID},
    )


def _weight_shapes(
    arch: DemoArchitecture, vocab_size: int
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Yield ``(name, shape)`` for every ``LlamaForCausalLM`` parameter, in a fixed order."""
    hidden, head_dim = arch.hidden_size, arch.head_dim
    q_size = arch.num_attention_heads * head_dim
    kv_size = arch.num_key_value_heads * head_dim
    yield "model.embed_tokens.weight", (vocab_size, hidden)
    for layer in range(arch.num_hidden_layers):
        prefix = f"model.layers.{layer}"
        yield f"{prefix}.input_layernorm.weight", (hidden,)
        yield f"{prefix}.self_attn.q_proj.weight", (q_size, hidden)
        yield f"{prefix}.self_attn.k_proj.weight", (kv_size, hidden)
        yield f"{prefix}.self_attn.v_proj.weight", (kv_size, hidden)
        yield f"{prefix}.self_attn.o_proj.weight", (hidden, q_size)
        yield f"{prefix}.post_attention_layernorm.weight", (hidden,)
        yield f"{prefix}.mlp.gate_proj.weight", (arch.intermediate_size, hidden)
        yield f"{prefix}.mlp.up_proj.weight", (arch.intermediate_size, hidden)
        yield f"{prefix}.mlp.down_proj.weight", (hidden, arch.intermediate_size)
    yield "model.norm.weight", (hidden,)
    yield "lm_head.weight", (vocab_size, hidden)


def _write_weights(path: Path, arch: DemoArchitecture, vocab_size: int, seed: int) -> None:
    """Write random float32 weights (N(0, 0.02) matrices, unit norms) as safetensors."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in _weight_shapes(arch, vocab_size):
        if len(shape) == 1:
            tensors[name] = np.ones(shape, dtype=np.float32)
        else:
            tensors[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(_INIT_STD)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _write_json(path: Path, data: dict[str, object]) -> None:
    """Write pretty-printed UTF-8 JSON with a trailing newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def ensure_demo_model(directory: Path | None = None) -> Path:
    """The tiny model for `workbench:demo-tiny`, built into the user cache on first use.

    A marker file written last tells a complete build from one interrupted half-way, which is
    rebuilt.
    """
    from workbench.paths import demo_model_dir

    target = directory or demo_model_dir()
    marker = target / ".complete"
    if not marker.exists():
        build_demo_model(target)
        marker.write_text("built by workbench\n", encoding="utf-8")
    return target

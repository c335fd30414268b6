"""Tiny random models of llama, mistral, qwen2, qwen3, gemma3 and phi3 with real tokenizers.

Each is the architecture's own transformers class at hidden size 64 with two layers and
grouped-query attention (4 heads, 2 key/value heads), and a tokenizer trained offline on a few
sentences the way its family's is: SentencePiece BPE with byte fallback (llama, mistral, gemma3,
phi3; the ``tokenizer.model`` is kept, as in the hub repositories) or byte-level BPE with
Qwen 2's pre-tokenizer (qwen2, qwen3, built with the ``tokenizers`` library). Every one has its
family's special tokens and chat template. A few MB, built in a second or two, no network.

A tokenizer trained here is not one llama.cpp recognises by its hash, so the BPE ones carry the
llama.cpp name of the pre-tokenizer they were built with (``pre_tokenizer``), which
conversion records (``locollm models convert --pre-tokenizer``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from tiny import CORPUS as _SENTENCES

# tiny.py's sentences plus one with the contractions a BPE pre-tokenizer splits
CORPUS = [*_SENTENCES,
          "Explain what a LoRA adapter is, in one sentence: it's small, isn't it? Yes."]
# Qwen 2's pre-tokenizer regex (tokenizer.json), which llama.cpp implements as "qwen2"
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
               r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
GEMMA = ("{{ bos_token }}{% for m in messages %}<start_of_turn>"
         "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}"
         "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n"
         "{% endif %}")
LLAMA2 = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] "
          "{{ m['content'] }} [/INST]{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}"
          "{% endfor %}")
PHI3 = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


@dataclass(frozen=True)
class Arch:
    """One tiny architecture: its transformers classes and its tokenizer family."""

    name: str
    model_class: str  # transformers class name
    config_class: str
    tokenizer: str  # "spm" or "bpe"
    chat_template: str
    # special tokens: role -> text (bos/eos/unk/pad), plus the chat markers
    specials: dict[str, str]
    markers: tuple[str, ...]
    tokenizer_class: str
    config: dict = field(default_factory=dict)  # architecture-specific config values
    pre_tokenizer: str | None = None  # llama.cpp pre-tokenizer of a bpe tokenizer
    add_bos: bool = True


_SPM_SPECIALS = {"unk": "<unk>", "bos": "<s>", "eos": "</s>"}
ARCHS = {
    "llama": Arch("llama", "LlamaForCausalLM", "LlamaConfig", "spm", LLAMA2, _SPM_SPECIALS,
                  ("[INST]", "[/INST]"), "LlamaTokenizer", {"tie_word_embeddings": False}),
    "mistral": Arch("mistral", "MistralForCausalLM", "MistralConfig", "spm", LLAMA2,
                    _SPM_SPECIALS, ("[INST]", "[/INST]"), "LlamaTokenizer",
                    {"sliding_window": None, "tie_word_embeddings": False}),
    "qwen2": Arch("qwen2", "Qwen2ForCausalLM", "Qwen2Config", "bpe", CHATML,
                  {"eos": "<|im_end|>", "pad": "<|endoftext|>"},
                  ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), "Qwen2Tokenizer",
                  {"tie_word_embeddings": True}, pre_tokenizer="qwen2", add_bos=False),
    "qwen3": Arch("qwen3", "Qwen3ForCausalLM", "Qwen3Config", "bpe", CHATML,
                  {"eos": "<|im_end|>", "pad": "<|endoftext|>"},
                  ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), "Qwen2Tokenizer",
                  {"tie_word_embeddings": True}, pre_tokenizer="qwen2", add_bos=False),
    "gemma3": Arch("gemma3", "Gemma3ForCausalLM", "Gemma3TextConfig", "spm", GEMMA,
                   {"pad": "<pad>", "eos": "<eos>", "bos": "<bos>", "unk": "<unk>"},
                   ("<start_of_turn>", "<end_of_turn>"), "GemmaTokenizer",
                   {"sliding_window": 32, "query_pre_attn_scalar": 16,
                    "tie_word_embeddings": True}),
    "phi3": Arch("phi3", "Phi3ForCausalLM", "Phi3Config", "spm", PHI3,
                 {**_SPM_SPECIALS, "pad": "<|endoftext|>"},
                 ("<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"), "LlamaTokenizer",
                 {"original_max_position_embeddings": 256, "tie_word_embeddings": False}),
}


def _spm_model(arch: Arch) -> bytes:
    import sentencepiece as spm

    ids = {"pad": -1, "unk": 0, "bos": 1, "eos": 2}
    if arch.name == "gemma3":  # Gemma's own order
        ids = {"pad": 0, "eos": 1, "bos": 2, "unk": 3}
    pieces = {f"{k}_piece": arch.specials.get(k, f"<{k}>") for k in ids if ids[k] >= 0}
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_writer=buf, vocab_size=420,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, split_digits=True,
        hard_vocab_limit=False, normalization_rule_name="identity",
        add_dummy_prefix=arch.name != "gemma3", remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, control_symbols=[m for m in arch.markers
                                                            if m not in pieces.values()],
        minloglevel=2, **{f"{k}_id": v for k, v in ids.items()}, **pieces)
    return buf.getvalue()


def _bpe_tokenizer(arch: Arch):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=list(arch.markers),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    return tok


def _tokenizer_config(arch: Arch, tokens: dict[str, int]) -> dict:
    config = {"tokenizer_class": arch.tokenizer_class, "add_bos_token": arch.add_bos,
              "add_eos_token": False, "model_max_length": 256,
              # SentencePiece as published (Llama 2, Mistral): a space prefix after special
              # tokens, which is what llama.cpp does too
              "legacy": True,
              "added_tokens_decoder": {
                  str(tokens[t]): {"content": t, "special": True, "lstrip": False,
                                   "rstrip": False, "normalized": False, "single_word": False}
                  for t in {*arch.markers, *arch.specials.values()} if t in tokens}}
    config.update({f"{k}_token": v for k, v in arch.specials.items()})
    if "bos" not in arch.specials:
        config["bos_token"] = None
    return config


def build_tokenizer(arch: Arch, folder: Path):
    """Write the architecture's tokenizer files to ``folder``; return the loaded tokenizer."""
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    if arch.tokenizer == "spm":
        import sentencepiece as spm

        data = _spm_model(arch)
        (folder / "tokenizer.model").write_bytes(data)
        proc = spm.SentencePieceProcessor(model_proto=data)
        tokens = {proc.id_to_piece(i): i for i in range(proc.get_piece_size())}
    else:
        tok = _bpe_tokenizer(arch)
        tok.save(str(folder / "tokenizer.json"))
        tokens = tok.get_vocab()
    config = _tokenizer_config(arch, tokens)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    (folder / "chat_template.jinja").write_text(arch.chat_template)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.save_pretrained(folder)  # adds tokenizer.json; tokenizer.model stays
    return tokenizer


def build_arch_model(name: str, folder: Path, *, seed: int = 0, std: float = 0.1) -> Path:
    """Save a randomly initialised tiny model of architecture ``name`` with its tokenizer.

    ``std`` is the weight initialisation scale: larger than a real model's so that the
    logits are peaked and a conversion error cannot hide in a flat distribution.
    """
    import torch
    import transformers

    arch = ARCHS[name]
    tokenizer = build_tokenizer(arch, folder)
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in arch.specials.items()}
    config = getattr(transformers, arch.config_class)(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=256, initializer_range=std, rms_norm_eps=1e-6,
        bos_token_id=ids.get("bos"), eos_token_id=ids.get("eos"),
        pad_token_id=ids.get("pad"), **arch.config)
    config.architectures = [arch.model_class]
    torch.manual_seed(seed)
    model = getattr(transformers, arch.model_class)(config).to(torch.float32)
    with torch.no_grad():  # random norms too, so that a wrong norm convention shows
        for pname, param in model.named_parameters():
            if "norm" in pname:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(folder)
    return folder

"""A tiny Gemma-3 model and tokenizer built in memory, for fast tests of train/export/load.

Hidden size 64, two layers, a byte-level BPE tokenizer trained on a few sentences: a few MB,
built in about a second, no network.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "### Instruction:\nAdd the numbers.\n\n### Input:\n12 + 35\n\n### Response:\n47",
    "Step 1: Add the tens. 10 + 30 = 40\nStep 2: Add the ones. 2 + 5 = 7\nThe answer is 47.",
    "Solve the following arithmetic word problem. Show your reasoning step by step.",
    "Tom has 12 apples and gets 35 more. How many apples does Tom have now?",
    "What is the capital of France? Paris. 0 1 2 3 4 5 6 7 8 9",
]


def build_tokenizer():
    """A byte-level BPE tokenizer with Gemma's special tokens (pad=0, eos=1, bos=2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>", "<bos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>")


def build_tiny_model(folder: Path) -> Path:
    """Save a randomly initialised tiny Gemma-3 and its tokenizer to ``folder``."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=512,
        sliding_window=64, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    model = Gemma3ForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

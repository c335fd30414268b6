"""A stand-in ``unsloth`` package for machines without a GPU (the tests of the unsloth backend).

It loads the model with transformers, adds LoRA with PEFT and masks prompts the way
``train_on_responses_only`` does, recording how it was called, and it accepts only the keyword
arguments the real functions take, so the backend's recipe is held to the real API.
"""

from __future__ import annotations

import importlib.machinery
import types

# Parameter names of the real API in unsloth / unsloth-zoo 2026.10.9 (the gpu extra's pin),
# read from their source: FastLanguageModel.from_pretrained, FastLlamaModel.get_peft_model
# (which FastLanguageModel.get_peft_model forwards to) and train_on_responses_only. The
# stand-in refuses any other keyword, so a misspelt or removed argument fails here.
FROM_PRETRAINED = {
    "model_name", "max_seq_length", "dtype", "load_in_4bit", "load_in_8bit", "load_in_16bit",
    "full_finetuning", "token", "device_map", "device_map_planner_kwargs", "rope_scaling",
    "fix_tokenizer", "trust_remote_code", "use_gradient_checkpointing", "resize_model_vocab",
    "revision", "use_exact_model_name", "offload_embedding", "float32_mixed_precision",
    "fast_inference", "gpu_memory_utilization", "float8_kv_cache", "random_state",
    "max_lora_rank", "disable_log_stats", "qat_scheme", "load_in_fp8", "unsloth_tiled_mlp",
    "text_only", "on_model_resolved"}
GET_PEFT_MODEL = {
    "r", "target_modules", "lora_alpha", "lora_dropout", "bias", "layers_to_transform",
    "layers_pattern", "finetune_last_n_layers", "use_gradient_checkpointing", "random_state",
    "max_seq_length", "use_rslora", "modules_to_save", "init_lora_weights", "loftq_config",
    "temporary_location", "qat_scheme", "target_parameters", "ensure_weight_tying",
    "offload_layers", "checkpoint_skip_layers"}
RESPONSES_ONLY = {"instruction_part", "response_part", "force_match", "tokenizer",
                  "return_function", "num_proc", "last_response_only", "mask_out_tokens"}


def _real_keywords(api: str, given: dict, known: set[str]) -> None:
    unknown = set(given) - known
    if unknown:
        raise TypeError(f"{api}() got unexpected keyword argument(s) {sorted(unknown)}")


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module


def _mask_answers(trainer, response_part: str):
    """What Unsloth's train_on_responses_only does: labels only after the response marker."""
    from transformers import DataCollatorForSeq2Seq

    tokenizer = trainer.processing_class
    marker = tokenizer(response_part, add_special_tokens=False).input_ids

    def mask(batch):
        out = []
        for ids in batch["input_ids"]:
            start = next(j + len(marker) for j in range(len(ids))
                         if ids[j:j + len(marker)] == marker)
            out.append([-100] * start + ids[start:])
        return {"labels": out}

    trainer.train_dataset = trainer.train_dataset.map(mask, batched=True)
    if trainer.eval_dataset is not None:
        trainer.eval_dataset = trainer.eval_dataset.map(mask, batched=True)
    trainer.data_collator = DataCollatorForSeq2Seq(tokenizer=tokenizer)
    return trainer


def build(calls: dict) -> dict[str, types.ModuleType]:
    """The modules to put into ``sys.modules``; ``calls`` collects the arguments they got."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    class FastLanguageModel:
        @staticmethod
        def from_pretrained(model_name, **kwargs):
            _real_keywords("from_pretrained", kwargs, FROM_PRETRAINED)
            calls["from_pretrained"] = {"model_name": model_name, **kwargs}
            return (AutoModelForCausalLM.from_pretrained(model_name),
                    AutoTokenizer.from_pretrained(model_name))

        @staticmethod
        def get_peft_model(model, r, target_modules, lora_alpha, lora_dropout, bias,
                           **kwargs):
            _real_keywords("get_peft_model", kwargs, GET_PEFT_MODEL)
            calls["get_peft_model"] = {"r": r, "lora_alpha": lora_alpha, **kwargs}
            return get_peft_model(model, LoraConfig(
                r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, bias=bias,
                target_modules=target_modules, task_type="CAUSAL_LM"))

    def train_on_responses_only(trainer, instruction_part=None, response_part=None, **kwargs):
        _real_keywords("train_on_responses_only", kwargs, RESPONSES_ONLY)
        calls["train_on_responses_only"] = {"instruction_part": instruction_part,
                                            "response_part": response_part}
        return _mask_answers(trainer, response_part)

    unsloth = _module("unsloth")
    unsloth.FastLanguageModel = FastLanguageModel
    templates = _module("unsloth.chat_templates")
    templates.train_on_responses_only = train_on_responses_only
    unsloth.chat_templates = templates
    return {"unsloth": unsloth, "unsloth.chat_templates": templates}



"""PEFT adapters on Hugging Face models for tests, without training, and an Ollama Modelfile
parser.

``make_peft_adapter`` writes a real PEFT LoRA (random A and B, so it changes the output like a
trained one) with the adapter folder's ``locollm.json``; ``parse_modelfile`` reads a Modelfile
the way Ollama's own parser (``parser/parser.go``) does, to check what Ollama will see.
"""

from __future__ import annotations

import json
from pathlib import Path


def make_peft_adapter(folder: Path, model_dir: Path, *, base_name: str | None = None,
                      rank: int = 4, alpha: int = 8, std: float = 0.2, seed: int = 0,
                      config: dict | None = None, base_sha256: str | None = None) -> Path:
    """A PEFT LoRA on every linear layer of ``model_dir`` plus its locollm.json.

    Args:
        base_name: how the metadata names the base (default: ``model_dir`` as a path).
        config: extra LoraConfig fields (use_rslora, alpha_pattern, ...).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from locollm.adapter.meta import AdapterMeta
    from locollm.prompt import format_for_tokenizer
    from locollm.train.loading import torch_env

    torch_env()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = LoraConfig(**{"r": rank, "lora_alpha": alpha, "target_modules": "all-linear",
                         "lora_dropout": 0.0, **(config or {})})
    peft_model = get_peft_model(model, lora)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(folder)
    (folder / "README.md").unlink(missing_ok=True)
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base_name or str(model_dir)
    config_file.write_text(json.dumps(config, indent=2))
    fmt = format_for_tokenizer(AutoTokenizer.from_pretrained(model_dir))
    arch = json.loads((model_dir / "config.json").read_text())["model_type"]
    AdapterMeta(name=folder.name, base_model=base_name or str(model_dir),
                base_sha256=base_sha256, architecture=arch.replace("_text", ""),
                lora_rank=rank, lora_alpha=alpha, target_modules=sorted(lora.target_modules),
                prompt_format=fmt.name, stop=list(fmt.stop),
                created="2026-03-01T10:00:00+00:00").save(folder)
    return folder


def rig_to_emit(model_dir: Path, token: int) -> Path:
    """Set a tiny untied model's weights so that it predicts ``token`` at every position.

    Every embedding row is the same vector and every block writes nothing to the residual
    stream (zero output projections), so the final hidden state is one fixed vector; the
    output row of ``token`` is made to align with it.
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        model.get_input_embeddings().weight.fill_(1.0)
        for name, param in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                param.zero_()
        head = model.get_output_embeddings().weight
        head.normal_(0, 0.01)
        head[token] = 5.0
    model.save_pretrained(model_dir)
    return model_dir


def _unquote(s: str) -> tuple[str, bool]:
    if s.startswith('"""'):
        return (s[3:-3], True) if len(s) >= 6 and s.endswith('"""') else ("", False)
    if s.startswith('"'):
        return (s[1:-1], True) if len(s) >= 2 and s.endswith('"') else ("", False)
    return s, True


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(command, argument) pairs as Ollama's parser reads them (its state machine: a value
    runs to the end of the line unless a quote is still open; ``PARAMETER`` names the
    parameter as the command)."""
    commands: list[tuple[str, str]] = []
    state, buf, name = "nil", "", ""
    for ch in text + "\n":
        if state == "nil":
            if ch == "#":
                state = "comment"
            elif ch not in " \t\r\n":
                state, buf = "name", ch
        elif state == "comment":
            if ch in "\r\n":
                state = "nil"
        elif state == "name":
            if ch.isalpha():
                buf += ch
            elif ch in " \t":
                name = buf.lower()
                state, buf = ("parameter" if name == "parameter" else "value"), ""
            else:
                raise ValueError(f"invalid command {buf!r}")
        elif state == "parameter":
            if ch.isalnum() or ch == "_":
                buf += ch
            elif ch in " \t":
                name, state, buf = buf, "value", ""
            else:
                raise ValueError("parameter without a value")
        elif state == "value":
            if ch in "\r\n":
                value, ok = _unquote(buf.strip())
                if not ok:
                    buf += ch
                    continue
                commands.append(("model" if name == "from" else name, value))
                state, buf = "nil", ""
            else:
                buf += ch
    if state not in ("nil", "comment"):
        raise ValueError("unexpected end of file")
    return commands

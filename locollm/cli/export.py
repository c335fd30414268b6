"""``locollm export``: the LoRA GGUF, merged GGUF or safetensors, what runs them, their checks."""

from __future__ import annotations

from pathlib import Path

import click

from .common import handle_errors


@click.command()
@click.argument("adapter")
@click.option("--gguf/--no-gguf", default=True, help="Write the LoRA-only GGUF (default on).")
@click.option("--merged", is_flag=True, help="Also write a merged, quantized model GGUF.")
@click.option("--quant", type=click.Choice(["q4_k_m", "q5_k_m", "q8_0", "f16"]),
              default="q4_k_m", show_default=True, help="Quantization of the merged GGUF.")
@click.option("--merged-hf", type=click.Path(path_type=Path),
              help="Also write merged float32 safetensors to this folder.")
@click.option("--verify", is_flag=True,
              help="Check each export against transformers, and that generation stops.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Path of the LoRA GGUF (default ADAPTER/adapter.gguf).")
@click.option("--base-model", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Base GGUF the LoRA will run on (default: the adapter's base, a Hugging "
                   "Face one converted once).")
@click.option("--pre-tokenizer", help="llama.cpp pre-tokenizer name for a Hugging Face base "
              "whose BPE tokenizer it does not recognise (e.g. qwen2).")
@click.option("--vllm", "vllm_script", type=click.Path(path_type=Path), is_flag=False,
              flag_value=Path("serve_vllm.sh"), default=None, help="Write the `vllm serve` "
              "command for ADAPTER (comma-separated: several) to this script "
              "(default serve_vllm.sh) instead of exporting.")
@handle_errors
def export(adapter: str, gguf: bool, merged: bool, quant: str, merged_hf: Path | None,
           verify: bool, output: Path | None, base_model: Path | None,
           pre_tokenizer: str | None, vllm_script: Path | None) -> None:
    """Export ADAPTER (a folder or a domain under adapters/) for llama.cpp.

    The LoRA GGUF hot-swaps on the shared base; the merged GGUF is one self-contained
    quantized model. Works for a GGUF base and a Hugging Face one alike; next to each export
    go an Ollama Modelfile (Modelfile, Modelfile.merged) and a llama-server script. No
    llama.cpp clone or compiler is needed.

    \b
    Examples:
      locollm export math --gguf --verify
      locollm export math --merged --quant q4_k_m --verify
      locollm export my-qwen --gguf --merged --quant q4_k_m --verify
      locollm export my-qwen --base-model qwen2.5-3b-instruct-q4_k_m.gguf
      locollm export adapters/math --no-gguf --merged-hf merged/
      locollm export math,units --vllm
    """
    if vllm_script is not None:
        return _vllm(adapter, vllm_script)
    from ..adapter.meta import resolve_adapter
    from ..export.pipeline import ExportOptions, export_adapter

    options = ExportOptions(gguf, merged, quant, merged_hf, verify, output, base_model,
                            pre_tokenizer)
    export_adapter(resolve_adapter(adapter), options, on_result=_print)


def _print(item) -> None:
    if item.what in ("lora", "merged"):
        kind = "LoRA GGUF" if item.what == "lora" else "merged GGUF"
        click.echo(f"{kind} written to {item.path} ({item.path.stat().st_size / 1e6:.1f} MB)")
    elif item.what == "runners":
        click.echo(f"  Ollama: ollama create NAME -f {item.path}")
        click.echo(f"  llama.cpp server: sh {item.extra}")
    elif item.what == "merged-hf":
        click.echo(f"merged safetensors written to {item.path}")
    elif item.what == "stops":
        r = item.report
        click.echo(f"  generation stops: an answer ends with {r.end_text or r.token_text!r}, "
                   f"an end-of-generation token (id {r.token})")
    elif item.what == "verify":
        click.echo("  " + _agreement(item.report))


def _agreement(r) -> str:
    if r.what == "lora":
        base = r.base
        return (f"verified LoRA GGUF: logit-change correlation {r.delta_correlation:.4f}, "
                f"top-1 agreement {r.top1_agreement:.3f} (base GGUF alone "
                f"{base.top1_agreement:.3f}, tokens in common {base.token_agreement:.3f}) "
                f"over {r.n_positions} positions")
    line = (f"verified merged GGUF against the PEFT adapter: change correlation "
            f"{r.delta_correlation:.3f}, keeps {r.effect_kept:.0%} of its effect (KL "
            f"{r.kl:.4f}, the bare base's {r.effect_kl:.4f}), top-1 agreement "
            f"{r.top1_agreement:.3f} (bare base {r.base_top1_agreement:.3f}) over "
            f"{r.n_positions} positions")
    if r.effect_kept is not None and r.effect_kept < 0.5:
        line += ("\n  note: this quantization keeps under half of the adapter's effect; "
                 "--quant q8_0 keeps more")
    return line


def _vllm(adapters: str, script: Path) -> None:
    """Print and write the vLLM multi-LoRA command for the comma-separated ``adapters``."""
    from ..adapter.meta import resolve_adapter
    from ..export.vllm import vllm_plan, write_script

    plan = vllm_plan([resolve_adapter(a.strip()) for a in adapters.split(",") if a.strip()])
    click.echo(plan.command)
    click.echo(f"written to {write_script(plan, script)}", err=True)

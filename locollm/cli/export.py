"""``locollm export``: the LoRA GGUF, merged GGUF or safetensors, each optionally verified."""

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
@click.option("--verify", is_flag=True, help="Check each export numerically.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Path of the LoRA GGUF (default ADAPTER/adapter.gguf).")
@click.option("--vllm", "vllm_script", type=click.Path(path_type=Path), is_flag=False,
              flag_value=Path("serve_vllm.sh"), default=None, help="Write the `vllm serve` "
              "command for ADAPTER (comma-separated: several) to this script "
              "(default serve_vllm.sh) instead of exporting.")
@handle_errors
def export(adapter: str, gguf: bool, merged: bool, quant: str, merged_hf: Path | None,
           verify: bool, output: Path | None, vllm_script: Path | None) -> None:
    """Export ADAPTER (a folder or a domain under adapters/) for llama.cpp.

    The LoRA GGUF hot-swaps on the shared base; the merged GGUF is one self-contained
    quantized model. No llama.cpp clone or compiler is needed.

    \b
    Examples:
      locollm export math --gguf --verify
      locollm export math --merged --quant q4_k_m --verify
      locollm export adapters/math --no-gguf --merged-hf merged/
      locollm export math,units --vllm
    """
    if vllm_script is not None:
        return _vllm(adapter, vllm_script)
    from ..adapter.meta import resolve_adapter
    from ..export.lora import export_lora_gguf
    from ..export.merged import export_merged, export_merged_hf
    from ..export.verify import verify_export, verify_merged

    folder = resolve_adapter(adapter)
    if gguf:
        path = export_lora_gguf(folder, output)
        click.echo(f"LoRA GGUF written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
        if verify:
            r = verify_export(folder)
            click.echo(f"verified LoRA GGUF: logit-change correlation {r.delta_correlation:.4f}"
                       f", top-1 agreement {r.top1_agreement:.3f} (base alone "
                       f"{r.base_top1_agreement:.3f}) over {r.n_positions} positions")
    if merged:
        path = export_merged(folder, quant=quant)
        click.echo(f"merged {quant.upper()} GGUF written to {path} "
                   f"({path.stat().st_size / 1e6:.1f} MB)")
        if verify:
            r = verify_merged(folder, path)
            click.echo(f"verified merged GGUF against base + LoRA: top-1 agreement "
                       f"{r.top1_agreement:.3f} (bare base {r.base_top1_agreement:.3f}), "
                       f"logit-change correlation {r.delta_correlation:.4f} over "
                       f"{r.n_positions} positions")
    if merged_hf:
        path = export_merged_hf(folder, merged_hf)
        click.echo(f"merged safetensors written to {path}")


def _vllm(adapters: str, script: Path) -> None:
    """Print and write the vLLM multi-LoRA command for the comma-separated ``adapters``."""
    from ..adapter.meta import resolve_adapter
    from ..export.vllm import vllm_plan, write_script

    plan = vllm_plan([resolve_adapter(a.strip()) for a in adapters.split(",") if a.strip()])
    click.echo(plan.command)
    click.echo(f"written to {write_script(plan, script)}", err=True)

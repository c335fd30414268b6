"""Export speed and agreement: the LoRA GGUF, the merged Q4_K_M, and conversion per architecture.

On the embedded Gemma 3 270M with a rank-16 PEFT adapter on all seven projections of every
layer (random weights: speed does not depend on what they learned), it measures

1. the LoRA GGUF: locollm's in-process writer against llama.cpp's own convert_lora_to_gguf.py
   (which it must equal, tests/test_hf_roundtrip.py), run in the same process;
2. the merged Q4_K_M: the tensor-level merge on the base GGUF (what ``export --merged`` does
   for a GGUF base) against the Hugging Face route (PEFT merge, llama.cpp's converter,
   quantize: what it does for a Hugging Face base), with the merged file's agreement with the
   PEFT adapter in transformers for each;
3. per architecture (tiny llama, mistral, qwen2, qwen3, gemma3, phi3 of tests/tiny_archs.py):
   conversion time, and the agreement of the converted base, the LoRA GGUF and the merged GGUF
   with transformers.

Targets (issue 8): the LoRA GGUF under 2 s, the merged Q4_K_M under 30 s.

Usage: .venv/bin/python bench/export_speed.py [--skip-archs] [--skip-hf-merge]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # helpers: PEFT adapters and tiny models, no training

from helpers_hf import make_peft_adapter  # noqa: E402
from tiny_archs import ARCHS, build_arch_model  # noqa: E402

from locollm.export.convert import convert_folder  # noqa: E402
from locollm.export.lora import export_lora_gguf  # noqa: E402
from locollm.export.merged import _merged_from_hf, export_merged  # noqa: E402
from locollm.export.verify import verify_base, verify_export, verify_merged  # noqa: E402
from locollm.models import resolve, training_dir  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def gemma(tmp: Path, skip_hf_merge: bool) -> None:
    base = resolve("gemma-3-270m")
    folder = training_dir(base)
    adapter = make_peft_adapter(tmp / "r16", folder, base_name="gemma-3-270m", rank=16,
                                alpha=32, std=0.02, base_sha256=base.sha256)
    _, ours = timed(lambda: export_lora_gguf(adapter, tmp / "ours.gguf", writer="locollm"))
    _, theirs = timed(lambda: export_lora_gguf(adapter, tmp / "theirs.gguf",
                                               writer="llama.cpp"))
    print(f"LoRA GGUF, rank 16, 7 projections x 18 layers of Gemma 3 270M:\n"
          f"  locollm writer      {ours:6.2f} s   (target < 2 s)\n"
          f"  llama.cpp converter {theirs:6.2f} s   ratio {theirs / ours:.1f}x")
    export_lora_gguf(adapter)
    lora = verify_export(adapter)
    print(f"  agreement with PEFT: logit-change correlation {lora.delta_correlation:.4f}, "
          f"top-1 {lora.top1_agreement:.3f} over {lora.n_positions} positions")
    merged, tensor = timed(lambda: export_merged(adapter, tmp / "m.gguf", quant="q4_k_m"))
    m = verify_merged(adapter, merged)
    print(f"merged Q4_K_M of Gemma 3 270M:\n"
          f"  tensor merge on the GGUF  {tensor:6.1f} s   (target < 30 s); change correlation "
          f"{m.delta_correlation:.3f}, keeps {m.effect_kept:.0%} of the adapter's effect, "
          f"top-1 {m.top1_agreement:.3f} (bare base {m.base_top1_agreement:.3f})")
    if not skip_hf_merge:
        as_hf = dataclasses.replace(base, gguf=None, hf_dir=folder)  # the HF-base route
        merged_hf, route = timed(lambda: _merged_from_hf(adapter, as_hf, tmp / "mhf.gguf",
                                                         "q4_k_m", None))
        h = verify_merged(adapter, merged_hf)
        print(f"  Hugging Face route        {route:6.1f} s   ratio {route / tensor:.1f}x; change "
              f"correlation {h.delta_correlation:.3f}, keeps {h.effect_kept:.0%}, top-1 "
              f"{h.top1_agreement:.3f}")
    out, conv = timed(lambda: convert_folder(folder, tmp / "g.gguf", "q8_0"))
    b = verify_base(folder, out)
    print(f"Gemma 3 270M dequantized folder -> Q8_0 GGUF: {conv:.1f} s; against transformers "
          f"top-1 {b.top1_agreement:.3f}, KL {b.kl:.4f}, tokens in common "
          f"{b.token_agreement:.3f}")


def archs(tmp: Path) -> None:
    print("per architecture (tiny models, float32 conversion):")
    print(f"  {'arch':8} {'convert':>8} {'base top-1':>11} {'base KL':>9} {'LoRA corr':>10} "
          f"{'merged kept':>12}")
    for name, arch in ARCHS.items():
        folder = build_arch_model(name, tmp / name / "model")
        out, seconds = timed(lambda f=folder, a=arch, t=tmp / name / "f32.gguf": convert_folder(
            f, t, "f32", pre_tokenizer=a.pre_tokenizer))
        base = verify_base(folder, out)
        adapter = make_peft_adapter(tmp / name / "ad", folder)
        export_lora_gguf(adapter)
        lora = verify_export(adapter, base_gguf=out)
        merged = export_merged(adapter, tmp / name / "m.gguf", quant="f32",
                               pre_tokenizer=arch.pre_tokenizer)
        kept = verify_merged(adapter, merged, base_gguf=out).effect_kept
        print(f"  {name:8} {seconds:7.1f}s {base.top1_agreement:11.3f} {base.kl:9.2e} "
              f"{lora.delta_correlation:10.5f} {kept:11.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-archs", action="store_true")
    parser.add_argument("--skip-hf-merge", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="locollm-bench-") as tmp:
        gemma(Path(tmp), opts.skip_hf_merge)
        if not opts.skip_archs:
            archs(Path(tmp))


if __name__ == "__main__":
    main()

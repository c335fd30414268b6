"""Are rows decoded together bit-identical to rows decoded alone? base and a random LoRA."""
import sys, tempfile, ctypes
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/wt-perf/tests")
import llama_cpp
from helpers_adapters import make_adapter
from locollm.models import resolve
from locollm.prompt import format_prompt
from locollm.adapter.meta import lora_gguf_path
from locollm.runtime.engine import Engine, EngineConfig

base = resolve("gemma-3-270m")
tmp = Path(tempfile.mkdtemp())
make_adapter(tmp / "units", base, rank=8, std=0.02, seed=5, modules=("q_proj", "k_proj", "v_proj", "o_proj"))
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
print(llama_cpp.llama_print_system_info().decode())
eng = Engine(base.gguf, EngineConfig(n_ctx=512, n_seq_max=8, n_threads=threads))
eng.load_adapter("units", lora_gguf_path(tmp / "units"))
qs = ["Name a colour.", "What is 12 times 7?", "Write a haiku about rain.", "Who wrote Hamlet?",
      "Convert 5 km to metres.", "Explain gravity briefly.", "List three fruits.", "What is the capital of France?"]
def logits(i):
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(eng._ctx.ctx, i), shape=(eng.n_vocab,)).copy()
for key in [(), (("units", 1.0),)]:
    prompts = [eng.tokenize(format_prompt(q)) for q in qs]
    eng.clear_memory()
    for s, p in enumerate(prompts):
        eng.decode(key, [(s, p, 0)])
    for k in (2, 4, 8):
        alone = []
        for s in range(k):
            idx = eng.decode(key, [(s, [200], len(prompts[s]))])[0]
            alone.append(logits(idx))
            eng.forget(s, len(prompts[s]))
        idx = eng.decode(key, [(s, [200], len(prompts[s])) for s in range(k)])
        together = [logits(i) for i in idx]
        for s in range(k):
            eng.forget(s, len(prompts[s]))
        diffs = [float(np.abs(a - b).max()) for a, b in zip(alone, together)]
        argm = sum(int(a.argmax() != b.argmax()) for a, b in zip(alone, together))
        print(f"adapters={key!r:22} k={k}: max|diff| per row {['%.2g' % d for d in diffs]}, argmax changed {argm}")
eng.close()

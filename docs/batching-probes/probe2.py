import sys, tempfile
from pathlib import Path
import numpy as np
import llama_cpp
from locollm.models import resolve
from locollm.prompt import format_prompt
from locollm.runtime.engine import Engine, EngineConfig
base = resolve("gemma-3-270m")
threads = int(sys.argv[1]); same = sys.argv[2] == "same"
eng = Engine(base.gguf, EngineConfig(n_ctx=512, n_seq_max=8, n_threads=threads))
qs = ["Name a colour.", "What is 12 times 7?", "Write a haiku about rain.", "Who wrote Hamlet?",
      "Convert 5 km to metres.", "Explain gravity briefly.", "List three fruits.", "What is the capital of France?"]
if same: qs = [qs[1]] * 8
def logits(i):
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(eng._ctx.ctx, i), shape=(eng.n_vocab,)).copy()
prompts = [eng.tokenize(format_prompt(q)) for q in qs]
print("prompt lengths", [len(p) for p in prompts])
for s, p in enumerate(prompts):
    eng.decode((), [(s, p, 0)])
alone = []
for s in range(8):
    idx = eng.decode((), [(s, [200], len(prompts[s]))])[0]
    alone.append(logits(idx)); eng.forget(s, len(prompts[s]))
for seqs in [range(0,2), range(0,3), range(0,4), range(0,5), range(0,6), range(0,7), range(0,8), range(4,8), range(1,6), [1,5]]:
    idx = eng.decode((), [(s, [200], len(prompts[s])) for s in seqs])
    out = {s: float(np.abs(logits(i) - alone[s]).max()) for s, i in zip(seqs, idx)}
    for s in seqs: eng.forget(s, len(prompts[s]))
    print(list(seqs), {s: f"{d:.2g}" for s, d in out.items()})

"""First graph node whose row for one sequence differs between decoding it alone and in a batch of 8."""
import ctypes, sys, glob
import numpy as np
import llama_cpp
from locollm.models import resolve
from locollm.prompt import format_prompt
from locollm.runtime import engine as E

lib = ctypes.CDLL(glob.glob(llama_cpp.__path__[0] + "/lib/libggml-base.so")[0])
lib.ggml_get_name.restype = ctypes.c_char_p; lib.ggml_get_name.argtypes = [ctypes.c_void_p]
lib.ggml_op_desc.restype = ctypes.c_char_p; lib.ggml_op_desc.argtypes = [ctypes.c_void_p]
lib.ggml_get_data.restype = ctypes.c_void_p; lib.ggml_get_data.argtypes = [ctypes.c_void_p]
lib.ggml_is_contiguous.restype = ctypes.c_bool; lib.ggml_is_contiguous.argtypes = [ctypes.c_void_p]
REC = {"on": False, "rows": []}
@llama_cpp.ggml_backend_sched_eval_callback
def cb(t, ask, _u):
    if ask: return True
    if not REC["on"]: return True
    typ = ctypes.c_int.from_address(t).value
    ne = (ctypes.c_int64 * 4).from_address(t + 16)
    name = lib.ggml_get_name(t).decode(); op = lib.ggml_op_desc(t).decode()
    if typ == 0 and lib.ggml_is_contiguous(t):
        n = ne[0] * ne[1] * ne[2] * ne[3]
        a = np.ctypeslib.as_array((ctypes.c_float * n).from_address(lib.ggml_get_data(t))).copy()
        REC["rows"].append((name, op, tuple(ne), a.reshape(ne[3], ne[2], ne[1], ne[0])))
    return True
orig = llama_cpp.llama_context_default_params
def patched():
    p = orig(); p.cb_eval = cb; return p
llama_cpp.llama_context_default_params = patched

base = resolve("gemma-3-270m")
eng = E.Engine(base.gguf, E.EngineConfig(n_ctx=512, n_seq_max=8, n_threads=1))
p = eng.tokenize(format_prompt("What is 12 times 7?"))
for s in range(8):
    eng.decode((), [(s, p, 0)])
def run(seqs):
    REC["rows"] = []; REC["on"] = True
    eng.decode((), [(s, [200], len(p)) for s in seqs])
    REC["on"] = False
    for s in seqs: eng.forget(s, len(p))
    return REC["rows"]
one = run([0]); batch = run(list(range(int(sys.argv[1]) if len(sys.argv) > 1 else 8)))
print(len(one), len(batch))
shown = 0
for (n1, o1, ne1, a1), (n8, o8, ne8, a8) in zip(one, batch):
    if n1 != n8: print("graph differs at", n1, n8); break
    # token dim: the one that is 1 alone and k batched
    dims = [i for i in range(4) if ne1[i] != ne8[i]]
    if not dims:
        same = np.array_equal(a1, a8)
        desc = "same shape"
    else:
        d = dims[0]; axis = 3 - d
        a8r = np.take(a8, [0], axis=axis)
        same = a1.shape == a8r.shape and np.array_equal(a1, a8r)
        desc = f"token dim ne[{d}]"
    if not same:
        print(f"DIFF {n1:24} {o1:12} alone {ne1} batch {ne8} ({desc})")
        shown += 1
        if shown > 8: break
print("done")

#!/usr/bin/python3
"""Training throughput of the same tiny LLaMA in PyTorch eager (CPU), for docs/BENCHMARKS.md "Training".

Same model code as tools/train_golden.py (plain torch), random byte tokens, AdamW + clipping, float32.
Prints one JSON line: {"threads", "tokens_per_s", ...}. Run with Debian's python3-torch:
  /usr/bin/python3 tools/train_bench.py --threads 2 --dim 128 --layers 4 --heads 4 --kv-heads 2 --ffn 352 --context 128 --batch 8
"""
import argparse, importlib.util, json, os, time
import torch
import torch.nn.functional as F

spec = importlib.util.spec_from_file_location("train_golden", os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_golden.py"))
g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)

ap = argparse.ArgumentParser()
for k, v in [("threads", 1), ("dim", 128), ("layers", 4), ("heads", 4), ("kv-heads", 2), ("ffn", 352), ("context", 128), ("batch", 8), ("vocab", 256), ("steps", 20), ("warmup", 3)]:
    ap.add_argument("--" + k, type=int, default=v)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.use_deterministic_algorithms(False)
cfg = {"vocab": a.vocab, "dim": a.dim, "layers": a.layers, "heads": a.heads, "kv_heads": a.kv_heads, "ffn": a.ffn,
       "context": a.context, "rope_theta": 10000.0, "norm_eps": 1e-5, "tied": True}
gen = torch.Generator().manual_seed(1)
p = g.llama_params(cfg, gen)
del p["lm_head.weight"]
def fwd(p, cfg, idx):  # tied head
    p2 = dict(p); p2["lm_head.weight"] = p["model.embed_tokens.weight"]
    return g.llama_forward(p2, cfg, idx)
opt = torch.optim.AdamW(list(p.values()), lr=1e-3)
B, T, V = a.batch, a.context, a.vocab
def step():
    idx = torch.randint(0, V, (B, T + 1), generator=gen)
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(fwd(p, cfg, idx[:, :T]).reshape(-1, V), idx[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
    opt.step()
for _ in range(a.warmup): step()
t0 = time.perf_counter()
for _ in range(a.steps): step()
dt = time.perf_counter() - t0
print(json.dumps({"peer": "pytorch-eager", "torch": torch.__version__, "threads": a.threads, "tokens_per_s": B * T * a.steps / dt,
                  "params": sum(v.numel() for v in p.values())}))

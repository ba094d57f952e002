#!/usr/bin/python3
"""Golden data for SharpLM's training code, made with plain PyTorch (no transformers).

Builds a tiny LLaMA (RMSNorm, rotate-half RoPE, GQA, SwiGLU, untied head) and a tiny GPT-2 (learned positions,
LayerNorm, GELU tanh, tied head), and for each writes tests/testdata/training/<arch>.golden; also LLaMA variants of the
lab (llama-post, llama-deepnorm, llama-sparse, llama-sliding: config keys norm_placement, sparse, sliding_window):
  the weights, one batch, the logits, the loss, every parameter gradient, and the losses of 10 AdamW steps with
  linear warmup + cosine decay, decoupled weight decay (matrices only) and global-norm gradient clipping.

File layout (little-endian): magic b"SLMTGOLD", int32 version, int32 n = JSON header length, n bytes of UTF-8 JSON,
then float32 data. The header lists tensors as {"name", "shape", "offset"} (offset in floats into the data).

Run with Debian's python3-torch:  /usr/bin/python3 tools/train_golden.py
"""
import json, math, os, struct, sys
import torch
import torch.nn.functional as F

MAGIC = b"SLMTGOLD"
VERSION = 1
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "testdata", "training")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def keeps(i, j, cfg):
    """Whether query position i attends key j: causal, then the sliding window, then the sparse pattern
    (local |i-j| < w, (i-j) % stride == 0, global first g tokens; the query itself always), as SharpLM defines them."""
    if j > i:
        return False
    sw = cfg.get("sliding_window")
    if sw and j <= i - sw:
        return False
    sp = cfg.get("sparse")
    if sp:
        w, st, g = sp
        return i == j or (w > 0 and abs(i - j) < w) or (st > 0 and (i - j) % st == 0) or j < g or i < g
    return True


def attention(q, k, v, causal=True, cfg=None):
    # q (B,NH,T,HS), k/v (B,NH,T,HS) after GQA repeat
    hs = q.shape[-1]
    t = q.shape[2]
    s = q @ k.transpose(-2, -1) / math.sqrt(hs)
    if causal:
        cfg = cfg or {}
        mask = torch.tensor([[not keeps(i, j, cfg) for j in range(t)] for i in range(t)], dtype=torch.bool)
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def llama_params(cfg, gen):
    V, C, L, NH, KVH, FF = cfg["vocab"], cfg["dim"], cfg["layers"], cfg["heads"], cfg["kv_heads"], cfg["ffn"]
    HS = C // NH
    p = {}
    def w(*shape, std=0.1):
        return (torch.randn(*shape, generator=gen) * std)
    p["model.embed_tokens.weight"] = w(V, C, std=0.5)
    for i in range(L):
        pre = f"model.layers.{i}."
        p[pre + "input_layernorm.weight"] = 1 + w(C)
        p[pre + "self_attn.q_proj.weight"] = w(NH * HS, C, std=0.3)
        p[pre + "self_attn.k_proj.weight"] = w(KVH * HS, C, std=0.3)
        p[pre + "self_attn.v_proj.weight"] = w(KVH * HS, C, std=0.3)
        p[pre + "self_attn.o_proj.weight"] = w(C, NH * HS, std=0.2)
        p[pre + "post_attention_layernorm.weight"] = 1 + w(C)
        p[pre + "mlp.gate_proj.weight"] = w(FF, C, std=0.3)
        p[pre + "mlp.up_proj.weight"] = w(FF, C, std=0.3)
        p[pre + "mlp.down_proj.weight"] = w(C, FF, std=0.2)
    p["model.norm.weight"] = 1 + w(C)
    p["lm_head.weight"] = w(V, C, std=0.3)
    return {k: v.float().requires_grad_(True) for k, v in p.items()}


def llama_forward(p, cfg, idx):
    V, C, L, NH, KVH = cfg["vocab"], cfg["dim"], cfg["layers"], cfg["heads"], cfg["kv_heads"]
    HS = C // NH
    eps = cfg["norm_eps"]
    B, T = idx.shape
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, HS, 2, dtype=torch.int64).float() / HS))
    ang = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x = p["model.embed_tokens.weight"][idx]
    placement = cfg.get("norm_placement", "pre")
    alpha = (2.0 * L) ** 0.25 if placement == "deepnorm" else 1.0

    def attn(pre, h):
        q = (h @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, NH, HS).transpose(1, 2)
        k = (h @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, KVH, HS).transpose(1, 2)
        v = (h @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, KVH, HS).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(NH // KVH, dim=1)
        v = v.repeat_interleave(NH // KVH, dim=1)
        y = attention(q, k, v, cfg=cfg).transpose(1, 2).reshape(B, T, NH * HS)
        return y @ p[pre + "self_attn.o_proj.weight"].T

    def mlp(pre, h):
        return (F.silu(h @ p[pre + "mlp.gate_proj.weight"].T) * (h @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T

    for i in range(L):
        pre = f"model.layers.{i}."
        if placement == "pre":
            x = x + attn(pre, rms_norm(x, p[pre + "input_layernorm.weight"], eps))
            x = x + mlp(pre, rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps))
        else:
            # post-norm / DeepNorm: x = RMSNorm(alpha*x + f(x)), the sublayer reads x itself; the final norm is kept
            x = rms_norm(alpha * x + attn(pre, x), p[pre + "input_layernorm.weight"], eps)
            x = rms_norm(alpha * x + mlp(pre, x), p[pre + "post_attention_layernorm.weight"], eps)
    x = rms_norm(x, p["model.norm.weight"], eps)
    return x @ p["lm_head.weight"].T


def gpt2_params(cfg, gen):
    V, C, L, FF, T = cfg["vocab"], cfg["dim"], cfg["layers"], cfg["ffn"], cfg["context"]
    p = {}
    def w(*shape, std=0.1):
        return (torch.randn(*shape, generator=gen) * std)
    p["transformer.wte.weight"] = w(V, C, std=0.5)
    p["transformer.wpe.weight"] = w(T, C, std=0.3)
    for i in range(L):
        pre = f"transformer.h.{i}."
        p[pre + "ln_1.weight"] = 1 + w(C); p[pre + "ln_1.bias"] = w(C)
        p[pre + "attn.c_attn.weight"] = w(3 * C, C, std=0.3); p[pre + "attn.c_attn.bias"] = w(3 * C)
        p[pre + "attn.c_proj.weight"] = w(C, C, std=0.2); p[pre + "attn.c_proj.bias"] = w(C)
        p[pre + "ln_2.weight"] = 1 + w(C); p[pre + "ln_2.bias"] = w(C)
        p[pre + "mlp.c_fc.weight"] = w(FF, C, std=0.3); p[pre + "mlp.c_fc.bias"] = w(FF)
        p[pre + "mlp.c_proj.weight"] = w(C, FF, std=0.2); p[pre + "mlp.c_proj.bias"] = w(C)
    p["transformer.ln_f.weight"] = 1 + w(C); p["transformer.ln_f.bias"] = w(C)
    return {k: v.float().requires_grad_(True) for k, v in p.items()}


def gpt2_forward(p, cfg, idx):
    C, L, NH = cfg["dim"], cfg["layers"], cfg["heads"]
    HS = C // NH
    eps = cfg["norm_eps"]
    B, T = idx.shape
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
    for i in range(L):
        pre = f"transformer.h.{i}."
        h = F.layer_norm(x, (C,), p[pre + "ln_1.weight"], p[pre + "ln_1.bias"], eps)
        qkv = h @ p[pre + "attn.c_attn.weight"].T + p[pre + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        q = q.view(B, T, NH, HS).transpose(1, 2)
        k = k.view(B, T, NH, HS).transpose(1, 2)
        v = v.view(B, T, NH, HS).transpose(1, 2)
        y = attention(q, k, v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p[pre + "attn.c_proj.weight"].T + p[pre + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), p[pre + "ln_2.weight"], p[pre + "ln_2.bias"], eps)
        h = F.gelu(h @ p[pre + "mlp.c_fc.weight"].T + p[pre + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ p[pre + "mlp.c_proj.weight"].T + p[pre + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], eps)
    return x @ p["transformer.wte.weight"].T


def lr_at(step, opt):
    mx, mn, W, N = opt["lr"], opt["min_lr"], opt["warmup"], opt["steps"]
    if step < W:
        return mx * (step + 1) / W
    pr = min(max((step - W) / max(1, N - W), 0.0), 1.0)
    return mn + (mx - mn) * 0.5 * (1 + math.cos(math.pi * pr))


def make(arch, cfg, params_fn, forward_fn, B, T, seed, name=None):
    gen = torch.Generator().manual_seed(seed)
    p = params_fn(cfg, gen)
    V = cfg["vocab"]
    tokens = torch.randint(0, V, (B, T + 1), generator=gen)
    idx, tgt = tokens[:, :T].contiguous(), tokens[:, 1:].contiguous()
    init = {k: v.detach().clone() for k, v in p.items()}

    logits = forward_fn(p, cfg, idx)
    loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
    loss.backward()
    grads = {k: v.grad.detach().clone() for k, v in p.items()}

    opt = {"lr": 5e-3, "min_lr": 5e-4, "warmup": 3, "steps": 10, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95,
           "eps": 1e-8, "grad_clip": 1.0}
    decay = [v for v in p.values() if v.dim() >= 2]
    no_decay = [v for v in p.values() if v.dim() < 2]
    adam = torch.optim.AdamW([{"params": decay, "weight_decay": opt["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])
    losses, norms = [], []
    for step in range(opt["steps"]):
        adam.zero_grad(set_to_none=False)
        l = F.cross_entropy(forward_fn(p, cfg, idx).view(-1, V), tgt.view(-1))
        l.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), opt["grad_clip"])))
        for g in adam.param_groups:
            g["lr"] = lr_at(step, opt)
        adam.step()
        losses.append(float(l))
    with torch.no_grad():
        final_loss = float(F.cross_entropy(forward_fn(p, cfg, idx).view(-1, V), tgt.view(-1)))

    tensors, blobs, off = [], [], 0
    def add(name, t):
        nonlocal off
        a = t.detach().float().contiguous().view(-1)
        tensors.append({"name": name, "shape": list(t.shape), "offset": off})
        blobs.append(a.numpy().astype("<f4").tobytes())
        off += a.numel()
    for k, v in init.items():
        add("param:" + k, v)
    for k, v in grads.items():
        add("grad:" + k, v)
    add("logits", logits)
    header = {"arch": arch, "variant": name or arch, "config": cfg, "B": B, "T": T, "inputs": idx.view(-1).tolist(), "targets": tgt.view(-1).tolist(),
              "loss": float(loss), "optimizer": opt, "step_losses": losses, "grad_norms": norms, "final_loss": final_loss,
              "tensors": tensors, "torch": torch.__version__}
    hb = json.dumps(header).encode("utf-8")
    path = os.path.join(OUT, (name or arch) + ".golden")
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<ii", VERSION, len(hb)) + hb)
        for b in blobs:
            f.write(b)
    print(f"{path}: {os.path.getsize(path)} bytes, loss {float(loss):.6f}, step losses {losses[0]:.4f} .. {losses[-1]:.4f}, norms {norms[0]:.3f} .. {norms[-1]:.3f}")


def main():
    os.makedirs(OUT, exist_ok=True)
    llama = {"vocab": 48, "dim": 32, "layers": 2, "heads": 4, "kv_heads": 2, "ffn": 48, "context": 8,
             "rope_theta": 10000.0, "norm_eps": 1e-5, "tied": False}
    make("llama", llama, llama_params, llama_forward, B=2, T=8, seed=1234)
    gpt2 = {"vocab": 48, "dim": 32, "layers": 2, "heads": 4, "ffn": 128, "context": 8, "norm_eps": 1e-5}
    make("gpt2", gpt2, gpt2_params, gpt2_forward, B=2, T=8, seed=4321)
    # the lab's decoder variants (logits and gradients only; the optimizer steps are the same code as above):
    # post-norm and DeepNorm placement, a sparse pattern (local 3, stride 4, 1 global token) and a sliding window of 3
    long = dict(llama, context=12)
    make("llama", dict(llama, norm_placement="post"), llama_params, llama_forward, B=2, T=8, seed=77, name="llama-post")
    make("llama", dict(llama, norm_placement="deepnorm"), llama_params, llama_forward, B=2, T=8, seed=78, name="llama-deepnorm")
    make("llama", dict(long, sparse=[3, 4, 1]), llama_params, llama_forward, B=2, T=12, seed=79, name="llama-sparse")
    make("llama", dict(long, sliding_window=3), llama_params, llama_forward, B=2, T=12, seed=80, name="llama-sliding")


if __name__ == "__main__":
    sys.exit(main())

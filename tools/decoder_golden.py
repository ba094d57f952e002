#!/usr/bin/python3
"""Golden logits for the decoder architectures whose llama.cpp oracle is not exact, made with plain PyTorch (no
transformers), written from the Hugging Face model definitions:

  mistral-swa  Mistral with a sliding window (llama.cpp runs Mistral GGUFs without one): a row at position i sees keys
               j with i - W < j <= i.
  gemma2       GeGLU (tanh GELU), embedding x sqrt(C), norms as x * (1 + w), post-attention and post-MLP norms,
               attention and final logit soft caps, the window on even layers, query_pre_attn_scalar.
  gemma3       as Gemma 2 without soft caps, plus q/k RMSNorms, the window on the layers layer_types says, the local
               RoPE base (rope_local_base_freq) on sliding layers and linear RoPE scaling on global ones only.

llama.cpp computes GELU through an f16 table, so its Gemma logits are ~1e-3 off exact math; this oracle is exact
(float64 over the f16-rounded weights). Each model is a tiny seeded random checkpoint written to
tests/testdata/decoders/<name>/: config.json, model.safetensors (F16 weights), and golden.safetensors holding the
prompt ids ("ids", F32) and the logits at every position ("logits", F32 (T, V)), with __metadata__ magic
"sharplm-decoder-golden" and version 1.

Run with Debian's python3-torch:  /usr/bin/python3 tools/decoder_golden.py
"""
import json, math, os, struct
import torch

MAGIC, VERSION = "sharplm-decoder-golden", "1"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "testdata", "decoders")
torch.set_num_threads(1)


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, (dtype, t) in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for b in blobs:
            f.write(b)


def rms_norm(x, w, eps, add_one):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * ((1 + w) if add_one else w)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(x, pos, theta, factor):
    # x (T, H, HS): transformers' default / linear rotary embedding, rotate-half pairs
    hs = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs)) / factor
    ang = pos[:, None].double() * inv[None, :]
    emb = torch.cat((ang, ang), dim=-1)[:, None, :]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(cfg, w, ids):
    gemma = cfg["model_type"] != "mistral"
    C, L, NH, KVH, HS = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, T = cfg["rms_norm_eps"], len(ids)
    pos = torch.arange(T)
    P = lambda n: w[n].double()
    h = P("model.embed_tokens.weight")[ids]
    if gemma:
        h = h * math.sqrt(C)
    types = cfg.get("layer_types") or [("sliding_attention" if (cfg["model_type"] == "mistral" or l % 2 == 0) else "full_attention") for l in range(L)]
    scale = cfg.get("query_pre_attn_scalar", HS) ** -0.5
    for l in range(L):
        p = f"model.layers.{l}."
        sliding = types[l] == "sliding_attention"
        x = rms_norm(h, P(p + "input_layernorm.weight"), eps, gemma)
        q = (x @ P(p + "self_attn.q_proj.weight").T).view(T, NH, HS)
        k = (x @ P(p + "self_attn.k_proj.weight").T).view(T, KVH, HS)
        v = (x @ P(p + "self_attn.v_proj.weight").T).view(T, KVH, HS)
        if cfg["model_type"] == "gemma3":
            q = rms_norm(q, P(p + "self_attn.q_norm.weight"), eps, True)
            k = rms_norm(k, P(p + "self_attn.k_norm.weight"), eps, True)
        if cfg["model_type"] == "gemma3" and sliding:
            theta, factor = cfg["rope_local_base_freq"], 1.0
        else:
            theta = cfg["rope_theta"]
            factor = (cfg.get("rope_scaling") or {}).get("factor", 1.0)
        q, k = rope(q, pos, theta, factor), rope(k, pos, theta, factor)
        k = k.repeat_interleave(NH // KVH, dim=1)
        v = v.repeat_interleave(NH // KVH, dim=1)
        s = torch.einsum("thd,shd->hts", q, k) * scale
        if cfg.get("attn_logit_softcapping"):
            cap = cfg["attn_logit_softcapping"]
            s = cap * torch.tanh(s / cap)
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        visible = j <= i
        if sliding:
            visible &= j > i - cfg["sliding_window"]
        s = s.masked_fill(~visible[None], float("-inf"))
        a = torch.einsum("hts,shd->thd", torch.softmax(s, dim=-1), v).reshape(T, NH * HS)
        a = a @ P(p + "self_attn.o_proj.weight").T
        if gemma:
            a = rms_norm(a, P(p + "post_attention_layernorm.weight"), eps, True)
            x = rms_norm(h + a, P(p + "pre_feedforward_layernorm.weight"), eps, True)
        else:
            x = rms_norm(h + a, P(p + "post_attention_layernorm.weight"), eps, False)
        h = h + a
        g, u = x @ P(p + "mlp.gate_proj.weight").T, x @ P(p + "mlp.up_proj.weight").T
        m = ((gelu_tanh(g) if gemma else torch.nn.functional.silu(g)) * u) @ P(p + "mlp.down_proj.weight").T
        if gemma:
            m = rms_norm(m, P(p + "post_feedforward_layernorm.weight"), eps, True)
        h = h + m
    h = rms_norm(h, P("model.norm.weight"), eps, gemma)
    logits = h @ (P("model.embed_tokens.weight") if cfg.get("tie_word_embeddings") else P("lm_head.weight")).T
    if cfg.get("final_logit_softcapping"):
        cap = cfg["final_logit_softcapping"]
        logits = cap * torch.tanh(logits / cap)
    return logits


def weights(cfg, gen):
    gemma = cfg["model_type"] != "mistral"
    C, L, NH, KVH, HS, F, V = (cfg[k] for k in ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size"])
    u = lambda *shape: torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1
    norm = lambda n, big=1.0: (big - 1 + 0.2 * big * u(n)) if gemma else (1 + 0.2 * u(n))
    w = {"model.embed_tokens.weight": u(V, C) * (1 / math.sqrt(C) if gemma else 1.0), "model.norm.weight": norm(C)}
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = norm(C)
        w[p + "self_attn.q_proj.weight"] = u(NH * HS, C) * 3.4 / math.sqrt(C)
        w[p + "self_attn.k_proj.weight"] = u(KVH * HS, C) * 3.4 / math.sqrt(C)
        w[p + "self_attn.v_proj.weight"] = u(KVH * HS, C) * 1.7 / math.sqrt(C)
        w[p + "self_attn.o_proj.weight"] = u(C, NH * HS) * 1.7 / math.sqrt(NH * HS)
        w[p + "post_attention_layernorm.weight"] = norm(C, 3.0)
        if gemma:
            w[p + "pre_feedforward_layernorm.weight"] = norm(C)
            w[p + "post_feedforward_layernorm.weight"] = norm(C, 3.0)
            if cfg["model_type"] == "gemma3":
                w[p + "self_attn.q_norm.weight"] = norm(HS)
                w[p + "self_attn.k_norm.weight"] = norm(HS)
        w[p + "mlp.gate_proj.weight"] = u(F, C) * 1.7 / math.sqrt(C)
        w[p + "mlp.up_proj.weight"] = u(F, C) * 1.7 / math.sqrt(C)
        w[p + "mlp.down_proj.weight"] = u(C, F) * 1.7 / math.sqrt(F)
    if not cfg.get("tie_word_embeddings"):
        w["lm_head.weight"] = u(V, C) * 5.1 / math.sqrt(C)
    # the checkpoint holds f16; the oracle computes with exactly those values
    return {k: v.to(torch.float16) for k, v in w.items()}


def common(model_type, cls, **kw):
    cfg = {"architectures": [cls], "model_type": model_type, "vocab_size": 97, "hidden_size": 48, "intermediate_size": 72,
           "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 24,
           "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "torch_dtype": "float16"}
    cfg.update(kw)
    return cfg


MODELS = {
    "mistral-swa": common("mistral", "MistralForCausalLM", sliding_window=5, rope_theta=10000.0, hidden_act="silu",
                          num_hidden_layers=2, tie_word_embeddings=False, rms_norm_eps=1e-5),
    "gemma2": common("gemma2", "Gemma2ForCausalLM", sliding_window=6, rope_theta=10000.0, hidden_activation="gelu_pytorch_tanh",
                     query_pre_attn_scalar=32, attn_logit_softcapping=3.0, final_logit_softcapping=5.0, tie_word_embeddings=True),
    "gemma3": common("gemma3_text", "Gemma3ForCausalLM", sliding_window=6, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                     hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24, tie_word_embeddings=True,
                     layer_types=["sliding_attention", "full_attention"], rope_scaling={"rope_type": "linear", "factor": 8.0}),
}
MODELS["gemma3"]["model_type"] = "gemma3"  # the forward's switch; config.json keeps gemma3_text


def main():
    for i, (name, cfg) in enumerate(MODELS.items()):
        gen = torch.Generator().manual_seed(1234 + i)
        w = weights(cfg, gen)
        ids = torch.cat([torch.tensor([1]), torch.randint(3, cfg["vocab_size"], (23,), generator=gen)])
        logits = forward(cfg, w, ids)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        file_cfg = dict(cfg)
        if name == "gemma3":
            file_cfg["model_type"] = "gemma3_text"
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(file_cfg, f, indent=1)
        write_safetensors(os.path.join(d, "model.safetensors"), {k: ("F16", v) for k, v in w.items()}, {"format": "pt"})
        write_safetensors(os.path.join(d, "golden.safetensors"),
                          {"ids": ("F32", ids.float()), "logits": ("F32", logits.float())},
                          {"magic": MAGIC, "version": VERSION, "torch": torch.__version__})
        print(f"{name}: {len(ids)} positions, logits range [{logits.min():.3f}, {logits.max():.3f}]")


if __name__ == "__main__":
    main()

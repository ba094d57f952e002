#!/usr/bin/python3
"""Golden data for SharpLM's BERT-family encoders, made with PyTorch and no `transformers` package.

Run with Debian's python3-torch:  /usr/bin/python3 tools/bert_golden.py
Writes tests/testdata/bert/<name>/{config.json, model.safetensors, vocab.txt, golden.safetensors, fill_mask.json} for three tiny models with
seeded random weights:
  bert_mlm        BertForMaskedLM        (token + position + segment embeddings, post-LN, GELU erf, tied decoder)
  albert_mlm      AlbertForMaskedLM      (E=16 < H=32 factorized embedding, ONE layer shared by all 3 layers,
                                          gelu_new, tied decoder)
  distilbert_mlm  DistilBertForMaskedLM  (no segment embeddings, q_lin/k_lin/... names, tied vocab_projector)
Tensor names and config.json keys follow Hugging Face so the same loader reads real checkpoints.
golden.safetensors holds the inputs (input_ids, attention_mask, token_type_ids: I64, (B,T)) and outputs
(hidden: F32 (B,T,H) last hidden states; logits: F32 (B,T,V) masked-LM logits); its __metadata__ carries
magic "sharplm-bert-golden" and version GOLDEN_VERSION, checked by the C# test.
fill_mask.json: ids and the top-5 tokens with probabilities for "Paris is the [MASK] of France." (the vocab holds
whole words only, so WordPiece is a plain lower-cased split with punctuation on its own).
Padded keys are masked with -inf before the softmax; padded query rows are computed but not compared.
"""
import json
import math
import os
import struct
import sys

import torch

GOLDEN_VERSION = "1"
MAGIC = "sharplm-bert-golden"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "testdata", "bert")


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: 8-byte LE header length, JSON header, raw little-endian data."""
    dtypes = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32"}
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTS = {"gelu": gelu, "gelu_new": gelu_new}


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def linear(x, w, b):
    return x @ w.T + b


def attention_block(x, mask, p, nh, eps, act, names):
    """One post-LN encoder block. names: (q, k, v, o, ln1, up, down, ln2) prefixes."""
    q, k, v, o, ln1, up, down, ln2 = names
    B, T, H = x.shape
    hs = H // nh

    def heads(t):
        return t.view(B, T, nh, hs).transpose(1, 2)  # (B, NH, T, HS)

    Q = heads(linear(x, p[q + ".weight"], p[q + ".bias"]))
    K = heads(linear(x, p[k + ".weight"], p[k + ".bias"]))
    V = heads(linear(x, p[v + ".weight"], p[v + ".bias"]))
    scores = Q @ K.transpose(-1, -2) / math.sqrt(hs)
    scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    a = torch.softmax(scores, dim=-1) @ V  # (B, NH, T, HS)
    a = a.transpose(1, 2).reshape(B, T, H)
    x = layer_norm(x + linear(a, p[o + ".weight"], p[o + ".bias"]), p[ln1 + ".weight"], p[ln1 + ".bias"], eps)
    f = act(linear(x, p[up + ".weight"], p[up + ".bias"]))
    return layer_norm(x + linear(f, p[down + ".weight"], p[down + ".bias"]), p[ln2 + ".weight"], p[ln2 + ".bias"], eps)


class Params(dict):
    def __init__(self, gen):
        super().__init__()
        self.gen = gen

    def lin(self, name, out_f, in_f):
        self[name + ".weight"] = torch.randn(out_f, in_f, generator=self.gen) * (1.0 / math.sqrt(in_f))
        self[name + ".bias"] = torch.randn(out_f, generator=self.gen) * 0.1

    def ln(self, name, n):
        self[name + ".weight"] = 1.0 + torch.randn(n, generator=self.gen) * 0.1
        self[name + ".bias"] = torch.randn(n, generator=self.gen) * 0.1

    def emb(self, name, rows, cols):
        self[name] = torch.randn(rows, cols, generator=self.gen) * 0.5


def layer_names(arch, prefix, i):
    if arch == "bert":
        l = f"{prefix}encoder.layer.{i}."
        return (l + "attention.self.query", l + "attention.self.key", l + "attention.self.value", l + "attention.output.dense",
                l + "attention.output.LayerNorm", l + "intermediate.dense", l + "output.dense", l + "output.LayerNorm")
    if arch == "distilbert":
        l = f"{prefix}transformer.layer.{i}."
        return (l + "attention.q_lin", l + "attention.k_lin", l + "attention.v_lin", l + "attention.out_lin",
                l + "sa_layer_norm", l + "ffn.lin1", l + "ffn.lin2", l + "output_layer_norm")
    l = f"{prefix}encoder.albert_layer_groups.{i}.albert_layers.0."
    return (l + "attention.query", l + "attention.key", l + "attention.value", l + "attention.dense",
            l + "attention.LayerNorm", l + "ffn", l + "ffn_output", l + "full_layer_layer_norm")


def build(arch, seed):
    g = torch.Generator().manual_seed(seed)
    V, H, NH, F, L, P, TYPES, eps = 50, 32, 4, 64, 2, 16, 2, 1e-12
    E = 16 if arch == "albert" else H
    if arch == "albert":
        L = 3
    act_name = "gelu_new" if arch == "albert" else "gelu"
    prefix = {"bert": "bert.", "albert": "albert.", "distilbert": "distilbert."}[arch]
    p = Params(g)
    p.emb(prefix + "embeddings.word_embeddings.weight", V, E)
    p.emb(prefix + "embeddings.position_embeddings.weight", P, E)
    if arch != "distilbert":
        p.emb(prefix + "embeddings.token_type_embeddings.weight", TYPES, E)
    p.ln(prefix + "embeddings.LayerNorm", E)
    if arch == "albert":
        p.lin(prefix + "encoder.embedding_hidden_mapping_in", H, E)
    n_weight_layers = 1 if arch == "albert" else L  # ALBERT: num_hidden_groups = 1, one shared layer
    for i in range(n_weight_layers):
        q, k, v, o, ln1, up, down, ln2 = layer_names(arch, prefix, i)
        for n in (q, k, v, o):
            p.lin(n, H, H)
        p.ln(ln1, H)
        p.lin(up, F, H)
        p.lin(down, H, F)
        p.ln(ln2, H)
    if arch == "bert":
        head = ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias")
    elif arch == "distilbert":
        head = ("vocab_transform", "vocab_layer_norm", "vocab_projector.bias")
    else:
        head = ("predictions.dense", "predictions.LayerNorm", "predictions.bias")
    p.lin(head[0], E, H)
    p.ln(head[1], E)
    p[head[2]] = torch.randn(V, generator=g) * 0.1

    if arch == "bert":
        config = {"model_type": "bert", "vocab_size": V, "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": NH,
                  "intermediate_size": F, "max_position_embeddings": P, "type_vocab_size": TYPES, "layer_norm_eps": eps,
                  "hidden_act": act_name, "position_embedding_type": "absolute", "architectures": ["BertForMaskedLM"]}
    elif arch == "distilbert":
        config = {"model_type": "distilbert", "vocab_size": V, "dim": H, "n_layers": L, "n_heads": NH, "hidden_dim": F,
                  "max_position_embeddings": P, "activation": act_name, "architectures": ["DistilBertForMaskedLM"]}
    else:
        config = {"model_type": "albert", "vocab_size": V, "embedding_size": E, "hidden_size": H, "num_hidden_layers": L,
                  "num_attention_heads": NH, "intermediate_size": F, "max_position_embeddings": P, "type_vocab_size": TYPES,
                  "layer_norm_eps": eps, "hidden_act": act_name, "num_hidden_groups": 1, "inner_group_num": 1,
                  "architectures": ["AlbertForMaskedLM"]}
    return p, config, dict(V=V, H=H, NH=NH, L=L, P=P, E=E, eps=eps, act=ACTS[act_name], prefix=prefix, head=head)


def forward(arch, p, d, ids, mask, types):
    prefix, eps = d["prefix"], d["eps"]
    B, T = ids.shape
    x = p[prefix + "embeddings.word_embeddings.weight"][ids] + p[prefix + "embeddings.position_embeddings.weight"][torch.arange(T)][None]
    if arch != "distilbert":
        x = x + p[prefix + "embeddings.token_type_embeddings.weight"][types]
    x = layer_norm(x, p[prefix + "embeddings.LayerNorm.weight"], p[prefix + "embeddings.LayerNorm.bias"], eps)
    if arch == "albert":
        x = linear(x, p[prefix + "encoder.embedding_hidden_mapping_in.weight"], p[prefix + "encoder.embedding_hidden_mapping_in.bias"])
    for i in range(d["L"]):
        names = layer_names(arch, prefix, 0 if arch == "albert" else i)  # ALBERT reuses the one shared layer
        x = attention_block(x, mask, p, d["NH"], eps, d["act"], names)
    dense, ln, bias = d["head"]
    t = d["act"](linear(x, p[dense + ".weight"], p[dense + ".bias"]))
    t = layer_norm(t, p[ln + ".weight"], p[ln + ".bias"], eps)
    logits = t @ p[prefix + "embeddings.word_embeddings.weight"].T + p[bias]  # decoder tied to the word embeddings
    return x, logits


WORDS = ("paris france capital city , . the of and to in is was he for it with as his on be at by had are but from or she "
         "an which you one we all were her would there their will when who him been has more if no out do so can what "
         "up said about other into than its time only could new them").split()


def write_vocab(path, V):
    """[PAD] [UNK] [CLS] [SEP] [MASK] then whole words: WordPiece on this vocab is a plain split, as in the test."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS[: V - 5]
    assert len(vocab) == V, len(vocab)
    with open(path, "w") as f:
        f.write("\n".join(vocab) + "\n")
    return vocab


FILL_TEXT = "Paris is the [MASK] of France."


def fill_mask(arch, p, d, vocab, top=5):
    """Top-k tokens for the one [MASK] of FILL_TEXT (lower-cased, punctuation split, every word in the vocab)."""
    words = FILL_TEXT.lower().replace(".", " .").replace("[mask]", "[MASK]").split()
    ids = [vocab.index("[CLS]")] + [vocab.index(w) for w in words] + [vocab.index("[SEP]")]
    ids_t = torch.tensor([ids])
    ones = torch.ones_like(ids_t)
    with torch.no_grad():
        _, logits = forward(arch, p, d, ids_t, ones, torch.zeros_like(ids_t))
    pos = ids.index(vocab.index("[MASK]"))
    probs = torch.softmax(logits[0, pos].double(), dim=-1)
    best = torch.argsort(-probs, stable=True)[:top].tolist()
    return {"magic": MAGIC, "version": GOLDEN_VERSION, "text": FILL_TEXT, "ids": ids,
            "top": [{"token": vocab[i], "id": i, "probability": float(probs[i])} for i in best]}


def main():
    torch.set_num_threads(1)
    for arch, seed in (("bert", 1), ("albert", 2), ("distilbert", 3)):
        p, config, d = build(arch, seed)
        g = torch.Generator().manual_seed(100 + seed)
        lengths = [7, 4, 1]
        B, T = len(lengths), max(lengths)
        ids = torch.randint(5, d["V"], (B, T), generator=g)
        mask = torch.zeros(B, T, dtype=torch.int64)
        types = torch.zeros(B, T, dtype=torch.int64)
        for b, n in enumerate(lengths):
            mask[b, :n] = 1
            ids[b, n:] = 0
            if arch != "distilbert" and n > 3:
                types[b, n // 2:n] = 1
        with torch.no_grad():
            hidden, logits = forward(arch, p, d, ids, mask, types)
        out = os.path.join(OUT, arch + "_mlm")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(out, "model.safetensors"), dict(p), {"format": "pt"})
        meta = {"magic": MAGIC, "version": GOLDEN_VERSION, "torch": torch.__version__, "arch": arch,
                "made_by": "tools/bert_golden.py"}
        write_safetensors(os.path.join(out, "golden.safetensors"),
                          {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                           "hidden": hidden.float(), "logits": logits.float()}, meta)
        vocab = write_vocab(os.path.join(out, "vocab.txt"), d["V"])
        with open(os.path.join(out, "fill_mask.json"), "w") as f:
            json.dump(fill_mask(arch, p, d, vocab), f, indent=2)
            f.write("\n")
        print(f"{out}: {len(p)} tensors, hidden {tuple(hidden.shape)}, logits {tuple(logits.shape)}")


if __name__ == "__main__":
    sys.exit(main())

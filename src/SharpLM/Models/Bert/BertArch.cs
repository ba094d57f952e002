using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using static SharpLM.Models.TensorDecl;

namespace SharpLM.Models.Bert;

/// <summary>
/// The BERT family of encoders (BERT, MiniLM, sentence-transformers, RoBERTa, DistilBERT, ALBERT): the study note's
/// bidirectional encoder. Summed token + position (+ segment) embeddings and a LayerNorm, post-norm blocks
/// (x = LN(x + attn(x)); x = LN(x + mlp(x))) with biases everywhere and a GELU MLP; ALBERT factorises the embedding
/// (E &lt; C, projected E -> C) and shares one set of layer weights. Hugging Face names carry a prefix that depends on
/// the class ("" for BertModel, "bert." for BertForMaskedLM, ...): the tables write it "{P}". The masked-LM head
/// (<c>mlm_*</c>) and the pooler are optional: an encoder for embeddings has no head, a fill-mask checkpoint has it.
/// GGUF names follow llama.cpp's LLM_ARCH_BERT; the head, which llama.cpp does not load, is named mlm.*.
/// </summary>
internal static class BertArch
{
    private static readonly Func<ModelConfig, TensorNeed> Opt = _ => TensorNeed.Optional;

    private static TensorDecl[] Table(string emb, string layer, (string Q, string K, string V, string O, string Ln1, string Up, string Down, string Ln2) n,
                                      string? pooler, (string Dense, string Norm, string Decoder, string Bias) head, bool projection) =>
    [
        new("token_embd", "token_embd.weight", "{P}" + emb + "word_embeddings.weight", "V, E", "embeddings.token", Always),
        new("position_embd", "position_embd.weight", "{P}" + emb + "position_embeddings.weight", "P, E", "embeddings.position", Always),
        new("token_types", "token_types.weight", "{P}" + emb + "token_type_embeddings.weight", "T, E", "embeddings.token_type", When(c => c.TokenTypes > 0)),
        new("token_embd_norm", "token_embd_norm.weight", "{P}" + emb + "LayerNorm.weight", "E", "embeddings.norm", Always),
        new("token_embd_norm.bias", "token_embd_norm.bias", "{P}" + emb + "LayerNorm.bias", "E", "embeddings.norm", Always),
        .. projection
            ? new TensorDecl[]
            {
                new("embd_proj", "embd_proj.weight", "{P}encoder.embedding_hidden_mapping_in.weight", "C, E", "embeddings.projection", Always),
                new("embd_proj.bias", "embd_proj.bias", "{P}encoder.embedding_hidden_mapping_in.bias", "C", "embeddings.projection", Always),
            }
            : [],
        new("attn_q", "blk.{N}.attn_q.weight", "{P}" + layer + n.Q + ".weight", "C, C", "attention.q.weight", Always),
        new("attn_q.bias", "blk.{N}.attn_q.bias", "{P}" + layer + n.Q + ".bias", "C", "attention.q.bias", Always),
        new("attn_k", "blk.{N}.attn_k.weight", "{P}" + layer + n.K + ".weight", "C, C", "attention.k.weight", Always),
        new("attn_k.bias", "blk.{N}.attn_k.bias", "{P}" + layer + n.K + ".bias", "C", "attention.k.bias", Always),
        new("attn_v", "blk.{N}.attn_v.weight", "{P}" + layer + n.V + ".weight", "C, C", "attention.v.weight", Always),
        new("attn_v.bias", "blk.{N}.attn_v.bias", "{P}" + layer + n.V + ".bias", "C", "attention.v.bias", Always),
        new("attn_output", "blk.{N}.attn_output.weight", "{P}" + layer + n.O + ".weight", "C, C", "attention.o.weight", Always),
        new("attn_output.bias", "blk.{N}.attn_output.bias", "{P}" + layer + n.O + ".bias", "C", "attention.o.bias", Always),
        new("attn_output_norm", "blk.{N}.attn_output_norm.weight", "{P}" + layer + n.Ln1 + ".weight", "C", "norms.layer", Always),
        new("attn_output_norm.bias", "blk.{N}.attn_output_norm.bias", "{P}" + layer + n.Ln1 + ".bias", "C", "norms.layer", Always),
        new("ffn_up", "blk.{N}.ffn_up.weight", "{P}" + layer + n.Up + ".weight", "F, C", "mlp.up.weight", Always),
        new("ffn_up.bias", "blk.{N}.ffn_up.bias", "{P}" + layer + n.Up + ".bias", "F", "mlp.up.bias", Always),
        new("ffn_down", "blk.{N}.ffn_down.weight", "{P}" + layer + n.Down + ".weight", "C, F", "mlp.down.weight", Always),
        new("ffn_down.bias", "blk.{N}.ffn_down.bias", "{P}" + layer + n.Down + ".bias", "C", "mlp.down.bias", Always),
        new("layer_output_norm", "blk.{N}.layer_output_norm.weight", "{P}" + layer + n.Ln2 + ".weight", "C", "norms.layer", Always),
        new("layer_output_norm.bias", "blk.{N}.layer_output_norm.bias", "{P}" + layer + n.Ln2 + ".bias", "C", "norms.layer", Always),
        .. pooler is null
            ? []
            : new TensorDecl[]
            {
                new("pooler", "cls.weight", "{P}" + pooler + ".weight", "C, C", "pooler", c => c.Pooler ? TensorNeed.Required : TensorNeed.Optional),
                new("pooler.bias", "cls.bias", "{P}" + pooler + ".bias", "C", "pooler", c => c.Pooler ? TensorNeed.Required : TensorNeed.Optional),
            },
        new("mlm_dense", "mlm.dense.weight", head.Dense + ".weight", "E, C", "mlm_head", Opt),
        new("mlm_dense.bias", "mlm.dense.bias", head.Dense + ".bias", "E", "mlm_head", Opt),
        new("mlm_norm", "mlm.norm.weight", head.Norm + ".weight", "E", "mlm_head", Opt),
        new("mlm_norm.bias", "mlm.norm.bias", head.Norm + ".bias", "E", "mlm_head", Opt),
        new("mlm_decoder", "mlm.decoder.weight", head.Decoder + ".weight", "V, E", "mlm_head", Opt),
        new("mlm_bias", "mlm.decoder.bias", head.Bias, "V", "mlm_head", Opt),
    ];

    /// <summary>Old TensorFlow conversions name LayerNorm parameters gamma and beta; BERT's MLM bias is sometimes stored
    /// only as the decoder's.</summary>
    private static TensorDecl[] WithAliases(TensorDecl[] table) =>
        [.. table.Select(d => d.Hf.EndsWith("LayerNorm.weight", StringComparison.Ordinal) ? d with { HfAliases = [d.Hf[..^"weight".Length] + "gamma"] }
                         : d.Hf.EndsWith("LayerNorm.bias", StringComparison.Ordinal) ? d with { HfAliases = [d.Hf[..^"bias".Length] + "beta"] }
                         : d.Role == "mlm_bias" ? d with { HfAliases = [table.First(x => x.Role == "mlm_decoder").Hf[..^"weight".Length] + "bias"] }
                         : d)];

    /// <summary>BERT, MiniLM, sentence-transformers and RoBERTa (BertModel / BertForMaskedLM names).</summary>
    public static readonly TensorDecl[] BertTensors = WithAliases(Table("embeddings.", "encoder.layer.{N}.",
        ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm",
         "intermediate.dense", "output.dense", "output.LayerNorm"),
        "pooler.dense", ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.decoder", "cls.predictions.bias"), projection: false));

    /// <summary>DistilBERT (no segment embeddings, no pooler; q_lin, sa_layer_norm, ffn.lin1 ...).</summary>
    public static readonly TensorDecl[] DistilBertTensors = WithAliases(Table("embeddings.", "transformer.layer.{N}.",
        ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"),
        null, ("vocab_transform", "vocab_layer_norm", "vocab_projector", "vocab_projector.bias"), projection: false));

    /// <summary>ALBERT: one stored layer per group ({N} = group), the E -> C projection, a pooler called "pooler".</summary>
    public static readonly TensorDecl[] AlbertTensors = WithAliases(Table("embeddings.", "encoder.albert_layer_groups.{N}.albert_layers.0.",
        ("attention.query", "attention.key", "attention.value", "attention.dense", "attention.LayerNorm", "ffn", "ffn_output", "full_layer_layer_norm"),
        "pooler", ("predictions.dense", "predictions.LayerNorm", "predictions.decoder", "predictions.bias"), projection: true));

    /// <summary>The Hugging Face prefixes of the base model's tensors, by class (BertModel "", BertForMaskedLM "bert.", ...).</summary>
    public static readonly string[] Prefixes = ["", "bert.", "distilbert.", "albert.", "roberta.", "model."];

    public static Architecture Create(string name, string[] modelTypes, string[] classes, string? notRunnable = null) =>
        new(name, ArchFamily.Bert, "bert", modelTypes, classes,
            name switch { "distilbert" => DistilBertTensors, "albert" => AlbertTensors, _ => BertTensors },
            FromHf, FromGguf, ToGguf, ToHf, notRunnable);

    /// <summary>transformers' BertConfig / DistilBertConfig / AlbertConfig defaults where a key is absent.</summary>
    private static ModelConfig FromHf(JsonReader r, string arch)
    {
        string? unsupported = null;
        int width, layers, heads, ffn, types, emb, groups;
        string act;
        float eps;
        switch (arch)
        {
            case "distilbert":
                width = r.Size("dim"); layers = r.Size("n_layers"); heads = r.Size("n_heads"); ffn = r.Size("hidden_dim");
                types = 0; emb = width; groups = layers; act = r.String("activation") ?? "gelu"; eps = 1e-12f;
                break;
            case "albert":
                width = r.Size("hidden_size"); layers = r.Size("num_hidden_layers"); heads = r.Size("num_attention_heads");
                ffn = r.Size("intermediate_size"); types = r.OptionalSize("type_vocab_size") ?? 2; emb = r.OptionalSize("embedding_size") ?? 128;
                groups = r.OptionalSize("num_hidden_groups") ?? 1; act = r.String("hidden_act") ?? "gelu_new"; eps = r.Float("layer_norm_eps") ?? 1e-12f;
                if ((r.Int("inner_group_num") ?? 1) != 1)
                    unsupported = $"ALBERT inner_group_num {r.Int("inner_group_num")} is not supported (only 1, as every released ALBERT)";
                break;
            default:
                width = r.Size("hidden_size"); layers = r.Size("num_hidden_layers"); heads = r.Size("num_attention_heads");
                ffn = r.Size("intermediate_size"); types = r.OptionalSize("type_vocab_size") ?? 2; emb = width; groups = layers;
                act = r.String("hidden_act") ?? "gelu"; eps = r.Float("layer_norm_eps") ?? 1e-12f;
                if (r.String("position_embedding_type") is { } pet && pet != "absolute")
                    unsupported = $"position_embedding_type '{pet}' is not supported (only 'absolute')";
                break;
        }
        if (heads <= 0 || width % heads != 0) r.Fail(arch == "distilbert" ? "dim" : "hidden_size", $"{width} is not a multiple of the number of heads {heads}");
        if (groups <= 0 || layers % groups != 0) r.Fail("num_hidden_groups", $"{groups} does not divide num_hidden_layers {layers}");
        string activation = ModelConfigReader.Activation(act) is { } a and not "silu" ? a
            : r.Fail<string>(arch == "distilbert" ? "activation" : "hidden_act", $"'{act}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)");
        return new ModelConfig
        {
            Architecture = arch,
            Vocab = r.Size("vocab_size"),
            Width = width,
            Layers = layers,
            Heads = heads,
            KvHeads = heads,
            HeadSize = width / heads,
            FfnWidth = ffn,
            Context = r.OptionalSize("max_position_embeddings") ?? 512,
            EmbeddingWidth = emb,
            LayerGroups = groups,
            TokenTypes = types,
            NormEps = eps,
            Activation = activation,
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            PadTokenId = r.Int("pad_token_id"),
            Unsupported = unsupported,
        };
    }

    private static ModelConfig FromGguf(GgufFile g, string arch)
    {
        var c = GgufMeta.Sizes(g, arch, context: GgufMeta.TableRows(g, "position_embd.weight"));
        return c with
        {
            KvHeads = c.Heads,
            TokenTypes = GgufMeta.TableRows(g, "token_types.weight") ?? 0,
            NormEps = GgufMeta.Float(g, GgufKeys.LayerNormEpsilon("bert")) ?? 1e-12f,
            Activation = "gelu",
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            TiedEmbeddings = false,
            Pooler = g.Tensors.ContainsKey("cls.weight"),
        };
    }

    private static void ToGguf(ModelConfig c, GgufWriter w) =>
        GgufMeta.WriteSizes(c, w).Set(GgufKeys.LayerNormEpsilon("bert"), c.NormEps);

    private static JsonObject BertHf(ModelConfig c)
    {
        var o = ModelConfigReader.HfSizes(c, c.Architecture == "albert" ? "AlbertForMaskedLM" : "BertForMaskedLM");
        o["embedding_size"] = c.EmbeddingWidth;
        o["num_hidden_groups"] = c.LayerGroups;
        o["type_vocab_size"] = c.TokenTypes;
        o["layer_norm_eps"] = c.NormEps;
        o["hidden_act"] = c.Activation == "gelu_tanh" ? "gelu_new" : c.Activation;
        return o;
    }

    private static JsonObject ToHf(ModelConfig c) => c.Architecture switch
    {
        "distilbert" => new JsonObject
        {
            ["architectures"] = new JsonArray("DistilBertForMaskedLM"),
            ["model_type"] = "distilbert",
            ["vocab_size"] = c.Vocab, ["dim"] = c.Width, ["hidden_dim"] = c.FfnWidth, ["n_layers"] = c.Layers, ["n_heads"] = c.Heads,
            ["max_position_embeddings"] = c.Context, ["activation"] = c.Activation == "gelu_tanh" ? "gelu_new" : c.Activation,
            ["torch_dtype"] = "float32",
        },
        _ => BertHf(c),
    };
}

using System.Globalization;
using System.Text;
using SharpLM.Formats;
using SharpLM.Kernels.Naive;
using SharpLM.Tensors;

namespace SharpLM.Models.Bert;

/// <summary>One post-LN encoder block. Matrices are (OC, C) views into the weight source; vectors are copied to f32.</summary>
internal sealed class BertLayerWeights
{
    public required WeightMatrix Wq, Wk, Wv, Wo;   // (H, H)
    public required float[] Bq, Bk, Bv, Bo;        // (H)
    public required float[] Ln1W, Ln1B;            // (H) after attention + residual
    public required WeightMatrix Wi;               // (F, H)
    public required float[] Bi;                    // (F)
    public required WeightMatrix Wd;               // (H, F)
    public required float[] Bd;                    // (H)
    public required float[] Ln2W, Ln2B;            // (H) after FFN + residual
}

/// <summary>The masked-language-model head: transform (dense E|H->E, act, LayerNorm) then decoder tied to the word embeddings.</summary>
internal sealed class BertMlmHeadWeights
{
    public required WeightMatrix Dense;            // (E, H)
    public required float[] DenseB;                // (E)
    public required float[] LnW, LnB;              // (E)
    public required WeightMatrix Decoder;          // (V, E): the word embeddings unless the file holds an untied decoder
    public required float[] DecoderB;              // (V)
}

/// <summary>
/// The tensors of a BERT-family encoder bound by name from an <see cref="IWeightSource"/>, with the tables of names
/// for each <see cref="BertArch"/>. A failed bind lists every missing and mis-shaped tensor at once.
/// </summary>
internal sealed class BertWeights
{
    public required WeightMatrix Word;             // (V, E)
    public required WeightMatrix Position;         // (P, E)
    public WeightMatrix? TokenType;                // (types, E); null for DistilBERT
    public required float[] EmbLnW, EmbLnB;        // (E)
    public WeightMatrix? Projection;               // ALBERT (H, E)
    public float[]? ProjectionB;                   // ALBERT (H)
    public required BertLayerWeights[] Layers;     // L entries; ALBERT entries share one object per group
    public BertMlmHeadWeights? Mlm;
    public WeightMatrix? Pooler;                   // (H, H), tanh; unused by embeddings
    public float[]? PoolerB;

    /// <summary>The prefix before "embeddings." in this source ("", "bert.", "distilbert.", "albert.", "model."). RoBERTa is
    /// not accepted: its position ids start after the padding index, which this encoder does not do.</summary>
    public static string DetectPrefix(IWeightSource src)
    {
        foreach (var p in Prefixes)
            if (src.Tensors.ContainsKey(p + "embeddings.word_embeddings.weight")) return p;
        var sample = string.Join(", ", src.Tensors.Keys.Take(8));
        throw new InvalidDataException(
            $"{src.Path}: no word embeddings found (looked for '{{prefix}}embeddings.word_embeddings.weight' with prefix one of " +
            $"{string.Join(", ", Prefixes.Select(p => $"'{p}'"))}). Is this a BERT-family model? First tensors: {sample}");
    }

    private static readonly string[] Prefixes = ["", "bert.", "distilbert.", "albert.", "model."];

    /// <summary>Guesses the family from the tensor names (for files without a config.json, e.g. ONNX).</summary>
    public static BertArch DetectArch(IWeightSource src, string prefix)
    {
        if (src.Tensors.ContainsKey(prefix + "transformer.layer.0.attention.q_lin.weight")) return BertArch.DistilBert;
        if (src.Tensors.ContainsKey(prefix + "encoder.embedding_hidden_mapping_in.weight")) return BertArch.Albert;
        return BertArch.Bert;
    }

    public static BertWeights Bind(IWeightSource src, BertConfig cfg, bool withMlmHead)
    {
        var b = new Binder(src);
        string p = DetectPrefix(src);
        int v = cfg.VocabSize, e = cfg.EmbeddingSize, h = cfg.HiddenSize, f = cfg.IntermediateSize;
        var word = b.Matrix(p + "embeddings.word_embeddings.weight", v, e);
        var pos = b.Matrix(p + "embeddings.position_embeddings.weight", cfg.MaxPositions, e);
        WeightMatrix? types = cfg.TypeVocabSize > 0 ? b.Matrix(p + "embeddings.token_type_embeddings.weight", cfg.TypeVocabSize, e) : null;
        var embLnW = b.Vector(p + "embeddings.LayerNorm.weight", e);
        var embLnB = b.Vector(p + "embeddings.LayerNorm.bias", e);
        WeightMatrix? proj = null;
        float[]? projB = null;
        var layers = new BertLayerWeights[cfg.NumLayers];
        switch (cfg.Arch)
        {
            case BertArch.Bert:
                for (int i = 0; i < cfg.NumLayers; i++)
                {
                    string l = $"{p}encoder.layer.{i}.";
                    layers[i] = Layer(b, h, f,
                        l + "attention.self.query", l + "attention.self.key", l + "attention.self.value", l + "attention.output.dense",
                        l + "attention.output.LayerNorm", l + "intermediate.dense", l + "output.dense", l + "output.LayerNorm");
                }
                break;
            case BertArch.DistilBert:
                for (int i = 0; i < cfg.NumLayers; i++)
                {
                    string l = $"{p}transformer.layer.{i}.";
                    layers[i] = Layer(b, h, f,
                        l + "attention.q_lin", l + "attention.k_lin", l + "attention.v_lin", l + "attention.out_lin",
                        l + "sa_layer_norm", l + "ffn.lin1", l + "ffn.lin2", l + "output_layer_norm");
                }
                break;
            case BertArch.Albert:
                proj = b.Matrix(p + "encoder.embedding_hidden_mapping_in.weight", h, e);
                projB = b.Vector(p + "encoder.embedding_hidden_mapping_in.bias", h);
                var groups = new BertLayerWeights[cfg.NumHiddenGroups];
                for (int g = 0; g < groups.Length; g++)
                {
                    string l = $"{p}encoder.albert_layer_groups.{g}.albert_layers.0.";
                    groups[g] = Layer(b, h, f,
                        l + "attention.query", l + "attention.key", l + "attention.value", l + "attention.dense",
                        l + "attention.LayerNorm", l + "ffn", l + "ffn_output", l + "full_layer_layer_norm");
                }
                int perGroup = cfg.NumLayers / cfg.NumHiddenGroups;
                for (int i = 0; i < cfg.NumLayers; i++) layers[i] = groups[i / perGroup];
                break;
        }

        BertMlmHeadWeights? mlm = null;
        if (withMlmHead)
        {
            string m = cfg.Arch switch
            {
                BertArch.Bert => "cls.predictions.",
                BertArch.DistilBert => "",
                _ => "predictions.",
            };
            (string dense, string ln, string dec, string bias, string bias2) = cfg.Arch switch
            {
                BertArch.DistilBert => ("vocab_transform", "vocab_layer_norm", "vocab_projector.weight", "vocab_projector.bias", "vocab_projector.bias"),
                BertArch.Bert => (m + "transform.dense", m + "transform.LayerNorm", m + "decoder.weight", m + "bias", m + "decoder.bias"),
                _ => (m + "dense", m + "LayerNorm", m + "decoder.weight", m + "bias", m + "decoder.bias"),
            };
            if (!src.Tensors.ContainsKey(dense + ".weight"))
                throw new InvalidDataException(
                    $"{src.Path}: this {cfg.Arch} model has no masked-LM head ('{dense}.weight' and the rest are absent). " +
                    "It is an encoder for embeddings (e.g. a sentence-transformers model); fill-mask needs a *ForMaskedLM checkpoint such as bert-base-uncased.");
            var decoder = src.Tensors.ContainsKey(dec) ? b.Matrix(dec, v, e) : word;   // tied when absent
            mlm = new BertMlmHeadWeights
            {
                Dense = b.Matrix(dense + ".weight", e, h),
                DenseB = b.Vector(dense + ".bias", e),
                LnW = b.Vector(ln + ".weight", e),
                LnB = b.Vector(ln + ".bias", e),
                Decoder = decoder,
                DecoderB = src.Tensors.ContainsKey(bias) ? b.Vector(bias, v) : b.Vector(bias2, v),
            };
        }

        WeightMatrix? pooler = null;
        float[]? poolerB = null;
        string poolName = cfg.Arch == BertArch.Albert ? p + "pooler" : p + "pooler.dense";
        if (src.Tensors.ContainsKey(poolName + ".weight"))
        {
            pooler = b.Matrix(poolName + ".weight", h, h);
            poolerB = b.Vector(poolName + ".bias", h);
        }

        b.ThrowIfErrors(cfg);
        return new BertWeights
        {
            Word = word, Position = pos, TokenType = types, EmbLnW = embLnW, EmbLnB = embLnB,
            Projection = proj, ProjectionB = projB, Layers = layers, Mlm = mlm, Pooler = pooler, PoolerB = poolerB,
        };
    }

    private static BertLayerWeights Layer(Binder b, int h, int f, string q, string k, string v, string o, string ln1, string up, string down, string ln2) => new()
    {
        Wq = b.Matrix(q + ".weight", h, h), Bq = b.Vector(q + ".bias", h),
        Wk = b.Matrix(k + ".weight", h, h), Bk = b.Vector(k + ".bias", h),
        Wv = b.Matrix(v + ".weight", h, h), Bv = b.Vector(v + ".bias", h),
        Wo = b.Matrix(o + ".weight", h, h), Bo = b.Vector(o + ".bias", h),
        Ln1W = b.Vector(ln1 + ".weight", h), Ln1B = b.Vector(ln1 + ".bias", h),
        Wi = b.Matrix(up + ".weight", f, h), Bi = b.Vector(up + ".bias", f),
        Wd = b.Matrix(down + ".weight", h, f), Bd = b.Vector(down + ".bias", h),
        Ln2W = b.Vector(ln2 + ".weight", h), Ln2B = b.Vector(ln2 + ".bias", h),
    };

    /// <summary>Looks tensors up, collecting every problem so one error lists them all.</summary>
    private sealed class Binder(IWeightSource src)
    {
        private readonly List<string> _missing = [];
        private readonly List<string> _badShape = [];

        private TensorInfo? Find(string name)
        {
            if (src.Tensors.TryGetValue(name, out var t)) return t;
            // Old TensorFlow-converted checkpoints name LayerNorm parameters gamma/beta.
            if (name.EndsWith("LayerNorm.weight", StringComparison.Ordinal) && src.Tensors.TryGetValue(name[..^6] + "gamma", out t)) return t;
            if (name.EndsWith("LayerNorm.bias", StringComparison.Ordinal) && src.Tensors.TryGetValue(name[..^4] + "beta", out t)) return t;
            return null;
        }

        public unsafe WeightMatrix Matrix(string name, int rows, int cols)
        {
            var t = Find(name);
            if (t is null) { _missing.Add($"{name} [{rows}, {cols}]"); return default; }
            if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != cols)
            {
                _badShape.Add($"{name} is [{string.Join(", ", t.Shape)}], expected [{rows}, {cols}]");
                return default;
            }
            return t.AsMatrix();
        }

        public unsafe float[] Vector(string name, int n)
        {
            var t = Find(name);
            if (t is null) { _missing.Add($"{name} [{n}]"); return new float[n]; }
            if (t.ElementCount != n || t.Shape.Length != 1)
            {
                _badShape.Add($"{name} is [{string.Join(", ", t.Shape)}], expected [{n}]");
                return new float[n];
            }
            var r = new float[n];
            if (n == 0) return r;
            Tensors.Types.DTypes.Of(t.Type).DequantizeRow(new ReadOnlySpan<byte>((void*)t.Data, checked((int)t.ByteLength)), r);
            return r;
        }

        public void ThrowIfErrors(BertConfig cfg)
        {
            if (_missing.Count == 0 && _badShape.Count == 0) return;
            var sb = new StringBuilder();
            sb.Append(CultureInfo.InvariantCulture, $"{src.Path}: not a complete {cfg.Arch} model ({cfg}).");
            if (_missing.Count > 0)
                sb.Append(CultureInfo.InvariantCulture, $" Missing {_missing.Count} tensor(s): {string.Join("; ", _missing.Take(20))}{(_missing.Count > 20 ? "; ..." : "")}.");
            if (_badShape.Count > 0)
                sb.Append(CultureInfo.InvariantCulture, $" Mis-shaped: {string.Join("; ", _badShape.Take(20))}.");
            throw new InvalidDataException(sb.ToString());
        }
    }
}

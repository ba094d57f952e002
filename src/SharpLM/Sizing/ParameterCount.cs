using System.Globalization;

namespace SharpLM.Sizing;

/// <summary>One parameter tensor family, summed over layers.</summary>
/// <param name="Name">e.g. "attention.q.weight"</param>
/// <param name="Group">embeddings, attention, mlp, norms, output_head or pooler</param>
/// <param name="Count">parameters in the whole model</param>
/// <param name="PerLayer">parameters in one layer (0 for tensors outside the layers)</param>
/// <param name="Formula">how Count was computed, symbols then numbers</param>
internal sealed record ParamComponent(string Name, string Group, long Count, long PerLayer, string Formula);

/// <summary>
/// A model's parameter count by component, from its <see cref="ModelArchitecture"/> alone (no file needed).
/// The sum is what PyTorch's <c>sum(p.numel() for p in model.parameters())</c> gives for the HF class
/// (tied matrices counted once; buffers such as position_ids or rotary inv_freq not counted).
/// </summary>
internal sealed class ParameterCount
{
    public static readonly string[] Groups = ["embeddings", "attention", "mlp", "norms", "output_head", "pooler"];

    public ModelArchitecture Architecture { get; }
    public IReadOnlyList<ParamComponent> Components { get; }
    public long Total { get; }
    /// <summary>Parameters in one layer's parameter set (attention + MLP + its norms).</summary>
    public long PerLayer { get; }
    /// <summary>The per-layer formula, e.g. "12h² + 13h" for GPT-2 and BERT.</summary>
    public string PerLayerFormula { get; }
    /// <summary>Attention block per layer and its formula (e.g. "4h² + 4h").</summary>
    public long AttentionPerLayer { get; }
    public string AttentionFormula { get; }
    /// <summary>Parameters used for each token: differs from <see cref="Total"/> only for mixtures of experts.</summary>
    public long Active { get; }
    /// <summary>Lookup tables (token, position, token type): memory, but no matrix multiply per token.</summary>
    public long EmbeddingLookup { get; }

    public IReadOnlyDictionary<string, long> ByGroup { get; }

    /// <summary>
    /// The same total counted tensor by tensor from the architecture table (<see cref="Models.TensorTable"/>): every
    /// tensor the configuration has, buffers and task heads excluded, the pooler when the view counts one. It equals
    /// <see cref="Total"/> for dense models (the tests check it); the components and their formulas above are calc's
    /// presentation of it.
    /// </summary>
    public long TableTotal { get; }

    public ParameterCount(ModelArchitecture a)
    {
        Architecture = a;
        var list = new List<ParamComponent>();
        long h = a.Hidden, e = a.EmbeddingSize, v = a.VocabSize, q = a.QDim, kv = a.KvDim, f = a.Intermediate;
        long ls = a.StoredLayers;
        string L = ls == a.Layers ? "L" : "L_stored";
        string N(long x) => x.ToString(CultureInfo.InvariantCulture);
        string Ls = N(ls);
        long normSize = a.Norm == NormKind.LayerNorm ? 2 : 1;
        string normSym = a.Norm == NormKind.LayerNorm ? "2h" : "h";

        void Add(string name, string group, long perLayer, long total, string formula) =>
            list.Add(new ParamComponent(name, group, total, perLayer, formula));
        void Global(string name, string group, long count, string sym, string nums) =>
            Add(name, group, 0, count, $"{sym} = {nums}");
        void Layer(string name, string group, long perLayer, string sym, string nums) =>
            Add(name, group, perLayer, checked(perLayer * ls), $"{L}·{sym} = {Ls}·{nums}");

        // embeddings
        string E = a.EmbeddingSize == h ? "h" : "E";
        Global("embeddings.token", "embeddings", checked(v * e), $"V·{E}", $"{N(v)}·{N(e)}");
        if (a.LearnedPositions > 0)
            Global("embeddings.position", "embeddings", checked(a.LearnedPositions * e), $"P·{E}", $"{N(a.LearnedPositions)}·{N(e)}");
        if (a.TokenTypes > 0)
            Global("embeddings.token_type", "embeddings", a.TokenTypes * e, $"T·{E}", $"{N(a.TokenTypes)}·{N(e)}");
        if (a.EmbeddingNorm)
            Global("embeddings.norm", "embeddings", 2 * e, $"2{E}", $"2·{N(e)}");
        if (a.EmbeddingProjection)
            Global("embeddings.projection", "embeddings", e * h + h, "E·h + h", $"{N(e)}·{N(h)} + {N(h)}");

        // attention, per layer
        Layer("attention.q.weight", "attention", h * q, "h·(NH·HS)", $"{N(h)}·{N(q)}");
        Layer("attention.k.weight", "attention", h * kv, "h·(KVH·HS)", $"{N(h)}·{N(kv)}");
        Layer("attention.v.weight", "attention", h * kv, "h·(KVH·HS)", $"{N(h)}·{N(kv)}");
        Layer("attention.o.weight", "attention", q * h, "(NH·HS)·h", $"{N(q)}·{N(h)}");
        if (a.QkvBias)
        {
            Layer("attention.q.bias", "attention", q, "NH·HS", N(q));
            Layer("attention.k.bias", "attention", kv, "KVH·HS", N(kv));
            Layer("attention.v.bias", "attention", kv, "KVH·HS", N(kv));
        }
        if (a.OutBias) Layer("attention.o.bias", "attention", h, "h", N(h));

        // MLP, per layer (per expert for MoE)
        long x = a.IsMoe ? a.Experts : 1;
        string X = a.IsMoe ? "X·" : "", Xn = a.IsMoe ? N(x) + "·" : "";
        if (a.IsMoe) Layer("mlp.router", "mlp", h * x, "h·X", $"{N(h)}·{N(x)}");
        if (a.SharedExpertIntermediate > 0)
        {
            long fs = a.SharedExpertIntermediate;
            Layer("mlp.shared", "mlp", 3 * h * fs + h, "3h·FS + h", $"3·{N(h)}·{N(fs)} + {N(h)}");
        }
        if (a.GatedMlp) Layer("mlp.gate.weight", "mlp", x * h * f, $"{X}h·F", $"{Xn}{N(h)}·{N(f)}");
        Layer("mlp.up.weight", "mlp", x * h * f, $"{X}h·F", $"{Xn}{N(h)}·{N(f)}");
        Layer("mlp.down.weight", "mlp", x * f * h, $"{X}F·h", $"{Xn}{N(f)}·{N(h)}");
        if (a.MlpBias)
        {
            if (a.GatedMlp) Layer("mlp.gate.bias", "mlp", x * f, $"{X}F", $"{Xn}{N(f)}");
            Layer("mlp.up.bias", "mlp", x * f, $"{X}F", $"{Xn}{N(f)}");
            Layer("mlp.down.bias", "mlp", x * h, $"{X}h", $"{Xn}{N(h)}");
        }

        // norms
        int layerNorms = a.PostNorms ? 4 : 2;
        Layer("norms.layer", "norms", layerNorms * normSize * h, $"{layerNorms}·{normSym}", $"{layerNorms}·{N(normSize * h)}");
        if (a.QkNorm) Layer("norms.qk", "norms", 2 * a.HeadDim, "2·HS", $"2·{N(a.HeadDim)}");
        if (a.FinalNorm) Global("norms.final", "norms", normSize * h, normSym, N(normSize * h));

        // head and pooler
        if (!a.HasLmHead) list.Add(new ParamComponent("output_head", "output_head", 0, 0, "none (encoder without an LM head)"));
        else if (a.TiedEmbeddings) list.Add(new ParamComponent("output_head", "output_head", 0, 0, "0: tied to the token embedding"));
        else Global("output_head", "output_head", checked(v * h), "V·h", $"{N(v)}·{N(h)}");
        if (a.Pooler) Global("pooler", "pooler", h * h + h, "h² + h", $"{N(h)}² + {N(h)}");

        Components = list;
        Total = list.Sum(c => c.Count);
        PerLayer = list.Sum(c => c.PerLayer);
        AttentionPerLayer = list.Where(c => c.Group == "attention").Sum(c => c.PerLayer);
        AttentionFormula = AttentionSymbolic(a);
        PerLayerFormula = PerLayerSymbolic(a);
        var groups = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var g in Groups) groups[g] = list.Where(c => c.Group == g).Sum(c => c.Count);
        ByGroup = groups;
        long inactiveExperts = a.IsMoe ? (a.Experts - a.ExpertsPerToken) * (a.GatedMlp ? 3 : 2) * h * f * ls : 0;
        if (a.IsMoe && a.MlpBias) inactiveExperts += (a.Experts - a.ExpertsPerToken) * ((a.GatedMlp ? 2 : 1) * f + h) * ls;
        Active = Total - inactiveExperts;
        TableTotal = a.Config is { } cfg ? CountFromTable(cfg with { Pooler = a.Pooler }) : Total;
        EmbeddingLookup = list.Where(c => c.Name is "embeddings.token" or "embeddings.position" or "embeddings.token_type").Sum(c => c.Count);
    }

    private static long CountFromTable(Models.ModelConfig c)
    {
        long total = 0;
        foreach (var t in Models.TensorTable.Expand(c, Models.TensorNaming.Gguf))
        {
            if (t.Decl.NotAParameter || t.Decl.Component == "mlm_head" || t.Need is Models.TensorNeed.Unused or Models.TensorNeed.Optional) continue;
            long count = t.Elements;
            total = checked(total + count);
        }
        return total;
    }

    /// <summary>"4h² + 4h" when q, k, v, o are all h×h with biases (the study note's formula), else the general form.</summary>
    private static string AttentionSymbolic(ModelArchitecture a)
    {
        bool square = a.QDim == a.Hidden && a.KvDim == a.Hidden;
        int biases = (a.QkvBias ? 3 : 0) + (a.OutBias ? 1 : 0);
        if (square) return biases == 0 ? "4h²" : $"4h² + {biases}h";
        string w = a.QDim == a.Hidden ? "2h² + 2h·(KVH·HS)" : "2h·(NH·HS) + 2h·(KVH·HS)";
        string b = (a.QkvBias ? " + NH·HS + 2·KVH·HS" : "") + (a.OutBias ? " + h" : "");
        return w + b;
    }

    private static string PerLayerSymbolic(ModelArchitecture a)
    {
        string attn = AttentionSymbolic(a);
        string norms = a.Norm == NormKind.LayerNorm ? "4h" : a.PostNorms ? "4h" : "2h";
        if (!a.IsMoe && !a.GatedMlp && a.MlpBias && a.Intermediate == 4 * a.Hidden && attn == "4h² + 4h" && a.Norm == NormKind.LayerNorm)
            return "12h² + 13h  (attention 4h² + 4h, MLP 8h² + 5h, 2 LayerNorms 4h)";
        string mlp = a.IsMoe ? (a.GatedMlp ? "X·3h·F + h·X" : "X·2h·F + h·X") : a.GatedMlp ? "3h·F" : "2h·F";
        if (a.MlpBias) mlp += a.GatedMlp ? " + 2F + h" : " + F + h";
        return $"attention ({attn}) + MLP ({mlp}) + norms ({norms}{(a.QkNorm ? " + 2·HS" : "")})";
    }
}

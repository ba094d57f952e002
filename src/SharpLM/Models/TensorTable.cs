using System.Globalization;

namespace SharpLM.Models;

/// <summary>Whether a model of a given configuration has a tensor.</summary>
public enum TensorNeed
{
    /// <summary>The model needs it; a file without it does not load.</summary>
    Required,
    /// <summary>Used when present (e.g. Llama-3 rope_freqs in GGUF).</summary>
    Optional,
    /// <summary>Not part of this configuration; tolerated in a file but never read (lm_head of a tied checkpoint).</summary>
    Unused,
    /// <summary>Not part of this configuration.</summary>
    Absent,
}

/// <summary>
/// One tensor of an architecture, as llama.cpp's src/llama-arch.cpp and gguf-py's tensor_mapping.py list them: its GGUF
/// name, its Hugging Face name ("{N}" = block index), its row-major shape in the README's dimension letters
/// (e.g. "NH*HS, C": a linear weight is (out, in)), the calc component it counts under, and when a configuration has it.
/// <see cref="Role"/> is the short name the model code binds by ("attn_q", "token_embd"): the GGUF name without
/// "blk.{N}." and ".weight"/".bias" suffix-joined (e.g. "attn_q.bias").
/// </summary>
public sealed record TensorDecl(string Role, string Gguf, string Hf, string Shape, string Component, Func<ModelConfig, TensorNeed> Need)
{
    /// <summary>A tensor every configuration of the architecture has.</summary>
    public static Func<ModelConfig, TensorNeed> Always { get; } = _ => TensorNeed.Required;

    public static Func<ModelConfig, TensorNeed> When(Func<ModelConfig, bool> present) => c => present(c) ? TensorNeed.Required : TensorNeed.Absent;

    /// <summary>Per block ("{N}" in the names).</summary>
    public bool PerLayer => Gguf.Contains("{N}", StringComparison.Ordinal);

    /// <summary>Hugging Face GPT-2 stores this matrix transposed (Conv1D: (in, out)); SharpLM keeps (out, in).</summary>
    public bool HfTransposed { get; init; }

    /// <summary>A norm weight Hugging Face stores as w for x * (1 + w) and GGUF as 1 + w (Gemma): 1 is added when the
    /// tensor is read from (or converted out of) a Hugging Face checkpoint.</summary>
    public bool HfAddOne { get; init; }

    /// <summary>Other Hugging Face names checkpoints use for this tensor ("{N}" and "{P}" as in <see cref="Hf"/>): old
    /// TensorFlow conversions name LayerNorm parameters gamma/beta; BERT's MLM bias is sometimes only the decoder's.</summary>
    public IReadOnlyList<string> HfAliases { get; init; } = [];

    /// <summary>A buffer or precomputed table rather than a trained parameter (not counted by calc).</summary>
    public bool NotAParameter { get; init; }

    /// <summary>The row-major shape for <paramref name="c"/>: each comma-separated term is a sum of products (or quotients)
    /// of dimension letters and integers, e.g. "3*C", "R/2" or "NH*HS+2*KVH*HS".</summary>
    public long[] ShapeFor(ModelConfig c)
    {
        var terms = Shape.Split(',', StringSplitOptions.TrimEntries);
        var shape = new long[terms.Length];
        for (int i = 0; i < terms.Length; i++) shape[i] = Evaluate(terms[i], c);
        return shape;
    }

    /// <summary>The letters of each dimension ("NH*HS", "C").</summary>
    public string[] ShapeLetters => Shape.Split(',', StringSplitOptions.TrimEntries);

    private static long Evaluate(string term, ModelConfig c)
    {
        if (term.Contains('+', StringComparison.Ordinal)) return term.Split('+').Sum(t => Evaluate(t, c));
        long v = 1;
        int i = 0;
        char op = '*';
        while (i < term.Length)
        {
            int j = i;
            while (j < term.Length && term[j] is not ('*' or '/')) j++;
            string tok = term[i..j].Trim();
            long x = long.TryParse(tok, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : c.Dim(tok);
            v = op == '*' ? checked(v * x) : v / x;
            if (j < term.Length) op = term[j];
            i = j + 1;
        }
        return v;
    }

    public string GgufFor(int layer) => Gguf.Replace("{N}", layer.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public string HfFor(int layer) => Hf.Replace("{N}", layer.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public string NameFor(TensorNaming naming, int layer) => naming == TensorNaming.Gguf ? GgufFor(layer) : HfFor(layer);
}

/// <summary>Which column of a tensor table a file uses.</summary>
public enum TensorNaming
{
    /// <summary>llama.cpp's names (token_embd.weight, blk.N.attn_q.weight).</summary>
    Gguf,
    /// <summary>Hugging Face transformers' names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight).</summary>
    HuggingFace,
}

/// <summary>One tensor a configuration has: its declaration, block index (-1 outside the blocks), name in a naming, shape.</summary>
internal sealed record TensorSpec(TensorDecl Decl, int Layer, string Name, long[] Shape, TensorNeed Need)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => checked(a * b));

    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]{(Need == TensorNeed.Optional ? " (optional)" : "")}";
}

/// <summary>Expands an architecture's table for a configuration.</summary>
internal static class TensorTable
{
    /// <summary>
    /// Every tensor <paramref name="c"/> has (Required and Optional), plus the Unused ones a file may carry, named in
    /// <paramref name="naming"/>. Per-layer tensors repeat over the stored layer sets (<see cref="ModelConfig.LayerGroups"/>).
    /// </summary>
    public static List<TensorSpec> Expand(ModelConfig c, TensorNaming naming, IEnumerable<TensorDecl>? table = null)
    {
        // the tensors outside the blocks first, then block by block (the order of the file writers and the parameters)
        var list = new List<TensorSpec>();
        var decls = (table ?? c.Arch.Tensors).Select(d => (Decl: d, Need: d.Need(c))).Where(x => x.Need != TensorNeed.Absent).ToList();
        foreach (var (d, need) in decls.Where(x => !x.Decl.PerLayer))
            list.Add(new TensorSpec(d, -1, d.NameFor(naming, 0), d.ShapeFor(c), need));
        for (int l = 0; l < c.LayerGroups; l++)
            foreach (var (d, need) in decls.Where(x => x.Decl.PerLayer))
                list.Add(new TensorSpec(d, l, d.NameFor(naming, l), d.ShapeFor(c), need));
        return list;
    }

    /// <summary>The GGUF name of a Hugging Face tensor name under <paramref name="table"/>, or null.</summary>
    public static string? HfToGguf(IEnumerable<TensorDecl> table, string hfName) => Map(table, hfName, fromHf: true);

    /// <summary>The Hugging Face name of a GGUF tensor name under <paramref name="table"/>, or null.</summary>
    public static string? GgufToHf(IEnumerable<TensorDecl> table, string ggufName) => Map(table, ggufName, fromHf: false);

    /// <summary>The declaration and block index a name (in either naming) refers to, or null.</summary>
    public static (TensorDecl Decl, int Layer)? Find(IEnumerable<TensorDecl> table, string name)
    {
        foreach (var d in table)
            foreach (var pattern in new[] { d.Gguf, d.Hf })
                if (Match(pattern, name, out int layer)) return (d, layer);
        return null;
    }

    private static string? Map(IEnumerable<TensorDecl> table, string name, bool fromHf)
    {
        foreach (var d in table)
            if (Match(fromHf ? d.Hf : d.Gguf, name, out int layer))
                return fromHf ? d.GgufFor(layer) : d.HfFor(layer);
        return null;
    }

    private static bool Match(string pattern, string name, out int layer)
    {
        layer = -1;
        int at = pattern.IndexOf("{N}", StringComparison.Ordinal);
        if (at < 0) return pattern == name;
        string prefix = pattern[..at], suffix = pattern[(at + 3)..];
        if (name.Length <= prefix.Length + suffix.Length || !name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(suffix, StringComparison.Ordinal))
            return false;
        return int.TryParse(name.AsSpan(prefix.Length, name.Length - prefix.Length - suffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out layer);
    }
}

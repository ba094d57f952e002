using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.PostProcessors;

/// <summary>One piece of a template: a sequence (A or B) or a special token, with its type id.</summary>
internal readonly record struct TemplatePiece(bool IsSequence, int SequenceIndex, string SpecialId, int TypeId);

/// <summary>A special token of a template: its name and the ids/tokens it expands to.</summary>
internal sealed record TemplateSpecialToken(string Name, int[] Ids, string[] Tokens);

/// <summary>TemplateProcessing (HF processors/template.rs), e.g. single "[CLS] $A [SEP]", pair "[CLS] $A [SEP] $B:1 [SEP]:1".</summary>
internal sealed class TemplateProcessor(IReadOnlyList<TemplatePiece> single, IReadOnlyList<TemplatePiece> pair,
    IReadOnlyDictionary<string, TemplateSpecialToken> specialTokens) : IPostProcessor
{
    public IReadOnlyList<TemplatePiece> Single { get; } = single;
    public IReadOnlyList<TemplatePiece> Pair { get; } = pair;
    public IReadOnlyDictionary<string, TemplateSpecialToken> SpecialTokens { get; } = specialTokens;

    public int AddedTokens(bool isPair)
    {
        int n = 0;
        foreach (var p in isPair ? Pair : Single)
            if (!p.IsSequence) n += SpecialTokens[p.SpecialId].Ids.Length;
        return n;
    }

    public Encoding Process(Encoding encoding, Encoding? pair, bool addSpecialTokens)
    {
        var result = Apply(encoding, pair, addSpecialTokens);
        var overflow = new List<Encoding>();
        foreach (var o in encoding.Overflowing) overflow.Add(Apply(o, pair, addSpecialTokens));
        if (pair != null) foreach (var o in pair.Overflowing) overflow.Add(Apply(encoding, o, addSpecialTokens));
        result.Overflowing = overflow;
        return result;
    }

    private Encoding Apply(Encoding a, Encoding? b, bool addSpecialTokens)
    {
        var parts = new List<Encoding>();
        foreach (var p in b == null ? Single : Pair)
        {
            if (p.IsSequence)
            {
                var src = p.SequenceIndex == 0 ? a : b!;
                var e = src.Slice(0, src.Count);
                e.SetTypeIds(p.TypeId);
                e.SetSequenceId(p.SequenceIndex);
                parts.Add(e);
            }
            else if (addSpecialTokens)
            {
                var t = SpecialTokens[p.SpecialId];
                int n = t.Ids.Length;
                var offs = new (int, int)[n];
                var types = new int[n];
                Array.Fill(types, p.TypeId);
                var ones = new int[n];
                Array.Fill(ones, 1);
                var seq = new int[n];
                Array.Fill(seq, -1);
                parts.Add(new Encoding((int[])t.Ids.Clone(), (string[])t.Tokens.Clone(), offs, types, (int[])ones.Clone(), ones, seq));
            }
        }
        return Encoding.Concat([.. parts]);
    }
}

/// <summary>BertProcessing: [CLS] A [SEP] (B [SEP]) with type ids 0 / 1.</summary>
internal sealed class BertProcessor((string Token, int Id) sep, (string Token, int Id) cls) : IPostProcessor
{
    public (string Token, int Id) Sep { get; } = sep;
    public (string Token, int Id) Cls { get; } = cls;

    public int AddedTokens(bool isPair) => isPair ? 3 : 2;

    public Encoding Process(Encoding encoding, Encoding? pair, bool addSpecialTokens)
    {
        if (!addSpecialTokens) return DefaultProcessor.Merge(encoding, pair);
        return Template().Process(encoding, pair, true);
    }

    internal TemplateProcessor Template()
    {
        var specials = new Dictionary<string, TemplateSpecialToken>
        {
            ["cls"] = new("cls", [Cls.Id], [Cls.Token]),
            ["sep"] = new("sep", [Sep.Id], [Sep.Token]),
        };
        return new TemplateProcessor(
            [new(false, 0, "cls", 0), new(true, 0, "", 0), new(false, 0, "sep", 0)],
            [new(false, 0, "cls", 0), new(true, 0, "", 0), new(false, 0, "sep", 0), new(true, 1, "", 1), new(false, 0, "sep", 1)],
            specials);
    }
}

/// <summary>RobertaProcessing: &lt;s&gt; A &lt;/s&gt; (&lt;/s&gt; B &lt;/s&gt;), all type ids 0, ByteLevel offset trimming.</summary>
internal sealed class RobertaProcessor((string Token, int Id) sep, (string Token, int Id) cls, bool trimOffsets, bool addPrefixSpace) : IPostProcessor
{
    public int AddedTokens(bool isPair) => isPair ? 4 : 2;

    public Encoding Process(Encoding encoding, Encoding? pair, bool addSpecialTokens)
    {
        if (trimOffsets)
        {
            ByteLevelProcessor.TrimOffsets(encoding, addPrefixSpace);
            if (pair != null) ByteLevelProcessor.TrimOffsets(pair, addPrefixSpace);
        }
        encoding.SetTypeIds(0);
        pair?.SetTypeIds(0);
        if (!addSpecialTokens) return DefaultProcessor.Merge(encoding, pair);
        var specials = new Dictionary<string, TemplateSpecialToken>
        {
            ["cls"] = new("cls", [cls.Id], [cls.Token]),
            ["sep"] = new("sep", [sep.Id], [sep.Token]),
        };
        return new TemplateProcessor(
            [new(false, 0, "cls", 0), new(true, 0, "", 0), new(false, 0, "sep", 0)],
            [new(false, 0, "cls", 0), new(true, 0, "", 0), new(false, 0, "sep", 0), new(false, 0, "sep", 0), new(true, 1, "", 0), new(false, 0, "sep", 0)],
            specials).Process(encoding, pair, true);
    }
}

/// <summary>ByteLevel post-processor: trims the spans of tokens that start/end with (byte-level) spaces.</summary>
internal sealed class ByteLevelProcessor(bool trimOffsets, bool addPrefixSpace) : IPostProcessor
{
    public int AddedTokens(bool isPair) => 0;

    public Encoding Process(Encoding encoding, Encoding? pair, bool addSpecialTokens)
    {
        if (trimOffsets)
        {
            TrimOffsets(encoding, addPrefixSpace);
            if (pair != null) TrimOffsets(pair, addPrefixSpace);
        }
        return DefaultProcessor.Merge(encoding, pair);
    }

    internal void Trim(Encoding a, Encoding? b)
    {
        if (!trimOffsets) return;
        TrimOffsets(a, addPrefixSpace);
        if (b != null) TrimOffsets(b, addPrefixSpace);
    }

    internal static void TrimOffsets(Encoding e, bool addPrefixSpace)
    {
        var toks = e.TokensArray;
        var offs = e.OffsetsArray;
        char g = ByteLevelTables.ByteToChar[' '];
        for (int i = 0; i < toks.Length; i++)
        {
            string t = toks[i];
            int lead = 0, trail = 0;
            while (lead < t.Length && (t[lead] == g || char.IsWhiteSpace(t[lead]))) lead++;
            while (trail < t.Length && (t[t.Length - 1 - trail] == g || char.IsWhiteSpace(t[t.Length - 1 - trail]))) trail++;
            if (lead == 0 && trail == 0) continue;
            var (s, en) = offs[i];
            if (lead > 0)
            {
                bool isFirst = i == 0 || s == 0;
                if (isFirst && addPrefixSpace && lead == 1) lead = 0;
                s = Math.Min(s + lead, en);
            }
            if (trail > 0 && en >= trail) en = Math.Max(en - trail, s);
            offs[i] = (s, en);
        }
        foreach (var o in e.Overflowing) TrimOffsets(o, addPrefixSpace);
    }
}

/// <summary>Several post-processors in order (each on the result of the previous one).</summary>
internal sealed class SequenceProcessor(IReadOnlyList<IPostProcessor> items) : IPostProcessor
{
    public IReadOnlyList<IPostProcessor> Items => items;

    public int AddedTokens(bool isPair) => items.Sum(p => p.AddedTokens(isPair));

    public Encoding Process(Encoding encoding, Encoding? pair, bool addSpecialTokens)
    {
        // HF applies each processor to the list of encodings; the merge happens once the list is reduced.
        // Trimming processors keep the list; the first merging processor merges it.
        Encoding? merged = null;
        foreach (var p in items)
        {
            if (merged == null && p is ByteLevelProcessor bl)
            {
                bl.Trim(encoding, pair);
                continue;
            }
            merged = merged == null ? p.Process(encoding, pair, addSpecialTokens) : p.Process(merged, null, addSpecialTokens);
        }
        return merged ?? DefaultProcessor.Merge(encoding, pair);
    }
}

/// <summary>HF default_process: a pair is concatenated (type ids as encoded: 0 and 1).</summary>
internal static class DefaultProcessor
{
    public static Encoding Merge(Encoding a, Encoding? b)
    {
        if (b == null) return a;
        a.SetSequenceId(0);
        b.SetSequenceId(1);
        var r = Encoding.Concat(a, b);
        var overflow = new List<Encoding>();
        foreach (var o in a.Overflowing) overflow.Add(Encoding.Concat(o, b));
        foreach (var o in b.Overflowing) overflow.Add(Encoding.Concat(a, o));
        r.Overflowing = overflow;
        return r;
    }
}

using System.Buffers.Binary;
using System.Text.Json;
using SharpLM.Formats.Gguf;

namespace SharpLM.Sizing;

/// <summary>The tensors actually stored in a model file, to check a computed count against.</summary>
/// <param name="Tensors">parameter tensors counted</param>
/// <param name="Parameters">their elements</param>
/// <param name="Bytes">their bytes as stored</param>
/// <param name="Excluded">tensors that are buffers, not parameters (rotary tables, position_ids, masks) or task
/// heads the architecture does not include (BERT's cls.*), by name</param>
internal sealed record FileCensus(string Path, string Format, int Tensors, long Parameters, long Bytes, IReadOnlyList<string> Excluded);

/// <summary>What <c>sharplm calc</c> sizes: an architecture, where it came from, and the file's own census if any.</summary>
internal sealed record SizingInput(ModelArchitecture Architecture, string Source, FileCensus? File);

/// <summary>Loads a <see cref="SizingInput"/> from a config.json, a Hugging Face folder, a GGUF file or a preset.</summary>
internal static class ModelSource
{
    public static SizingInput FromPreset(string name) =>
        new(ModelPresets.Load(name), $"preset {name.Trim().ToLowerInvariant()} ({ModelPresets.Source(name)})", null);

    public static SizingInput FromConfig(string path) => new(HfConfig.Load(path), path, null);

    /// <summary>A GGUF file, a Hugging Face folder (config.json + *.safetensors), or a config.json.</summary>
    public static SizingInput FromModel(string path)
    {
        if (Directory.Exists(path)) return FromFolder(path);
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"model path '{path}' does not exist.", path);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return FromConfig(path);
        Span<byte> magic = stackalloc byte[4];
        using (var fs = System.IO.File.OpenRead(path))
            if (fs.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4) throw new InvalidDataException($"{path}: too short to be a model file ({fs.Length} bytes).");
        if (BinaryPrimitives.ReadUInt32LittleEndian(magic) == GgufFile.Magic) return FromGguf(path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (dir != null && System.IO.File.Exists(System.IO.Path.Combine(dir, "config.json"))) return FromFolder(dir);
            throw new InvalidDataException($"{path}: a safetensors file holds no architecture; put its config.json beside it or pass --config.");
        }
        throw new InvalidDataException($"{path}: not a GGUF file (magic {Convert.ToHexString(magic)}), a config.json or a Hugging Face folder.");
    }

    public static SizingInput FromFolder(string dir)
    {
        string config = System.IO.Path.Combine(dir, "config.json");
        if (!System.IO.File.Exists(config)) throw new FileNotFoundException($"'{dir}' has no config.json; a Hugging Face model folder needs one.", config);
        var arch = HfConfig.Load(config);
        var files = Directory.GetFiles(dir, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) return new SizingInput(arch, config, null);
        var tensors = new List<(string Name, long[] Shape, long Bytes)>();
        foreach (var f in files) tensors.AddRange(ReadSafetensorsHeader(f));
        var census = Census(dir, "safetensors", tensors);
        // The config cannot say whether the checkpoint holds BERT's pooler; the file does.
        if (arch.Family == ArchFamily.Encoder)
            arch = arch with { Pooler = tensors.Any(t => t.Name.Contains("pooler.", StringComparison.Ordinal)) };
        return new SizingInput(arch, dir, census);
    }

    public static SizingInput FromGguf(string path)
    {
        using var g = GgufFile.Open(path);
        string arch = g.Architecture;
        string K(string k) => arch + "." + k;
        bool Has(string t) => g.Tensors.ContainsKey(t);
        long Req(string key, string what)
        {
            if (!g.Contains(key)) throw new InvalidDataException($"{path}: missing metadata '{key}' ({what}).");
            return g.GetLong(key);
        }
        long vocab = g.GetLong(K("vocab_size"), 0);
        if (vocab == 0 && g.GetArrayOrNull("tokenizer.ggml.tokens") is { } toks) vocab = toks.Count;
        if (vocab == 0 && g.Tensors.TryGetValue("token_embd.weight", out var te)) vocab = te.Shape[0];
        long h = Req(K("embedding_length"), "h, the model width");
        long heads = Req(K("attention.head_count"), "NH, attention heads");
        long experts = g.GetLong(K("expert_count"), 0);
        ModelArchitecture a = arch switch
        {
            "llama" or "mistral" or "qwen2" or "qwen3" => new ModelArchitecture
            {
                ModelType = arch,
                Family = ArchFamily.Decoder,
                GatedMlp = true,
                Norm = NormKind.RmsNorm,
                FinalNorm = true,
                HasLmHead = true,
                TiedEmbeddings = !Has("output.weight"),
                QkNorm = Has("blk.0.attn_q_norm.weight"),
                Experts = experts,
                ExpertsPerToken = experts > 0 ? g.GetLong(K("expert_used_count"), 2) : 0,
                VocabSize = vocab, Hidden = h, Heads = heads,
                Layers = Req(K("block_count"), "L, the number of layers"),
                Intermediate = Req(K("feed_forward_length"), "F, the MLP width"),
                KvHeads = g.GetLong(K("attention.head_count_kv"), 0),
                HeadDim = g.GetLong(K("attention.key_length"), 0),
                ContextLength = g.GetLong(K("context_length"), 0),
            },
            "gpt2" => new ModelArchitecture
            {
                ModelType = arch,
                Family = ArchFamily.Gpt2,
                Norm = NormKind.LayerNorm,
                FinalNorm = true,
                HasLmHead = true,
                TiedEmbeddings = !Has("output.weight"),
                QkvBias = true, OutBias = true, MlpBias = true,
                VocabSize = vocab, Hidden = h, Heads = heads,
                Layers = Req(K("block_count"), "L, the number of layers"),
                Intermediate = g.GetLong(K("feed_forward_length"), 4 * h),
                LearnedPositions = g.Tensors.TryGetValue("position_embd.weight", out var pe) ? pe.Shape[0] : Req(K("context_length"), "positions"),
                ContextLength = g.GetLong(K("context_length"), 0),
            },
            "bert" => new ModelArchitecture
            {
                ModelType = arch,
                Family = ArchFamily.Encoder,
                Norm = NormKind.LayerNorm,
                EmbeddingNorm = true,
                Pooler = Has("cls.weight") || Has("pooler.weight"),
                QkvBias = true, OutBias = true, MlpBias = true,
                VocabSize = vocab, Hidden = h, Heads = heads,
                Layers = Req(K("block_count"), "L, the number of layers"),
                Intermediate = Req(K("feed_forward_length"), "F, the MLP width"),
                LearnedPositions = g.Tensors.TryGetValue("position_embd.weight", out var bp) ? bp.Shape[0] : Req(K("context_length"), "positions"),
                TokenTypes = g.Tensors.TryGetValue("token_types.weight", out var tt) ? tt.Shape[0] : 0,
                ContextLength = g.GetLong(K("context_length"), 0),
            },
            _ => throw new InvalidDataException($"{path}: GGUF architecture '{arch}' is not supported by calc. Supported: llama, mistral, qwen2, qwen3, gpt2, bert."),
        };
        // llama-style biases are optional: a checkpoint with attention_bias/mlp_bias carries them
        if (a.Family == ArchFamily.Decoder)
            a = a with { QkvBias = Has("blk.0.attn_q.bias"), OutBias = Has("blk.0.attn_output.bias"), MlpBias = Has("blk.0.ffn_up.bias") };
        var census = Census(path, "gguf", g.TensorList.Select(t => (t.Name, t.Shape, t.ByteLength)));
        return new SizingInput(a.Normalize(path), path, census);
    }

    /// <summary>Tensors that are buffers (not trainable parameters) or task heads outside the base model.</summary>
    internal static bool IsNonParameter(string name) =>
        name == "rope_freqs.weight" || name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
        || name.EndsWith("position_ids", StringComparison.Ordinal) || name.EndsWith(".attn.bias", StringComparison.Ordinal)
        || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal) || name.StartsWith("cls.", StringComparison.Ordinal);

    private static FileCensus Census(string path, string format, IEnumerable<(string Name, long[] Shape, long Bytes)> tensors)
    {
        int n = 0;
        long p = 0, bytes = 0;
        var excluded = new List<string>();
        foreach (var (name, shape, b) in tensors)
        {
            if (IsNonParameter(name)) { excluded.Add(name); continue; }
            n++;
            p += shape.Aggregate(1L, (x, y) => checked(x * y));
            bytes += b;
        }
        return new FileCensus(path, format, n, p, bytes, excluded);
    }

    /// <summary>The tensor table of a safetensors file: u64 little-endian header length, then a JSON object
    /// name -> {dtype, shape, data_offsets: [begin, end]} (and "__metadata__"). Only the header is read.</summary>
    internal static List<(string Name, long[] Shape, long Bytes)> ReadSafetensorsHeader(string path)
    {
        using var fs = System.IO.File.OpenRead(path);
        Span<byte> len = stackalloc byte[8];
        if (fs.ReadAtLeast(len, 8, throwOnEndOfStream: false) < 8) throw new InvalidDataException($"{path}: too short for a safetensors header ({fs.Length} bytes).");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n == 0 || n > 100_000_000 || (long)n > fs.Length - 8)
            throw new InvalidDataException($"{path}: safetensors header length {n} at offset 0 is impossible for a {fs.Length}-byte file.");
        var header = new byte[n];
        fs.ReadExactly(header);
        var list = new List<(string, long[], long)>();
        try
        {
            using var doc = JsonDocument.Parse(header);
            foreach (var t in doc.RootElement.EnumerateObject())
            {
                if (t.Name == "__metadata__") continue;
                var shape = t.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                var off = t.Value.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                if (shape.Any(d => d < 0) || off.Length != 2 || off[1] < off[0])
                    throw new InvalidDataException($"{path}: tensor '{t.Name}' has a bad shape [{string.Join(", ", shape)}] or data_offsets.");
                list.Add((t.Name, shape, off[1] - off[0]));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: bad safetensors header JSON (bytes 8..{8 + (long)n}): {e.Message}", e);
        }
        return list;
    }
}

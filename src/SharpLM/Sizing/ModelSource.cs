using System.Buffers.Binary;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Models;

namespace SharpLM.Sizing;

/// <summary>The tensors actually stored in a model file, to check a computed count against.</summary>
/// <param name="Path">the file or folder counted</param>
/// <param name="Format">its format</param>
/// <param name="Tensors">parameter tensors counted</param>
/// <param name="Parameters">their elements</param>
/// <param name="Bytes">their bytes as stored</param>
/// <param name="Excluded">tensors that are buffers, not parameters (rotary tables, position_ids, masks) or task
/// heads the architecture does not include (BERT's cls.*), by name</param>
internal sealed record FileCensus(string Path, string Format, int Tensors, long Parameters, long Bytes, IReadOnlyList<string> Excluded);

/// <summary>What <c>sharplm calc</c> sizes: an architecture, where it came from, and the file's own census if any.</summary>
internal sealed record SizingInput(ModelConfig Config, string Source, FileCensus? File);

/// <summary>Loads a <see cref="SizingInput"/> from a config.json, a Hugging Face folder, a GGUF file or a preset.</summary>
internal static class ModelSource
{
    public static SizingInput FromPreset(string name) =>
        new(ModelPresets.Load(name), $"preset {name.Trim().ToLowerInvariant()} ({ModelPresets.Source(name)})", null);

    public static SizingInput FromConfig(string path) => new(ParameterCount.BaseModel(ModelConfigReader.FromHfConfigFile(path)), path, null);

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
        // the one folder opener; the weights are memory-mapped, so only their headers are read
        using var folder = Formats.HuggingFace.HfModelFolder.Open(dir, Formats.HuggingFace.FolderWeights.IfPresent);
        var arch = ParameterCount.BaseModel(folder.Config);
        if (folder.Weights is null) return new SizingInput(arch, folder.ConfigPath, null);
        var tensors = folder.Weights.Files.SelectMany(f => f.Entries).Select(e => (e.Name, e.Shape, e.ByteLength)).ToList();
        var census = Census(dir, "safetensors", tensors, arch.Arch);
        // The config cannot say whether the checkpoint holds BERT's pooler; the file does.
        if (arch.Pooler) arch = arch with { Pooler = tensors.Any(t => t.Name.Contains("pooler.", StringComparison.Ordinal)) };
        return new SizingInput(arch, dir, census);
    }

    public static SizingInput FromGguf(string path)
    {
        using var g = GgufFile.Open(path);
        var a = ModelConfigReader.FromGguf(g);
        if (ParameterCount.BaseModel(a).Pooler) a = a with { Pooler = g.Tensors.ContainsKey("cls.weight") || g.Tensors.ContainsKey("pooler.weight") };
        var census = Census(path, "gguf", g.TensorList.Select(t => (t.Name, t.Shape, t.ByteLength)), a.Arch);
        return new SizingInput(a, path, census);
    }

    /// <summary>
    /// Tensors that are not parameters of the base model, by the architecture table: buffers and precomputed tables
    /// (<see cref="TensorDecl.NotAParameter"/>, rotary inv_freq, position_ids, GPT-2's attention masks) and task heads the
    /// architecture does not count (BERT's masked-LM head).
    /// </summary>
    internal static bool IsNonParameter(string name, Architecture arch)
    {
        if (BoundTensors.Ignorable(name)) return true;
        string bare = name;
        foreach (var p in Models.Bert.BertArch.Prefixes.Where(p => p.Length > 0))
            if (name.StartsWith(p, StringComparison.Ordinal)) { bare = name[p.Length..]; break; }
        var found = TensorTable.Find(arch.Tensors, name) ?? TensorTable.Find(arch.Tensors.Select(d => d with { Hf = d.Hf.Replace("{P}", "", StringComparison.Ordinal) }), bare);
        if (found is { } f) return f.Decl.NotAParameter || f.Decl.Component == "mlm_head";
        return name.StartsWith("cls.", StringComparison.Ordinal); // other task heads (next-sentence prediction, classifiers)
    }

    private static FileCensus Census(string path, string format, IEnumerable<(string Name, long[] Shape, long Bytes)> tensors, Architecture arch)
    {
        int n = 0;
        long p = 0, bytes = 0;
        var excluded = new List<string>();
        foreach (var (name, shape, b) in tensors)
        {
            if (IsNonParameter(name, arch)) { excluded.Add(name); continue; }
            n++;
            p += shape.Aggregate(1L, (x, y) => checked(x * y));
            bytes += b;
        }
        return new FileCensus(path, format, n, p, bytes, excluded);
    }
}

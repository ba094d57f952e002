using System.Text.Json;

namespace SharpLM.Formats.Safetensors;

/// <summary>
/// The weights of a Hugging Face checkpoint: one .safetensors file, or shards listed by
/// <c>model.safetensors.index.json</c> ({"metadata": {"total_size": N}, "weight_map": {"tensor": "shard file"}}).
/// Every shard is memory-mapped; tensors from all shards are merged into <see cref="Tensors"/>.
/// </summary>
internal sealed class SafetensorsModel : IWeightSource
{
    private readonly List<SafetensorsFile> _files;

    public string Path { get; }
    public IReadOnlyList<SafetensorsFile> Files => _files;
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>Total bytes of all shard files.</summary>
    public long FileBytes => _files.Sum(f => f.FileLength);

    private SafetensorsModel(string path, List<SafetensorsFile> files, Dictionary<string, TensorInfo> tensors)
    {
        Path = path;
        _files = files;
        Tensors = tensors;
    }

    /// <summary>
    /// Opens a .safetensors file, a .safetensors.index.json, or a folder holding model.safetensors.index.json or
    /// model.safetensors (or exactly one *.safetensors).
    /// </summary>
    public static SafetensorsModel Open(string path, bool inMemory = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            var index = System.IO.Path.Combine(full, "model.safetensors.index.json");
            if (File.Exists(index)) return OpenIndex(index, inMemory);
            var single = System.IO.Path.Combine(full, "model.safetensors");
            if (File.Exists(single)) return OpenSingle(single, inMemory);
            var any = Directory.GetFiles(full, "*.safetensors");
            if (any.Length == 1) return OpenSingle(any[0], inMemory);
            throw new FileNotFoundException(any.Length == 0
                ? $"no safetensors weights in '{full}': expected model.safetensors or model.safetensors.index.json"
                : $"'{full}' holds {any.Length} .safetensors files but no model.safetensors.index.json saying which to use");
        }
        if (!File.Exists(full)) throw new FileNotFoundException($"'{full}' does not exist", full);
        return full.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(full, inMemory) : OpenSingle(full, inMemory);
    }

    private static SafetensorsModel OpenSingle(string file, bool inMemory)
    {
        var f = SafetensorsFile.Open(file, inMemory);
        return new SafetensorsModel(f.Path, [f], new Dictionary<string, TensorInfo>(f.Tensors, StringComparer.Ordinal));
    }

    private static SafetensorsModel OpenIndex(string indexPath, bool inMemory)
    {
        var dir = System.IO.Path.GetDirectoryName(indexPath)!;
        Dictionary<string, string> weightMap;
        try
        {
            var bytes = File.ReadAllBytes(indexPath);
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new InvalidDataException($"{indexPath}: not valid UTF-8 text");
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath}: expected an object with a 'weight_map' object");
            weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{indexPath}: weight_map.{p.Name} is a {p.Value.ValueKind}, expected a shard file name");
                var shard = p.Value.GetString()!;
                if (shard.Length == 0 || System.IO.Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal))
                    throw new InvalidDataException($"{indexPath}: weight_map.{p.Name} = '{shard}' is not a file name inside the folder");
                weightMap[p.Name] = shard;
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{indexPath}: invalid JSON: {e.Message}", e);
        }

        var files = new List<SafetensorsFile>();
        try
        {
            var byShard = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var shard in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                var shardPath = System.IO.Path.Combine(dir, shard);
                if (!File.Exists(shardPath))
                    throw new InvalidDataException($"{indexPath}: shard '{shard}' listed in weight_map is missing ({shardPath}); download it again");
                var f = SafetensorsFile.Open(shardPath, inMemory);
                files.Add(f);
                byShard[shard] = f;
            }
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                var f = byShard[shard];
                if (f.Tensors.TryGetValue(name, out var t)) tensors[name] = t;
                else if (!f.Entries.Any(e => e.Name == name))
                    throw new InvalidDataException($"{indexPath}: weight_map puts tensor '{name}' in '{shard}', but that shard has no such tensor");
            }
            return new SafetensorsModel(indexPath, files, tensors);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}

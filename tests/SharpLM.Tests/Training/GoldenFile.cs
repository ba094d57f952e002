using System.Text;
using System.Text.Json;
using SharpLM.Testing;

namespace SharpLM.Tests.Training;

/// <summary>
/// Reads tests/testdata/training/*.golden written by tools/train_golden.py: magic "SLMTGOLD", int32 version,
/// int32 header length, JSON header, float32 tensors.
/// </summary>
internal sealed class GoldenFile
{
    public const int Version = 1;
    public required JsonElement Header { get; init; }
    public required Dictionary<string, (int[] Shape, float[] Data)> Tensors { get; init; }

    public static GoldenFile Load(string name)
    {
        string path = Path.Combine(TestPaths.TestData, "training", name);
        string hint = "regenerate it with '/usr/bin/python3 tools/train_golden.py' (needs Debian's python3-torch)";
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: {hint}", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 16 || Encoding.ASCII.GetString(bytes, 0, 8) != "SLMTGOLD")
            throw new InvalidDataException($"{path}: not a SharpLM training golden file (bad magic); {hint}");
        int version = BitConverter.ToInt32(bytes, 8);
        if (version != Version) throw new InvalidDataException($"{path}: golden version {version}, this test reads version {Version}; {hint}");
        int hlen = BitConverter.ToInt32(bytes, 12);
        var header = JsonDocument.Parse(bytes.AsMemory(16, hlen)).RootElement.Clone();
        int dataStart = 16 + hlen;
        var tensors = new Dictionary<string, (int[], float[])>();
        foreach (var t in header.GetProperty("tensors").EnumerateArray())
        {
            var shape = t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int n = shape.Aggregate(1, (a, b) => a * b);
            long off = dataStart + 4L * t.GetProperty("offset").GetInt64();
            var data = new float[n];
            Buffer.BlockCopy(bytes, checked((int)off), data, 0, n * 4);
            tensors[t.GetProperty("name").GetString()!] = (shape, data);
        }
        return new GoldenFile { Header = header, Tensors = tensors };
    }

    public JsonElement Config => Header.GetProperty("config");
    public int Int(string name) => Header.GetProperty(name).GetInt32();
    public int[] Ints(string name) => Header.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
    public double[] Doubles(string name) => Header.GetProperty(name).EnumerateArray().Select(e => e.GetDouble()).ToArray();
}

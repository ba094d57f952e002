using System.Text.Json;
using SharpLM.Formats;
using SharpLM.Formats.Onnx;
using SharpLM.Inference.Embeddings;
using SharpLM.Models.Bert;
using SharpLM.Testing;

namespace SharpLM.Tests.Bert;

public class FillMaskAndBadInputTests
{
    [Theory]
    [InlineData("bert_mlm")]
    [InlineData("albert_mlm")]
    [InlineData("distilbert_mlm")]
    public void FillMaskTopTokensMatchPyTorch(string name)
    {
        var dir = TorchGoldenTests.Dir(name);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "fill_mask.json")));
        var root = json.RootElement;
        Assert.Equal("sharplm-bert-golden", root.GetProperty("magic").GetString());
        using var enc = TextEncoder.Open(dir, withMlmHead: true);
        var text = root.GetProperty("text").GetString()!;
        Assert.Equal(root.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()), enc.Tokenize(text));
        var got = Assert.Single(enc.FillMask(text, top: 5));
        var expected = root.GetProperty("top").EnumerateArray().ToArray();
        Assert.Equal(expected.Select(e => e.GetProperty("token").GetString()), got.Select(c => c.Token));
        for (int i = 0; i < expected.Length; i++)
        {
            double p = expected[i].GetProperty("probability").GetDouble();
            Assert.True(Math.Abs(p - got[i].Probability) <= 1e-4, $"{name} candidate {i}: probability {got[i].Probability}, PyTorch {p}");
        }
        Assert.Throws<ArgumentException>(() => enc.FillMask("paris is the capital of france ."));
    }

    [Fact]
    public void SentenceTransformersPoolingConfigIsTheDefault()
    {
        var dir = TestPaths.NewTempDir();
        foreach (var f in Directory.GetFiles(TorchGoldenTests.Dir("bert_mlm"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        Directory.CreateDirectory(Path.Combine(dir, "1_Pooling"));
        File.WriteAllText(Path.Combine(dir, "1_Pooling", "config.json"), """{"word_embedding_dimension": 32, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": false}""");
        using var enc = TextEncoder.Open(dir, new TextEncoderOptions { Normalize = false });
        Assert.Equal(EmbeddingPooling.Cls, enc.PoolingMode);
        var ids = enc.Tokenize("paris is the capital of france .");
        var hidden = enc.Model.Forward(BertBatch.FromSequences([ids]));
        Assert.Equal(hidden[..32], enc.Embed("paris is the capital of france ."));
        using var explicitMean = TextEncoder.Open(dir, new TextEncoderOptions { Pooling = EmbeddingPooling.Mean });
        Assert.Equal(EmbeddingPooling.Mean, explicitMean.PoolingMode);
    }

    [Fact]
    public void AnOnnxFileThatIsNotABertSaysWhatIsMissing()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "linear.onnx");
        File.WriteAllBytes(path, TinyOnnx.LinearModel());
        using (var f = OnnxFile.Open(path))
        {
            Assert.Equal([2, 3], f.Tensors["W"].Shape);
            Assert.Equal([1f, 2, 3, 4, 5, 6], f.Tensors["W"].AsFloats().ToArray());
            Assert.Equal("MatMul", Assert.Single(f.Nodes).OpType);
        }
        var ex = Assert.Throws<InvalidDataException>(() => OnnxBert.Open(path));
        Assert.Contains("no word embeddings found", ex.Message, StringComparison.Ordinal);
        Assert.Contains("linear.onnx", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FloatDataAndExternalDataInitializersAreRead()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "ext.onnx");
        var floats = new[] { 1.5f, -2f, 3.25f };
        File.WriteAllBytes(Path.Combine(dir, "weights.bin"), [0, 0, 0, 0, .. floats.SelectMany(BitConverter.GetBytes)]);
        File.WriteAllBytes(path, TinyOnnx.LinearModel(extraTensors: [TinyOnnx.FloatDataTensor("F", floats), TinyOnnx.ExternalTensor("E", 3, "weights.bin", 4)]));
        using var f = OnnxFile.Open(path);
        Assert.Equal(floats, f.Tensors["F"].AsFloats().ToArray());
        Assert.Equal(floats, f.Tensors["E"].AsFloats().ToArray());
        File.Delete(Path.Combine(dir, "weights.bin"));
        var ex = Assert.Throws<FileNotFoundException>(() => OnnxFile.Open(path));
        Assert.Contains("weights.bin", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CorruptedOnnxBytesNeverCrashOrHang()
    {
        var good = TinyOnnx.LinearModel(extraTensors: [TinyOnnx.FloatDataTensor("F", [1f, 2f])]);
        var dir = TestPaths.NewTempDir();
        var rng = new Random(1234);
        for (int iter = 0; iter < 500; iter++)
        {
            var bad = (byte[])good.Clone();
            for (int m = 0; m < 1 + iter % 4; m++) bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
            var path = Path.Combine(dir, $"bad{iter}.onnx");
            File.WriteAllBytes(path, bad);
            try
            {
                using var f = OnnxFile.Open(path);
            }
            catch (Exception e) when (e is InvalidDataException or FileNotFoundException)
            {
                Assert.Contains(path, e.Message, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void GarbageAndTruncatedOnnxFilesAreClearErrors()
    {
        var dir = TestPaths.NewTempDir();
        var garbage = Path.Combine(dir, "garbage.onnx");
        File.WriteAllBytes(garbage, [0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
        var e1 = Assert.Throws<InvalidDataException>(() => OnnxFile.Open(garbage));
        Assert.Contains("garbage.onnx", e1.Message, StringComparison.Ordinal);
        var truncated = Path.Combine(dir, "truncated.onnx");
        var good = TinyOnnx.LinearModel();
        File.WriteAllBytes(truncated, good[..(good.Length - 7)]);
        var e2 = Assert.Throws<InvalidDataException>(() => OnnxFile.Open(truncated));
        Assert.Contains("malformed protobuf at byte", e2.Message, StringComparison.Ordinal);
        var empty = Path.Combine(dir, "empty.onnx");
        File.WriteAllBytes(empty, []);
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => OnnxFile.Open(empty)).Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => OnnxFile.Open(Path.Combine(dir, "nope.onnx")));
    }

    [Fact]
    public void MissingAndMisShapedTensorsAreAllListed()
    {
        var dir = TorchGoldenTests.Dir("bert_mlm");
        using var src = new TestSafetensors(Path.Combine(dir, "model.safetensors"));
        var cfg = SharpLM.Formats.ModelConfigReader.FromHfConfigFile(Path.Combine(dir, "config.json"));
        var filtered = new Filtered(src, n => n != "bert.encoder.layer.1.attention.self.key.weight" && n != "cls.predictions.bias");
        var ex = Assert.Throws<InvalidDataException>(() => BertModel.Create(filtered, cfg, withMlmHead: true));
        Assert.Contains("bert.encoder.layer.1.attention.self.key.weight [32, 32]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cls.predictions.bias [50]", ex.Message, StringComparison.Ordinal);
        var wrong = cfg with { FfnWidth = 48 };
        var ex2 = Assert.Throws<InvalidDataException>(() => BertModel.Create(src, wrong));
        Assert.Contains("bert.encoder.layer.0.intermediate.dense.weight has shape [64, 32], expected [48, 32]", ex2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadTokenIdsAndTooLongBatchesAreRejected()
    {
        var dir = TorchGoldenTests.Dir("bert_mlm");
        using var src = new TestSafetensors(Path.Combine(dir, "model.safetensors"));
        var model = BertModel.Create(src, SharpLM.Formats.ModelConfigReader.FromHfConfigFile(Path.Combine(dir, "config.json")));
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentException>(() => model.Forward(BertBatch.FromSequences([[2, 50, 3]]))).Message, StringComparison.Ordinal);
        Assert.Contains("exceeds the model's 16 positions", Assert.Throws<ArgumentException>(() => model.Forward(BertBatch.FromSequences([new int[17]]))).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BertBatch.FromSequences([]));
        Assert.Throws<ArgumentException>(() => BertBatch.FromSequences([[1, 2], []]));
    }

    private sealed class Filtered(IWeightSource inner, Func<string, bool> keep) : IWeightSource
    {
        public string Path => inner.Path;
        public IReadOnlyDictionary<string, TensorInfo> Tensors { get; } = inner.Tensors.Where(kv => keep(kv.Key)).ToDictionary();
        public void Dispose() { }
    }
}

/// <summary>Writes tiny ONNX ModelProtos by hand (protobuf wire format) for reader tests.</summary>
internal static class TinyOnnx
{
    /// <summary>A TensorProto with packed float_data.</summary>
    public static byte[] FloatDataTensor(string name, float[] values)
    {
        var t = new List<byte> { 0x08 };
        Varint(t, (ulong)values.Length);
        t.Add(0x10); t.Add(1);
        Str(t, 8, name);
        Bytes(t, 4, values.SelectMany(BitConverter.GetBytes).ToArray());
        return [.. t];
    }

    /// <summary>A TensorProto of n floats stored in an external file at an offset (data_location = EXTERNAL).</summary>
    public static byte[] ExternalTensor(string name, int n, string file, int offset)
    {
        var t = new List<byte> { 0x08 };
        Varint(t, (ulong)n);
        t.Add(0x10); t.Add(1);
        Str(t, 8, name);
        foreach (var (k, v) in new[] { ("location", file), ("offset", offset.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("length", (4 * n).ToString(System.Globalization.CultureInfo.InvariantCulture)) })
        {
            var e = new List<byte>();
            Str(e, 1, k);
            Str(e, 2, v);
            Bytes(t, 13, [.. e]);
        }
        t.Add(0x70); t.Add(1);   // field 14 data_location = EXTERNAL
        return [.. t];
    }

    /// <summary>y = x @ W with W a 2x3 float initializer given as raw_data (plus any extra initializers).</summary>
    public static byte[] LinearModel(byte[][]? extraTensors = null)
    {
        var w = new List<byte>();
        foreach (var d in new long[] { 2, 3 }) { w.Add(0x08); Varint(w, (ulong)d); }      // dims (field 1, varint)
        w.Add(0x10); w.Add(1);                                                           // data_type FLOAT
        Str(w, 8, "W");                                                                  // name
        Bytes(w, 9, new[] { 1f, 2, 3, 4, 5, 6 }.SelectMany(BitConverter.GetBytes).ToArray()); // raw_data
        var node = new List<byte>();
        Str(node, 1, "x"); Str(node, 1, "W"); Str(node, 2, "y"); Str(node, 3, "mm"); Str(node, 4, "MatMul");
        var graph = new List<byte>();
        Bytes(graph, 1, [.. node]);
        Str(graph, 2, "g");
        Bytes(graph, 5, [.. w]);
        foreach (var t in extraTensors ?? []) Bytes(graph, 5, t);
        var model = new List<byte> { 0x08, 7 };                                          // ir_version 7
        Str(model, 2, "sharplm-test");
        Bytes(model, 7, [.. graph]);
        return [.. model];
    }

    private static void Varint(List<byte> b, ulong v)
    {
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
    }

    private static void Bytes(List<byte> b, int field, byte[] data)
    {
        Varint(b, (ulong)(field << 3 | 2));
        Varint(b, (ulong)data.Length);
        b.AddRange(data);
    }

    private static void Str(List<byte> b, int field, string s) => Bytes(b, field, System.Text.Encoding.UTF8.GetBytes(s));
}

using System.Buffers.Binary;
using System.Text;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using SharpLM.Formats.Safetensors;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Formats;

/// <summary>Corrupt files must fail with an InvalidDataException naming the file and where, never crash, hang or
/// allocate absurdly.</summary>
public sealed class BadInputTests
{
    // Layout of Small(): 0 magic, 4 version, 8 n_tensors, 16 n_kv, 24 key len, 32 "general.architecture",
    // 52 value type, 56 string len, 64 "x", 65 name len, 73 "t", 74 n_dims, 78 ne0, 86 ggml type, 90 offset, 128 data.
    private const int AtNTensors = 8, AtNKv = 16, AtKeyLen = 24, AtValueType = 52, AtNDims = 74, AtNe0 = 78, AtType = 86, AtOffset = 90;

    private static byte[] Small()
    {
        var ms = new MemoryStream();
        new GgufWriter().Set("general.architecture", "x").AddTensor("t", [4], new float[] { 1, 2, 3, 4 }).WriteTo(ms);
        return ms.ToArray();
    }

    private static string Save(string dir, string name, byte[] bytes)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Fact]
    public void The_small_file_layout_is_as_documented()
    {
        var b = Small();
        Assert.Equal(128 + 32, b.Length); // 16 data bytes padded to the alignment, as ggml writes
        Assert.Equal(20ul, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(AtKeyLen)));
        Assert.Equal((uint)GgufType.String, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(AtValueType)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(AtNDims)));
        Assert.Equal(4ul, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(AtNe0)));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(AtType)));
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(AtOffset)));
        var dir = TestPaths.NewTempDir();
        using var f = GgufFile.Open(Save(dir, "ok.gguf", b));
        Assert.Equal(128, f.DataOffset);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(10)]
    [InlineData(20)]
    [InlineData(30)]
    [InlineData(55)]
    [InlineData(64)]
    [InlineData(70)]
    [InlineData(80)]
    [InlineData(95)]
    [InlineData(100)]
    [InlineData(130)]
    [InlineData(143)]
    public void Truncated_gguf_is_a_clear_error(int cut)
    {
        var dir = TestPaths.NewTempDir();
        var path = Save(dir, $"cut{cut}.gguf", Small()[..cut]);
        var e = Assert.Throws<InvalidDataException>(() => GgufFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.True(e.Message.Contains("truncated", StringComparison.Ordinal) || e.Message.Contains("too short", StringComparison.Ordinal), e.Message);
    }

    public static TheoryData<string, int, ulong, int, string> Corruptions => new()
    {
        // name, offset, value, byte width, expected fragment
        { "magic", 0, 0x46554746, 4, "bad magic" },
        { "v1", 4, 1, 4, "version 1 is unsupported" },
        { "v99", 4, 99, 4, "unsupported GGUF version 99" },
        { "tensor count", AtNTensors, 1ul << 60, 8, "tensor count" },
        { "kv count", AtNKv, 1ul << 40, 8, "metadata count" },
        { "key length", AtKeyLen, 1ul << 62, 8, "runs past the end" },
        { "value type", AtValueType, 77, 4, "unknown value type 77" },
        { "n_dims", AtNDims, 9, 4, "9 dimensions" },
        { "ne0", AtNe0, 1ul << 62, 8, "dimension 0" },
        { "ne0 big", AtNe0, 1ul << 40, 8, "past the end of the file" },
        { "ggml type", AtType, 99, 4, "unknown ggml type id 99" },
        { "offset", AtOffset, 1ul << 50, 8, "past the end of the file" },
        { "misaligned", AtOffset, 4, 8, "not a multiple of the alignment" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Corrupt_gguf_header_fields_are_clear_errors(string what, int offset, ulong value, int width, string fragment)
    {
        var b = Small();
        if (width == 4) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(offset), (uint)value);
        else BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(offset), value);
        var dir = TestPaths.NewTempDir();
        var path = Save(dir, "bad.gguf", b);
        var e = Assert.Throws<InvalidDataException>(() => GgufFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(fragment, e.Message);
        Assert.Contains("at byte ", e.Message);
        _ = what;
    }

    [Fact]
    public void Tensor_and_key_names_appear_in_errors()
    {
        var b = Small();
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(AtType), 99);
        var dir = TestPaths.NewTempDir();
        var e = Assert.Throws<InvalidDataException>(() => GgufFile.Open(Save(dir, "a.gguf", b)));
        Assert.Contains("tensor 't'", e.Message);
        b = Small();
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(AtValueType), 77);
        e = Assert.Throws<InvalidDataException>(() => GgufFile.Open(Save(dir, "b.gguf", b)));
        Assert.Contains("'general.architecture'", e.Message);
    }

    [Fact]
    public void Fuzzed_gguf_files_open_or_fail_cleanly()
    {
        var dir = TestPaths.NewTempDir();
        var ms = new MemoryStream();
        TinyGgufSmall().WriteTo(ms);
        var good = ms.ToArray();
        var rng = new Random(12345);
        int opened = 0, rejected = 0;
        for (int i = 0; i < 300; i++)
        {
            var b = (byte[])good.Clone();
            int mode = i % 3;
            if (mode == 0) b = b[..rng.Next(b.Length)];
            else
            {
                int flips = 1 + rng.Next(4);
                int headerEnd = Math.Min(b.Length, 700);
                for (int k = 0; k < flips; k++)
                {
                    int at = rng.Next(headerEnd);
                    b[at] = mode == 1 ? (byte)rng.Next(256) : (byte)(b[at] ^ (1 << rng.Next(8)));
                }
            }
            var path = Save(dir, $"f{i}.gguf", b);
            try
            {
                using var f = GgufFile.Open(path);
                foreach (var t in f.TensorList) Touch(t);
                foreach (var kv in f.MetadataList) _ = kv.Value.ToString();
                opened++;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(path, e.Message);
                rejected++;
            }
            File.Delete(path);
        }
        Assert.True(rejected > 100, $"only {rejected} of 300 corruptions were rejected ({opened} opened)");
    }

    private static GgufWriter TinyGgufSmall()
    {
        var w = new GgufWriter();
        w.Set("general.architecture", "llama").Set("llama.block_count", 1u).Set("f", 0.5f)
         .Set("tokenizer.ggml.tokens", GgufArray.Of(new[] { "a", "b", "<0x0A>" }))
         .Set("nested", new GgufArray(GgufType.Array, new[] { GgufArray.Of(new[] { 1, 2 }) }))
         .Set("flags", GgufArray.Of(new[] { true, false }));
        w.AddTensor("a", [2, 32], new float[64], DType.Q8_0);
        w.AddTensor("b", [3], new float[3]);
        return w;
    }

    private static unsafe void Touch(TensorInfo t)
    {
        var s = new ReadOnlySpan<byte>((void*)t.Data, checked((int)t.ByteLength));
        int sum = 0;
        foreach (var x in s) sum += x;
        GC.KeepAlive(sum);
    }

    // ---------------------------------------------------------------- safetensors

    private static byte[] SmallSafetensors(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        return b;
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "run past the data section")]
    [InlineData("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'Q9'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin <= end")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "absurdly large")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],", 8, "invalid")]
    [InlineData("[1,2]", 0, "expected an object")]
    [InlineData("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__.k")]
    public void Bad_safetensors_headers_are_clear_errors(string header, int dataBytes, string fragment)
    {
        var dir = TestPaths.NewTempDir();
        var path = Save(dir, "bad.safetensors", SmallSafetensors(header, dataBytes));
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(8)]
    [InlineData(40)]
    public void Truncated_safetensors_is_a_clear_error(int cut)
    {
        var dir = TestPaths.NewTempDir();
        var full = Path.Combine(dir, "full.safetensors");
        new SafetensorsWriter().Add("w", [8], new float[8]).Write(full);
        var b = File.ReadAllBytes(full);
        var path = Save(dir, "cut.safetensors", b[..cut]);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Absurd_safetensors_header_length_is_rejected_without_allocating()
    {
        var dir = TestPaths.NewTempDir();
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(Save(dir, "x.safetensors", b)));
        Assert.Contains("header length", e.Message);
    }

    [Fact]
    public void Fuzzed_safetensors_files_open_or_fail_cleanly()
    {
        var dir = TestPaths.NewTempDir();
        var good = Path.Combine(dir, "good.safetensors");
        new SafetensorsWriter().SetMetadata("format", "pt").Add("a", [2, 3], new float[6]).Add("b", [4], new float[4], DType.BF16).Write(good);
        var bytes = File.ReadAllBytes(good);
        var rng = new Random(777);
        int rejected = 0;
        for (int i = 0; i < 300; i++)
        {
            var b = (byte[])bytes.Clone();
            if (i % 2 == 0) b = b[..rng.Next(b.Length)];
            else for (int k = 0; k < 1 + rng.Next(3); k++) b[rng.Next(Math.Min(b.Length, 200))] = (byte)rng.Next(256);
            var path = Save(dir, $"f{i}.safetensors", b);
            try
            {
                using var f = SafetensorsFile.Open(path);
                foreach (var t in f.Tensors.Values) Touch(t);
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(path, e.Message);
                rejected++;
            }
            File.Delete(path);
        }
        Assert.True(rejected > 100, $"only {rejected} of 300 corruptions were rejected");
    }

    [Theory]
    [InlineData("{\"model_type\": \"llama\", \"hidden_size\": \"big\"}", "'hidden_size' is \"big\", expected an integer")]
    [InlineData("{\"model_type\": \"llama\"", "not valid JSON")]
    [InlineData("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4}", "is missing (expected an integer)")]
    [InlineData("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 1, \"num_key_value_heads\": 3}", "is not a multiple of 'num_key_value_heads' 3")]
    public void Bad_config_json_names_the_key(string json, string fragment)
    {
        var dir = TestPaths.NewTempDir();
        var path = Save(dir, "config.json", Encoding.UTF8.GetBytes(json));
        var e = Assert.Throws<InvalidDataException>(() => SharpLM.Formats.ModelConfigReader.FromHfConfigFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Fact]
    public void Empty_and_missing_files_are_clear_errors()
    {
        var dir = TestPaths.NewTempDir();
        var empty = Save(dir, "empty.gguf", []);
        Assert.Contains("too short", Assert.Throws<InvalidDataException>(() => GgufFile.Open(empty)).Message);
        Assert.Throws<FileNotFoundException>(() => GgufFile.Open(Path.Combine(dir, "nope.gguf")));
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(Save(dir, "empty.safetensors", [])));
        Assert.Contains("too short", e.Message);
    }
}

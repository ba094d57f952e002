using System.Buffers.Binary;
using SharpLM.Formats.Gguf;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Formats;

public sealed class GgufRoundTripTests
{
    private static readonly DType[] AllTypes = Enum.GetValues<DType>();

    [Fact]
    public void Every_metadata_type_survives_a_write_read_round_trip()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "meta.gguf");
        var w = new GgufWriter();
        w.Set("u8", new GgufValue(GgufType.UInt8, (byte)200))
         .Set("i8", new GgufValue(GgufType.Int8, (sbyte)-100))
         .Set("u16", new GgufValue(GgufType.UInt16, (ushort)60000))
         .Set("i16", new GgufValue(GgufType.Int16, (short)-30000))
         .Set("u32", 4000000000u)
         .Set("i32", -2000000000)
         .Set("f32", 1e-5f)
         .Set("bool", true)
         .Set("str", "héllo ▁world 中文")
         .Set("u64", ulong.MaxValue)
         .Set("i64", long.MinValue)
         .Set("f64", Math.PI)
         .Set("arr.u8", new GgufArray(GgufType.UInt8, new byte[] { 1, 2, 255 }))
         .Set("arr.i8", new GgufArray(GgufType.Int8, new sbyte[] { -1, 2 }))
         .Set("arr.u16", new GgufArray(GgufType.UInt16, new ushort[] { 1, 65535 }))
         .Set("arr.i16", new GgufArray(GgufType.Int16, new short[] { -5, 5 }))
         .Set("arr.u32", GgufArray.Of(new uint[] { 7, 8 }))
         .Set("arr.i32", GgufArray.Of(new[] { -7, 8, 9 }))
         .Set("arr.f32", GgufArray.Of(new[] { 0.5f, -1.25f }))
         .Set("arr.bool", GgufArray.Of(new[] { true, false, true }))
         .Set("arr.str", GgufArray.Of(new[] { "a", "", "<0x0A>", "▁the" }))
         .Set("arr.u64", new GgufArray(GgufType.UInt64, new ulong[] { ulong.MaxValue }))
         .Set("arr.i64", GgufArray.Of(new[] { long.MaxValue, -1L }))
         .Set("arr.f64", new GgufArray(GgufType.Float64, new[] { 1.5, double.Epsilon }))
         .Set("arr.empty", GgufArray.Of(Array.Empty<string>()))
         .Set("arr.nested", new GgufArray(GgufType.Array, new[]
         {
             GgufArray.Of(new[] { 1, 2 }),
             GgufArray.Of(new[] { "x" }),
             new GgufArray(GgufType.Array, new[] { GgufArray.Of(new[] { 3.5f }) }),
         }));
        w.Write(path);

        using var f = GgufFile.Open(path);
        Assert.Equal(3u, f.Version);
        Assert.Equal(w.Metadata.Select(kv => kv.Key), f.MetadataList.Select(kv => kv.Key));
        foreach (var (key, expected) in w.Metadata)
        {
            var actual = f.Get(key);
            Assert.Equal(expected.Type, actual.Type);
            AssertSameValue(key, expected.Value, actual.Value);
        }
        Assert.Equal(200, f.GetInt("u8"));
        Assert.Equal(-2000000000, f.GetInt("i32"));
        Assert.Equal(long.MinValue, f.GetLong("i64"));
        Assert.Equal(1e-5f, f.GetFloat("f32"));
        Assert.Equal((float)Math.PI, f.GetFloat("f64"));
        Assert.True(f.GetBool("bool"));
        Assert.Equal("héllo ▁world 中文", f.GetString("str"));
        Assert.Equal(new[] { "a", "", "<0x0A>", "▁the" }, f.GetStringArray("arr.str"));
        Assert.Equal(new[] { 7, 8 }, f.GetIntArray("arr.u32"));
        Assert.Equal(new[] { 0.5f, -1.25f }, f.GetFloatArray("arr.f32"));
        Assert.Equal(5, f.GetInt("missing", 5));
        var e1 = Assert.Throws<InvalidDataException>(() => f.GetString("u32"));
        Assert.Contains("'u32'", e1.Message);
        Assert.Contains("expected string", e1.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => f.GetInt("u64"));
        Assert.Contains("'u64'", e2.Message);
        var e3 = Assert.Throws<KeyNotFoundException>(() => f.GetString("nope"));
        Assert.Contains("'nope'", e3.Message);
        Assert.Empty(f.Tensors);
    }

    private static void AssertSameValue(string key, object expected, object actual)
    {
        if (expected is GgufArray ea)
        {
            var aa = Assert.IsType<GgufArray>(actual);
            Assert.Equal(ea.ElementType, aa.ElementType);
            Assert.Equal(ea.Count, aa.Count);
            for (int i = 0; i < ea.Count; i++) AssertSameValue($"{key}[{i}]", ea.Items.GetValue(i)!, aa.Items.GetValue(i)!);
            return;
        }
        Assert.True(Equals(expected, actual), $"{key}: expected {expected} ({expected.GetType().Name}), got {actual} ({actual.GetType().Name})");
    }

    [Fact]
    public void Every_dtype_round_trips_bytes_shape_and_alignment()
    {
        var dir = TestPaths.NewTempDir();
        var rng = new Random(1);
        foreach (uint alignment in new uint[] { 32, 64 })
        {
            var path = Path.Combine(dir, $"t{alignment}.gguf");
            var w = new GgufWriter(alignment);
            var expected = new Dictionary<string, (DType, long[], byte[])>();
            foreach (var t in AllTypes)
            {
                int bs = DTypeInfo.BlockSize(t);
                long[] shape = t switch { DType.F32 => [3], DType.I8 => [2, 3, 5], DType.Q4_K => [2, 1, 3, 256], _ => [3, bs * 2] };
                long bytes = shape[..^1].Aggregate(1L, (a, b) => a * b) * DTypeInfo.RowBytes(t, shape[^1]);
                var data = new byte[bytes];
                rng.NextBytes(data);
                string name = $"blk.0.{t}.weight";
                expected[name] = (t, shape, data);
                w.AddTensor(name, t, shape, data);
            }
            w.Set("general.architecture", "test");
            w.Write(path);

            using var f = GgufFile.Open(path);
            Assert.Equal(alignment, f.Alignment);
            Assert.Equal(expected.Count, f.Tensors.Count);
            Assert.Equal(0, f.DataOffset % alignment);
            foreach (var (name, (t, shape, data)) in expected)
            {
                var ti = f.Tensors[name];
                Assert.Equal(t, ti.Type);
                Assert.Equal(shape, ti.Shape);
                Assert.Equal(data.Length, ti.ByteLength);
                Assert.Equal(0, (long)ti.Data % alignment); // the mapping is page-aligned, so the data keeps the file alignment
                Assert.True(Bytes(ti).SequenceEqual(data), $"{name}: bytes differ");
            }
        }
    }

    [Fact]
    public void Weight_shape_is_row_major_and_ne_is_innermost_first_on_disk()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "w.gguf");
        var data = Enumerable.Range(0, 2 * 3).Select(i => (float)i).ToArray();
        new GgufWriter().AddTensor("w", [2, 3], data).Write(path);
        // Read ne from the raw bytes: magic, version, counts, then name (u64 len + "w"), n_dims, ne0, ne1.
        var raw = File.ReadAllBytes(path);
        int p = 4 + 4 + 8 + 8 + 8 + 1;
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(p)));
        Assert.Equal(3ul, BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(p + 4)));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(p + 12)));
        using var f = GgufFile.Open(path);
        var m = f.Tensors["w"].AsMatrix();
        Assert.Equal(2, m.Rows);
        Assert.Equal(3, m.Cols);
        Assert.Equal(data, f.Tensors["w"].AsFloats().ToArray());
    }

    [Theory]
    [InlineData(DType.F16, 1e-3)]
    [InlineData(DType.BF16, 8e-3)]
    [InlineData(DType.Q8_0, 1e-2)]
    [InlineData(DType.Q4_0, 0.2)]
    public void Float_tensors_are_converted_to_the_storage_type(DType type, double tol)
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "q.gguf");
        var rng = new Random(7);
        var data = Enumerable.Range(0, 4 * 64).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        new GgufWriter().AddTensor("w", [4, 64], data, type).Write(path);
        using var f = GgufFile.Open(path);
        var ti = f.Tensors["w"];
        Assert.Equal(type, ti.Type);
        var m = ti.AsMatrix();
        var back = new float[64];
        double maxDiff = 0;
        for (int r = 0; r < 4; r++)
        {
            SharpLM.Tensors.Types.DTypes.Of(type == DType.Q4_0 ? DType.F32 : type).DequantizeRowNaive(type == DType.Q4_0 ? Q4ToF32(m.Row(r)) : m.Row(r), back);
            for (int c = 0; c < 64; c++) maxDiff = Math.Max(maxDiff, Math.Abs(back[c] - data[r * 64 + c]));
        }
        Assert.True(maxDiff <= tol, $"{type}: max |diff| {maxDiff} > {tol}");
    }

    // Independent Q4_0 decode (ggml dequantize_row_q4_0): x = d * (nibble - 8), low nibbles first then high.
    private static byte[] Q4ToF32(ReadOnlySpan<byte> row)
    {
        var r = new byte[row.Length / 18 * 32 * 4];
        for (int b = 0; b < row.Length / 18; b++)
        {
            float d = (float)BinaryPrimitives.ReadHalfLittleEndian(row[(b * 18)..]);
            for (int j = 0; j < 16; j++)
            {
                byte q = row[b * 18 + 2 + j];
                BinaryPrimitives.WriteSingleLittleEndian(r.AsSpan((b * 32 + j) * 4), d * ((q & 15) - 8));
                BinaryPrimitives.WriteSingleLittleEndian(r.AsSpan((b * 32 + j + 16) * 4), d * ((q >> 4) - 8));
            }
        }
        return r;
    }

    private static unsafe ReadOnlySpan<byte> Bytes(SharpLM.Formats.TensorInfo t) => new((void*)t.Data, checked((int)t.ByteLength));
}

public sealed class GgufVersionTests
{
    [Fact]
    public void Version_2_files_are_read_like_version_3()
    {
        // v2 and v3 share the little-endian layout (v3 only allowed big-endian files, which carry a swapped version).
        var ms = new MemoryStream();
        new GgufWriter().Set("general.architecture", "llama").Set("k", 7u).AddTensor("t", [2, 32], new float[64]).WriteTo(ms);
        var b = ms.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 2);
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "v2.gguf");
        File.WriteAllBytes(path, b);
        using var f = GgufFile.Open(path);
        Assert.Equal(2u, f.Version);
        Assert.Equal(7, f.GetInt("k"));
        Assert.Equal(new long[] { 2, 32 }, f.Tensors["t"].Shape);
    }

    [Fact]
    public void A_big_endian_file_is_reported_as_such()
    {
        var ms = new MemoryStream();
        new GgufWriter().Set("general.architecture", "llama").WriteTo(ms);
        var b = ms.ToArray();
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 3);
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "be.gguf");
        File.WriteAllBytes(path, b);
        var e = Assert.Throws<InvalidDataException>(() => GgufFile.Open(path));
        Assert.Contains("big-endian", e.Message);
    }
}

using System.Buffers.Binary;
using System.Text;
using SharpLM.Formats.Safetensors;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Formats;

public sealed class SafetensorsTests
{
    [Fact]
    public void Tensors_and_metadata_round_trip()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "model.safetensors");
        var rng = new Random(3);
        var f32 = Enumerable.Range(0, 6).Select(i => i * 0.5f - 1).ToArray();
        var i64 = new byte[4 * 8];
        rng.NextBytes(i64);
        var u8 = new byte[] { 1, 2, 3 };
        new SafetensorsWriter()
            .SetMetadata("format", "pt")
            .Add("w", [2, 3], f32)
            .Add("h", [2, 3], f32, DType.F16)
            .Add("b", [6], f32, DType.BF16)
            .Add("ids", DType.I64, [4], i64)
            .Add("mask", "U8", [3], u8)
            .Add("scalar", [], new[] { 7f })
            .Add("empty", [0, 4], Array.Empty<float>())
            .Write(path);

        using var f = SafetensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(0, (f.DataOffset - 8) % 8);
        Assert.Equal(f32, f.Tensors["w"].AsFloats().ToArray());
        Assert.Equal(new long[] { 2, 3 }, f.Tensors["w"].Shape);
        Assert.Equal(DType.F16, f.Tensors["h"].Type);
        Assert.Equal(f32.Select(x => (float)(Half)x), Read(f.Tensors["h"]).Chunk(2).Select(b => (float)BinaryPrimitives.ReadHalfLittleEndian(b)));
        Assert.Equal(DType.BF16, f.Tensors["b"].Type);
        Assert.Equal(f32, Read(f.Tensors["b"]).Chunk(2).Select(b => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16)));
        Assert.Equal(i64, Read(f.Tensors["ids"]));
        Assert.False(f.Tensors.ContainsKey("mask")); // U8 has no DType; still listed
        var mask = f.Entries.Single(e => e.Name == "mask");
        Assert.Equal("U8", mask.DTypeName);
        Assert.Equal(3, mask.ByteLength);
        Assert.Empty(f.Tensors["scalar"].Shape);
        Assert.Equal(7f, f.Tensors["scalar"].AsFloats()[0]);
        Assert.Equal(0, f.Tensors["empty"].ByteLength);
    }

    [Fact]
    public void A_handwritten_file_in_the_spec_layout_is_read()
    {
        // Built byte by byte from the safetensors README, independent of our writer.
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "hand.safetensors");
        var header = Encoding.UTF8.GetBytes("{\"__metadata__\":{\"a\":\"b\"},\"x\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]}}");
        var bytes = new List<byte>();
        bytes.AddRange(BitConverter.GetBytes((ulong)header.Length));
        bytes.AddRange(header);
        bytes.AddRange(BitConverter.GetBytes(1.5f));
        bytes.AddRange(BitConverter.GetBytes(-2f));
        bytes.AddRange(BitConverter.GetBytes(42));
        File.WriteAllBytes(path, [.. bytes]);
        using var f = SafetensorsFile.Open(path);
        Assert.Equal(new[] { 1.5f, -2f }, f.Tensors["x"].AsFloats().ToArray());
        Assert.Equal(42, BitConverter.ToInt32(Read(f.Tensors["y"])));
        Assert.Equal("b", f.Metadata["a"]);
    }

    [Fact]
    public void Sharded_folder_is_read_through_the_index()
    {
        var dir = TestPaths.NewTempDir();
        var w = new SafetensorsWriter();
        var all = new Dictionary<string, float[]>();
        for (int i = 0; i < 7; i++)
        {
            var d = Enumerable.Range(0, 10 + i).Select(x => (float)(x * i)).ToArray();
            all[$"t{i}"] = d;
            w.Add($"t{i}", [d.Length], d);
        }
        var index = w.WriteSharded(dir, maxShardBytes: 100);
        Assert.True(Directory.GetFiles(dir, "model-*-of-*.safetensors").Length >= 3);
        using var m = SafetensorsModel.Open(dir);
        Assert.Equal(index, m.Path);
        Assert.Equal(all.Count, m.Tensors.Count);
        foreach (var (name, d) in all) Assert.Equal(d, m.Tensors[name].AsFloats().ToArray());
    }

    [Fact]
    public void A_missing_shard_names_the_index_and_the_shard()
    {
        var dir = TestPaths.NewTempDir();
        var w = new SafetensorsWriter();
        for (int i = 0; i < 3; i++) w.Add($"t{i}", [16], new float[16]);
        w.WriteSharded(dir, maxShardBytes: 64);
        var victim = Directory.GetFiles(dir, "model-00002-*.safetensors").Single();
        File.Delete(victim);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsModel.Open(dir));
        Assert.Contains("model.safetensors.index.json", e.Message);
        Assert.Contains(Path.GetFileName(victim), e.Message);
    }

    [Fact]
    public void Bad_index_json_is_a_clear_error()
    {
        var dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), "{\"weight_map\": {\"a\": ");
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsModel.Open(dir));
        Assert.Contains("model.safetensors.index.json", e.Message);
        Assert.Contains("JSON", e.Message);
    }

    private static unsafe byte[] Read(SharpLM.Formats.TensorInfo t) => new ReadOnlySpan<byte>((void*)t.Data, (int)t.ByteLength).ToArray();
}

using LLama;
using LLama.Common;
using SharpLM.Formats.Gguf;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Formats;

/// <summary>llama.cpp (through LLamaSharp) is the reference GGUF reader: files we write must load there.</summary>
public sealed class LlamaCppLoadTests
{
    [Theory]
    [InlineData("llama", DType.F32)]
    [InlineData("llama", DType.F16)]
    [InlineData("llama", DType.Q8_0)]
    [InlineData("qwen2", DType.Q4_0)]
    public void Llama_cpp_loads_a_gguf_we_wrote_and_sees_the_same_hyperparameters(string arch, DType type)
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, $"tiny-{arch}-{type}.gguf");
        TinyGguf.Build(arch, type).Write(path);

        using var ours = GgufFile.Open(path);
        var p = new ModelParams(path) { GpuLayerCount = 0 };
        using var weights = LLamaWeights.LoadFromFile(p);
        Assert.Equal(TinyGguf.Vocab().Length, weights.Vocab.Count);
        Assert.Equal(TinyGguf.C, weights.EmbeddingSize);
        Assert.Equal(TinyGguf.Ctx, weights.ContextSize);
        Assert.Equal(arch, weights.Metadata["general.architecture"]);
        Assert.Equal(ours.GetString("general.name"), weights.Metadata["general.name"]);
        long ourParams = ours.TensorList.Sum(t => t.ElementCount);
        Assert.Equal(ourParams, (long)weights.ParameterCount);
    }
}

/// <summary>Every scalar metadata type we write is read back by llama.cpp's own GGUF parser with the same value.</summary>
public sealed class LlamaCppMetadataTests
{
    [Fact]
    public void Llama_cpp_reads_every_scalar_metadata_type_we_write()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "meta.gguf");
        var w = TinyGguf.Build();
        w.Set("test.u8", new GgufValue(GgufType.UInt8, (byte)200))
         .Set("test.i8", new GgufValue(GgufType.Int8, (sbyte)-100))
         .Set("test.u16", new GgufValue(GgufType.UInt16, (ushort)60000))
         .Set("test.i16", new GgufValue(GgufType.Int16, (short)-30000))
         .Set("test.u32", 4000000000u)
         .Set("test.i32", -2000000000)
         .Set("test.u64", 18000000000000000000ul)
         .Set("test.i64", -9000000000000000000L)
         .Set("test.f32", 0.5f)
         .Set("test.f64", 1.25)
         .Set("test.bool", true)
         .Set("test.str", "héllo ▁world")
         .Set("test.arr.i32", GgufArray.Of(new[] { 1, -2, 3 }))
         .Set("test.arr.str", GgufArray.Of(new[] { "a", "b" }));
        w.Write(path);
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { GpuLayerCount = 0 });
        var m = weights.Metadata;
        var report = string.Join("; ", m.Where(kv => kv.Key.StartsWith("test.", StringComparison.Ordinal)).Select(kv => $"{kv.Key}={kv.Value}"));
        Assert.True(m.ContainsKey("test.u8"), report);
        Assert.Equal("200", m["test.u8"]);
        Assert.Equal("-100", m["test.i8"]);
        Assert.Equal("60000", m["test.u16"]);
        Assert.Equal("-30000", m["test.i16"]);
        Assert.Equal("4000000000", m["test.u32"]);
        Assert.Equal("-2000000000", m["test.i32"]);
        Assert.Equal("18000000000000000000", m["test.u64"]);
        Assert.Equal("-9000000000000000000", m["test.i64"]);
        Assert.Equal(0.5, double.Parse(m["test.f32"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1.25, double.Parse(m["test.f64"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("true", m["test.bool"]);
        Assert.Equal("héllo ▁world", m["test.str"]);
        // llama.cpp keeps only scalar metadata in its model; arrays are checked through the vocab (tokens, scores,
        // types, merges) that it loads from files we write (HfConvertTests, GgufTokenizerTests).
        Assert.False(m.ContainsKey("test.arr.i32"), report);
    }
}

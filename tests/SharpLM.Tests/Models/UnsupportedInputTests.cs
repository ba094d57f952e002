using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Models;

/// <summary>What SharpLM still cannot run fails with a message naming the thing and the file.</summary>
public sealed class UnsupportedInputTests
{
    /// <summary>A copy of <paramref name="src"/> with every tensor kept, one matrix stored as <paramref name="type"/>
    /// (random bytes) and general.architecture possibly renamed.</summary>
    private static string Rewrite(string src, string matrix, DType type, string? arch = null)
    {
        using var f = GgufFile.Open(src);
        var w = new GgufWriter();
        foreach (var (k, v) in f.MetadataList)
            if (k != GgufKeys.Alignment) w.Set(k, v);
        if (arch is not null) w.Set(GgufKeys.Architecture, arch);
        var rng = new Random(1);
        foreach (var t in f.TensorList)
        {
            if (t.Name == matrix)
            {
                var bytes = new byte[DTypeInfo.RowBytes(type, t.Shape[^1]) * (t.ElementCount / t.Shape[^1])];
                rng.NextBytes(bytes);
                w.AddTensor(t.Name, type, t.Shape, bytes);
            }
            else
            {
                var copy = new byte[t.ByteLength];
                unsafe { new ReadOnlySpan<byte>((void*)t.Data, copy.Length).CopyTo(copy); }
                w.AddTensor(t.Name, t.Type, t.Shape, copy);
            }
        }
        var path = Path.Combine(TestPaths.NewTempDir(), "rewritten.gguf");
        w.Write(path);
        return path;
    }

    [Theory]
    [InlineData(DType.IQ2_XXS)]
    [InlineData(DType.IQ3_S)]
    [InlineData(DType.MXFP4)]
    public void A_tensor_type_sharplm_does_not_compute_is_named_with_the_tensor_and_the_file(DType type)
    {
        var m = RandomModel.Create(SmallLlamaShapeTests.Config(256, 4, 2, 512, 300, 10000, tied: false, layers: 1), 3);
        var path = Rewrite(m.Gguf(), "blk.0.ffn_up.weight", type);
        // the file opens (inspect and calc read it); the model does not load
        using (var f = GgufFile.Open(path)) Assert.Equal(type, f.Tensors["blk.0.ffn_up.weight"].Type);
        var e = Assert.Throws<NotSupportedException>(() => LanguageModel.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("blk.0.ffn_up.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains($"type {type}", e.Message, StringComparison.Ordinal);
        Assert.Contains("iq4_xs", e.Message, StringComparison.Ordinal); // the list of what is supported
    }

    [Fact]
    public void An_architecture_sharplm_does_not_know_is_named_with_the_file()
    {
        var m = RandomModel.Create(SmallLlamaShapeTests.Config(128, 4, 2, 256, 300, 10000, tied: false, layers: 1), 3);
        var path = Rewrite(m.Gguf(), "", DType.F32, arch: "falcon");
        var e = Assert.Throws<NotSupportedException>(() => LanguageModel.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("'falcon'", e.Message, StringComparison.Ordinal);
        Assert.Contains("gemma3", e.Message, StringComparison.Ordinal);
    }
}

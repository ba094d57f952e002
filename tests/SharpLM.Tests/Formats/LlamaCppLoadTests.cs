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

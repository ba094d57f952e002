using SharpLM.Formats;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;
using SharpLM.Tests.Kernels;
using SharpLM.Tests.Models;

namespace SharpLM.Tests.Formats;

/// <summary>A file used where it is mapped, or read into the process's memory (the models' default).</summary>
public sealed unsafe class MappedFileTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4096 * 3 + 17)]
    [InlineData((1 << 26) + 4099)] // past one read piece: five 16 MB pieces read on two threads
    public void Mapped_and_read_give_the_files_bytes(int length)
    {
        var path = Path.Combine(TestPaths.NewTempDir(), "bytes.bin");
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        using var mapped = MappedFile.Open(path, inMemory: false);
        using var read = MappedFile.Open(path, inMemory: true);
        Assert.False(mapped.InMemory);
        Assert.Equal(length > 0, read.InMemory);
        Assert.Equal(length, read.Length);
        if (length == 0) return; // an empty file has no bytes to compare (both views are empty, checked above)
        Assert.Equal(0, (long)read.Pointer % 64);
        Assert.True(new ReadOnlySpan<byte>(read.Pointer, length).SequenceEqual(bytes));
        Assert.True(new ReadOnlySpan<byte>(mapped.Pointer, length).SequenceEqual(bytes));
    }

    [Fact]
    public void A_disposed_file_refuses_its_pointer()
    {
        var path = Path.Combine(TestPaths.NewTempDir(), "bytes.bin");
        File.WriteAllBytes(path, new byte[100]);
        var read = MappedFile.Open(path, inMemory: true);
        read.Dispose();
        read.Dispose(); // twice is harmless
        Assert.Throws<ObjectDisposedException>(() => (nint)read.Pointer);
    }

    /// <summary>The same logits, bit for bit, from a GGUF file and a Hugging Face folder loaded mapped or read.</summary>
    [Fact]
    public void A_model_computes_the_same_bits_mapped_or_read_apart_from_regrouped_rows()
    {
        var gguf = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        TinyGguf.Build("llama", DType.Q8_0).Write(gguf);
        var hf = TinyHf.Create(Path.Combine(TestPaths.NewTempDir(), "hf"), "qwen2", DType.BF16);
        int[] ids = [1, 5, 9, 2, 7, 3];
        foreach (var path in new[] { gguf, hf })
        {
            using var read = LanguageModel.Load(path);
            using var mapped = LanguageModel.Load(path, new ModelLoadOptions { MapWeights = true });
            var a = LlamaParityTests.OurLogits(read, ids);
            var b = LlamaParityTests.OurLogits(mapped, ids);
            // read into memory, Q8_0 matrices are regrouped for the matvec (RowGroups; a mapping is read-only): the same
            // products summed in another order
            if (path == gguf && SharpLM.Tensors.Types.RowGroups.Regroups(DType.Q8_0))
            {
                Assert.Equal(SharpLM.Tensors.Types.RowGroups.Size * (read.Weights.Layers[0].Q.W.Rows / SharpLM.Tensors.Types.RowGroups.Size), read.Weights.Layers[0].Q.W.GroupedRows);
                Assert.Equal(0, mapped.Weights.Layers[0].Q.W.GroupedRows);
                KernelTestUtil.AssertClose(b, a, 1e-4, $"{Path.GetFileName(path)}: read (regrouped) vs mapped");
            }
            else KernelTestUtil.AssertBitEqual(a, b, $"{Path.GetFileName(path)}: read vs mapped");
        }
    }
}

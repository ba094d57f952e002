using System.Text.Json.Nodes;
using LLama;
using LLama.Native;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using SharpLM.Quantization;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;
using SharpLM.Testing;
using SharpLM.Tests.Models;
using Xunit.Abstractions;

namespace SharpLM.Tests.Quantization;

/// <summary>
/// SharpLM's quantizer against llama.cpp's own (llama_model_quantize through LLamaSharp) on the same F32 GGUF: for every
/// file type, every tensor gets the same type and the same bytes. The models are random, built from config.json alone,
/// with the shapes that steer llama.cpp's rules: more than ten layers (the per-layer rules and llama.cpp's tensor order),
/// GQA 4 (attention values), tied heads, fused q/k/v (Phi-3, GPT-2), widths that are not whole k-blocks (the fallbacks to
/// Q5_0, Q5_1, Q8_0, IQ4_NL, Q4_0) and not even whole 32-blocks (F16).
/// </summary>
public sealed class QuantizeMixTests(ITestOutputHelper output)
{
    public static TheoryData<string> FileTypes => new()
    {
        "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k",
        "iq4_nl", "iq4_xs", "f16", // (LLamaSharp refuses MOSTLY_BF16 as a quantization target)
    };

    /// <summary>The models, and whether llama.cpp can quantize each to a file type (it has no fallback for a legacy
    /// type whose rows are not whole 32-blocks, and stops).</summary>
    private static readonly Lazy<List<(string Name, string Gguf, Func<QuantFileType, bool> Applies)>> s_models = new(() =>
    [
        // LLaMA, 12 layers, GQA 4, C a multiple of 256: the plain mixes
        ("llama-12L-gqa4", RandomModel.Create(SmallLlamaShapeTests.Config(256, 8, 2, 256, 300, 10000, tied: false, layers: 12), 1).Gguf(), _ => true),
        // Qwen2.5-0.5B's width class (C 896 is not whole 256-blocks: Q4_K -> Q5_0 ...), tied head (token_embd as output)
        ("qwen2-tied-C160", RandomModel.Create(Qwen2(160, 5, 5, 1, 288, 320), 2).Gguf(), _ => true),
        // Phi-3: fused qkv, 10 layers, MHA
        ("phi3-qkv", RandomModel.Create(Phi3ParityTests.Config(256, 10, 4, 4, 512, 290), 3).Gguf(), _ => true),
        // Gemma 3: tied, q/k norms and post-norms, FFN rows of 96 (not whole 256-blocks)
        ("gemma3-F96", RandomModel.Create(GemmaParityTests.Config("gemma3", 64, 6, 2, 1, 32, 96, 211), 4).Gguf(), _ => true),
        // Mixtral: 8 experts (llama.cpp's 8-expert rules: attention values and keys at Q8_0, ...), experts stacked (X, FE, C)
        ("mixtral-8x", RandomModel.Create(MoeParityTests.Config("mixtral", 256, 2, 4, 2, 8, 2, 256, 300), 6).Gguf(), _ => true),
        // Qwen2-MoE: 4 experts and a shared one (ffn_*_shexp, its 1 x C router kept in F32)
        ("qwen2moe-shared", RandomModel.Create(MoeParityTests.Config("qwen2moe", 256, 2, 4, 4, 4, 2, 256, 290, sharedFfn: 256), 7).Gguf(), _ => true),
        // FFN down rows of 200, not even whole 32-blocks: k-quants fall back to Q5_0/Q5_1/Q8_0/IQ4_NL/Q4_0, then to F16
        ("llama-F200", RandomModel.Create(SmallLlamaShapeTests.Config(128, 4, 4, 200, 257, 10000, tied: false, layers: 3), 5).Gguf(),
            ft => !ft.IsQuantized || DTypes.Of(ft.Type).BlockSize == 256),
    ]);

    private static JsonObject Qwen2(int c, int layers, int heads, int kv, int ffn, int vocab)
    {
        var o = SmallLlamaShapeTests.Config(c, heads, kv, ffn, vocab, 1000000, tied: true, layers: layers);
        o["architectures"] = new JsonArray("Qwen2ForCausalLM");
        o["model_type"] = "qwen2";
        return o;
    }

    private static void LlamaCppQuantize(string src, string dst, QuantFileType ft)
    {
        LlamaCppOracle.EnsureLoaded();
        if (!LLamaQuantizer.Quantize(src, dst, (LLamaFtype)ft.Id, nthread: 1, allowRequantize: true, quantizeOutputTensor: true))
            throw new InvalidOperationException($"llama.cpp could not quantize {src} to {ft}");
    }

    [Theory]
    [MemberData(nameof(FileTypes))]
    public void Every_tensor_gets_llama_cpp_s_type_and_bytes(string fileType)
    {
        var ft = QuantFileType.Parse(fileType);
        foreach (var (name, f32, applies) in s_models.Value.Where(m => m.Applies(ft)))
        {
            var dir = TestPaths.NewTempDir("quantize");
            string theirs = Path.Combine(dir, "llama.cpp.gguf"), ours = Path.Combine(dir, "sharplm.gguf");
            LlamaCppQuantize(f32, theirs, ft);
            using (var src = GgufFile.Open(f32)) GgufRequantize.Build(src, ft).Write(ours);
            using var a = GgufFile.Open(theirs);
            using var b = GgufFile.Open(ours);
            Assert.Equal(a.Tensors.Keys.Order(), b.Tensors.Keys.Order());
            var mismatched = new List<string>();
            int sameBytes = 0;
            var mix = new SortedDictionary<string, int>();
            foreach (var t in a.TensorList)
            {
                var u = b.Tensors[t.Name];
                if (t.Type != u.Type) mismatched.Add($"{t.Name}: llama.cpp {t.Type}, SharpLM {u.Type}");
                else if (t.ByteLength == u.ByteLength && Bytes(t).SequenceEqual(Bytes(u))) sameBytes++;
                else mismatched.Add($"{t.Name} ({t.Type}): the bytes differ");
                mix[t.Type.ToString()] = mix.GetValueOrDefault(t.Type.ToString()) + 1;
            }
            output.WriteLine($"{name} {ft}: {a.TensorList.Count} tensors ({string.Join(", ", mix.Select(kv => $"{kv.Value} {kv.Key}"))}), {sameBytes} byte-identical");
            Assert.True(mismatched.Count == 0, $"{name} {ft}: {mismatched.Count} tensors differ from llama.cpp's quantizer: {string.Join("; ", mismatched.Take(8))}");
            Assert.Equal(a.GetInt(GgufKeys.FileType), b.GetInt(GgufKeys.FileType));
        }
    }

    private static unsafe ReadOnlySpan<byte> Bytes(SharpLM.Formats.TensorInfo t) => new((void*)t.Data, checked((int)t.ByteLength));

    /// <summary>A Hugging Face folder quantized in one step equals converting it to F32 and quantizing that.</summary>
    [Theory]
    [InlineData("q4_k_m")]
    [InlineData("iq4_xs")]
    public void A_hf_folder_quantizes_as_its_f32_gguf_does(string fileType)
    {
        var ft = QuantFileType.Parse(fileType);
        var m = RandomModel.Create(Qwen2(160, 5, 5, 1, 288, 320), 2);
        var f32 = m.Gguf();
        var dir = TestPaths.NewTempDir("quantize-hf");
        string viaF32 = Path.Combine(dir, "via-f32.gguf"), direct = Path.Combine(dir, "direct.gguf");
        using (var src = GgufFile.Open(f32)) GgufRequantize.Build(src, ft).Write(viaF32);
        using (var folder = HfModelFolder.Open(m.HfDir))
        {
            var w = HfToGguf.Build(folder, new HfToGguf.Options(ft, "random-model"));
            TinyLlama.WriteVocab(w, m.Config.Vocab);
            w.Write(direct);
        }
        using var a = GgufFile.Open(viaF32);
        using var b = GgufFile.Open(direct);
        foreach (var t in a.TensorList)
        {
            var u = b.Tensors[t.Name];
            Assert.Equal(t.Type, u.Type);
            Assert.True(Bytes(t).SequenceEqual(Bytes(u)), $"{t.Name}: the bytes differ");
        }
    }
}

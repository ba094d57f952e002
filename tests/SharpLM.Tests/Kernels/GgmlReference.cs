using System.Runtime.InteropServices;
using SharpLM.Tensors;
using Xunit;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// ggml's own reference quantizers and dequantizers (quantize_row_*_ref, dequantize_row_*), called in the
/// libggml-base.so that the LLamaSharp.Backend.Cpu test dependency ships (its plain 'noavx' build): the oracle that
/// SharpLM's block layouts are what llama.cpp reads.
/// </summary>
internal static unsafe class GgmlReference
{
    private static readonly Lazy<nint> s_lib = new(Load);

    /// <summary>True where the library exists for this platform (linux-x64, which CI runs).</summary>
    public static bool Available => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    private static nint Load()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "noavx", "libggml-base.so");
        if (!File.Exists(path)) throw new FileNotFoundException($"ggml reference library not found at {path}; it comes with the LLamaSharp.Backend.Cpu package (run a restore)", path);
        return NativeLibrary.Load(path);
    }

    private static nint Fn(string name) => NativeLibrary.GetExport(s_lib.Value, name);

    private static string Suffix(DType t) => t.ToString().ToLowerInvariant().Replace("_k", "_K", StringComparison.Ordinal);

    public static void QuantizeRow(DType type, ReadOnlySpan<float> x, Span<byte> y)
    {
        var f = (delegate* unmanaged<float*, byte*, long, void>)Fn($"quantize_row_{Suffix(type)}_ref");
        fixed (float* px = x)
        fixed (byte* py = y)
            f(px, py, x.Length);
    }

    /// <summary>ggml_quantize_chunk without an importance matrix: what llama.cpp's quantizer (llama_model_quantize) calls.
    /// For most types it is quantize_row_*_ref; IQ4_NL's ref runs a shorter scale search than the quantizer.</summary>
    public static void QuantizeChunk(DType type, ReadOnlySpan<float> x, Span<byte> y, int rows)
    {
        var f = (delegate* unmanaged<int, float*, byte*, long, long, long, float*, nuint>)Fn("ggml_quantize_chunk");
        fixed (float* px = x)
        fixed (byte* py = y)
            f((int)type, px, py, 0, rows, x.Length / rows, null);
    }

    public static void DequantizeRow(DType type, ReadOnlySpan<byte> x, Span<float> y)
    {
        var f = (delegate* unmanaged<byte*, float*, long, void>)Fn($"dequantize_row_{Suffix(type)}");
        fixed (byte* px = x)
        fixed (float* py = y)
            f(px, py, y.Length);
    }
}

/// <summary>A theory against ggml's reference code: skipped (with the reason) where the library does not ship.</summary>
public sealed class GgmlTheoryAttribute : TheoryAttribute
{
    public GgmlTheoryAttribute()
    {
        if (!GgmlReference.Available) Skip = "needs the llama.cpp native library, which ships here for Linux x64";
    }
}

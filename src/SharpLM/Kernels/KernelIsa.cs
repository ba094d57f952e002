using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpLM.Kernels;

/// <summary>The vector width a kernel variant uses. Best first: Avx512 (Vector512), Avx2 (Vector256 + FMA), Scalar.</summary>
public enum KernelIsa
{
    Scalar = 0,
    Avx2 = 1,
    Avx512 = 2,
}

/// <summary>
/// Chooses the kernel variant once per process: the best the CPU and runtime support, or the one forced with the
/// environment variable <c>SHARPLM_ISA=avx512|avx2|scalar</c> (a variant the CPU cannot run falls back to the best
/// it can). Tests force a variant with <see cref="Force"/>: on the calling thread and, for the work it hands to the
/// <see cref="WorkerPool"/>, on the workers too.
/// </summary>
internal static class KernelIsaSelector
{
    public static readonly KernelIsa Best = DetectBest();
    public static readonly KernelIsa Default = FromEnvironment();

    [ThreadStatic] private static KernelIsa? t_forced;

    /// <summary>The variant kernels called on this thread use.</summary>
    public static KernelIsa Current => t_forced ?? Default;

    public static bool IsSupported(KernelIsa isa) => isa <= Best;

    /// <summary>The variant forced on this thread, if any (the pool carries it to its workers).</summary>
    internal static KernelIsa? Forced
    {
        get => t_forced;
        set => t_forced = value;
    }

    /// <summary>Forces <paramref name="isa"/> on the calling thread until the returned scope is disposed (tests).</summary>
    public static Scope Force(KernelIsa isa)
    {
        var old = t_forced;
        t_forced = isa <= Best ? isa : Best;
        return new Scope(old);
    }

    internal readonly struct Scope(KernelIsa? previous) : IDisposable
    {
        public void Dispose() => t_forced = previous;
    }

    private static KernelIsa DetectBest()
    {
        if (Avx512F.IsSupported && Avx512BW.IsSupported && Avx512F.VL.IsSupported && Vector512.IsHardwareAccelerated && Fma.IsSupported) return KernelIsa.Avx512;
        if (Avx2.IsSupported && Fma.IsSupported && Vector256.IsHardwareAccelerated) return KernelIsa.Avx2;
        return KernelIsa.Scalar;
    }

    private static KernelIsa FromEnvironment() => Parse(Environment.GetEnvironmentVariable("SHARPLM_ISA"));

    /// <summary>The variant a SHARPLM_ISA value asks for, capped at what this machine supports (unset or empty: the best).</summary>
    internal static KernelIsa Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return Best;
        KernelIsa want = value.Trim().ToLowerInvariant() switch
        {
            "avx512" => KernelIsa.Avx512,
            "avx2" => KernelIsa.Avx2,
            "scalar" => KernelIsa.Scalar,
            _ => throw new ArgumentException($"SHARPLM_ISA='{value}' is not a kernel variant; expected avx512, avx2 or scalar (or unset for the best)"),
        };
        return want <= Best ? want : Best;
    }
}

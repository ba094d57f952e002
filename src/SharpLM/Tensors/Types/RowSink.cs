using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Where a block decoder puts the values it decodes (8 or 16 at element offset <c>at</c> of the row): stored as floats
/// (<see cref="StoreSink"/>, the fast dequantizer) or multiplied into a running dot product with x (<see cref="DotSink"/>,
/// the fused dot). One decoder per format serves both, specialised by the JIT for each sink.
/// </summary>
internal unsafe interface IRowSink
{
    void Put(int at, Vector512<float> v);
    void Put(int at, Vector256<float> v);
}

internal unsafe struct StoreSink(float* dst) : IRowSink
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Put(int at, Vector512<float> v) => v.Store(dst + at);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Put(int at, Vector256<float> v) => v.Store(dst + at);
}

internal unsafe struct DotSink(float* x) : IRowSink
{
    private Vector512<float> _acc512;
    private Vector256<float> _acc256;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Put(int at, Vector512<float> v) => _acc512 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x + at), _acc512);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Put(int at, Vector256<float> v) => _acc256 = Fma.MultiplyAdd(v, Vector256.Load(x + at), _acc256);

    public readonly float Sum => Horizontal.Sum(_acc512) + Horizontal.Sum(_acc256);
}

/// <summary>Four <see cref="DotSink"/>s fed by one decoding: each row's accumulators see exactly the operations a
/// <see cref="DotSink"/> of that row alone would, so the sums are bit-identical.</summary>
internal unsafe struct Dot4Sink(float* x0, float* x1, float* x2, float* x3) : IRowSink
{
    private Vector512<float> _a0, _a1, _a2, _a3;
    private Vector256<float> _b0, _b1, _b2, _b3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Put(int at, Vector512<float> v)
    {
        _a0 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x0 + at), _a0);
        _a1 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x1 + at), _a1);
        _a2 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x2 + at), _a2);
        _a3 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x3 + at), _a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Put(int at, Vector256<float> v)
    {
        _b0 = Fma.MultiplyAdd(v, Vector256.Load(x0 + at), _b0);
        _b1 = Fma.MultiplyAdd(v, Vector256.Load(x1 + at), _b1);
        _b2 = Fma.MultiplyAdd(v, Vector256.Load(x2 + at), _b2);
        _b3 = Fma.MultiplyAdd(v, Vector256.Load(x3 + at), _b3);
    }

    public readonly void Sums(float* results)
    {
        results[0] = Horizontal.Sum(_a0) + Horizontal.Sum(_b0);
        results[1] = Horizontal.Sum(_a1) + Horizontal.Sum(_b1);
        results[2] = Horizontal.Sum(_a2) + Horizontal.Sum(_b2);
        results[3] = Horizontal.Sum(_a3) + Horizontal.Sum(_b3);
    }
}

/// <summary>A format's SIMD block decoder (Q4_1/Q5_0/Q5_1, Q2_K/Q3_K, IQ4_NL/IQ4_XS): n elements of a row of
/// <c>type</c> into a sink.</summary>
internal unsafe interface IBlockDecoder
{
    static abstract void Decode<TSink>(DType type, byte* src, int n, KernelIsa isa, ref TSink sink) where TSink : struct, IRowSink;
}

/// <summary>A decoder's fast dequantizer and fused dot.</summary>
internal static unsafe class BlockDecoders
{
    public static void Dequantize<TDecoder>(DType type, byte* src, float* dst, int n, KernelIsa isa) where TDecoder : IBlockDecoder
    {
        var sink = new StoreSink(dst);
        TDecoder.Decode(type, src, n, isa, ref sink);
    }

    /// <summary>w (n elements) . x (n) with the values decoded in registers (the scalar variant dequantizes first).</summary>
    public static float Dot<TDecoder>(DType type, byte* w, float* x, int n, KernelIsa isa, float* rowBuf) where TDecoder : IBlockDecoder
    {
        if (isa == KernelIsa.Scalar) return TypeTraits.DotGeneric(DTypes.Of(type), w, x, n, isa, rowBuf);
        var sink = new DotSink(x);
        TDecoder.Decode(type, w, n, isa, ref sink);
        return sink.Sum;
    }

    /// <summary>results[r] = <see cref="Dot{TDecoder}"/>(w, xs[r]) for r &lt; 4, bit for bit, the row decoded once; false for
    /// the scalar variant (which dequantizes per row).</summary>
    public static bool Dot4<TDecoder>(DType type, byte* w, float** xs, int n, KernelIsa isa, float* results) where TDecoder : IBlockDecoder
    {
        if (isa == KernelIsa.Scalar) return false;
        var sink = new Dot4Sink(xs[0], xs[1], xs[2], xs[3]);
        TDecoder.Decode(type, w, n, isa, ref sink);
        sink.Sums(results);
        return true;
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    public readonly float Sum => Vector512.Sum(_acc512) + Vector256.Sum(_acc256);
}

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>
/// Vector math shared by the elementwise kernels: exp (the runtime's Vector*.Exp), erf (Abramowitz-Stegun 7.1.26,
/// |error| &lt;= 1.5e-7), tanh via exp, and horizontal max. Scalar versions use the same formulas.
/// </summary>
internal static class VecMath
{
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Erf(float x)
    {
        float ax = MathF.Abs(x);
        float t = 1f / (1f + P * ax);
        float y = 1f - ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t * MathF.Exp(-ax * ax);
        return x < 0 ? -y : y;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Erf(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(P) * ax);
        var poly = Vector512.FusedMultiplyAdd(Vector512.Create(A5), t, Vector512.Create(A4));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A3));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A2));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A1));
        var y = Vector512<float>.One - poly * t * Vector512.Exp(-(ax * ax));
        return Vector512.CopySign(y, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Erf(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(P) * ax);
        var poly = Vector256.FusedMultiplyAdd(Vector256.Create(A5), t, Vector256.Create(A4));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A3));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A2));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A1));
        var y = Vector256<float>.One - poly * t * Vector256.Exp(-(ax * ax));
        return Vector256.CopySign(y, x);
    }

    /// <summary>tanh(u) = 1 - 2 / (1 + exp(2u)); saturates cleanly to +-1 (no NaN) for large |u|.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> u) =>
        Vector512<float>.One - Vector512.Create(2f) / (Vector512<float>.One + Vector512.Exp(u + u));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> u) =>
        Vector256<float>.One - Vector256.Create(2f) / (Vector256<float>.One + Vector256.Exp(u + u));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tanh(float u) => 1f - 2f / (1f + MathF.Exp(u + u));

    /// <summary>
    /// The last <paramref name="n"/> &lt; <paramref name="width"/> elements through the same vector kernel as the rest:
    /// copied into a zero-padded vector, computed, copied back. So an element's result never depends on its position in
    /// the span (a scalar tail would round differently), which keeps a row's output independent of the batch around it.
    /// </summary>
    public static unsafe void Tail(float* a, float* b, float* y, int n, int width, delegate*<float*, float*, float*, void> kernel)
    {
        float* ta = stackalloc float[16], tb = stackalloc float[16], ty = stackalloc float[16];
        for (int i = 0; i < width; i++) { ta[i] = i < n ? a[i] : 0f; tb[i] = b != null && i < n ? b[i] : 0f; }
        kernel(ta, b != null ? tb : null, ty);
        for (int i = 0; i < n; i++) y[i] = ty[i];
    }
}

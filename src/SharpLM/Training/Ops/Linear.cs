using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// Linear layer (nn.Linear layout). Forward: x (N,C), w (OC,C), bias (OC) or empty -> y (N,OC), y = x W^T + b.
/// Backward (accumulating, +=): dx (N,C) += dy W; dw (OC,C) += dy^T x; dbias (OC) += sum_n dy.
/// A tied LM head is this op with w = the token embedding (V,C) and dw = its gradient.
/// </summary>
internal static unsafe class Linear
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y, int n, int c, int oc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(x.Length, n * c, nameof(x)); Check(w.Length, oc * c, nameof(w)); Check(y.Length, n * oc, nameof(y));
        if (!bias.IsEmpty) Check(bias.Length, oc, nameof(bias));
        if (typeof(T) == typeof(float) && TrainParallel.UseGemm)
        {
            LinearF32.Forward(LinearF32.AsF(x), LinearF32.AsF(w), LinearF32.AsF(bias), LinearF32.AsF(y), n, c, oc);
            return;
        }
        bool hasBias = !bias.IsEmpty;
        fixed (T* px = x, pw = w, pb = bias, py = y)
        {
            nint ax = (nint)px, aw = (nint)pw, ab = (nint)pb, ay = (nint)py;
            // one item = one row of x; each writes its own row of y
            TrainParallel.For(n, r =>
            {
                var xr = new ReadOnlySpan<T>((T*)ax + (long)r * c, c);
                var yr = new Span<T>((T*)ay + (long)r * oc, oc);
                T* wp = (T*)aw;
                for (int o = 0; o < oc; o++)
                {
                    T s = TrainMath.Dot(xr, new ReadOnlySpan<T>(wp + (long)o * c, c));
                    yr[o] = hasBias ? s + ((T*)ab)[o] : s;
                }
            }, minItemsPerThread: Math.Max(1, 4096 / Math.Max(1, oc)));
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w,
                                   Span<T> dx, Span<T> dw, Span<T> dbias, int n, int c, int oc)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(dy.Length, n * oc, nameof(dy)); Check(x.Length, n * c, nameof(x)); Check(w.Length, oc * c, nameof(w));
        Check(dw.Length, oc * c, nameof(dw));
        if (!dx.IsEmpty) Check(dx.Length, n * c, nameof(dx));
        if (!dbias.IsEmpty) Check(dbias.Length, oc, nameof(dbias));
        if (typeof(T) == typeof(float) && TrainParallel.UseGemm)
        {
            LinearF32.Backward(LinearF32.AsF(dy), LinearF32.AsF(x), LinearF32.AsF(w), LinearF32.AsF(dx), LinearF32.AsF(dw), LinearF32.AsF(dbias), n, c, oc);
            return;
        }
        bool hasDx = !dx.IsEmpty, hasDb = !dbias.IsEmpty;
        fixed (T* pdy = dy, px = x, pw = w, pdx = dx, pdw = dw, pdb = dbias)
        {
            nint ady = (nint)pdy, ax = (nint)px, aw = (nint)pw, adx = (nint)pdx, adw = (nint)pdw, adb = (nint)pdb;
            if (hasDx)
            {
                // dx[r,:] += sum_o dy[r,o] * w[o,:]  (items: rows of dx)
                TrainParallel.For(n, r =>
                {
                    var dxr = new Span<T>((T*)adx + (long)r * c, c);
                    T* dyr = (T*)ady + (long)r * oc;
                    for (int o = 0; o < oc; o++)
                    {
                        T g = dyr[o];
                        if (g != T.Zero) TrainMath.Axpy(g, new ReadOnlySpan<T>((T*)aw + (long)o * c, c), dxr);
                    }
                }, minItemsPerThread: Math.Max(1, 4096 / Math.Max(1, oc)));
            }
            // dw[o,:] += sum_r dy[r,o] * x[r,:]; dbias[o] += sum_r dy[r,o]  (items: rows of dw)
            TrainParallel.For(oc, o =>
            {
                var dwr = new Span<T>((T*)adw + (long)o * c, c);
                T sb = T.Zero;
                for (int r = 0; r < n; r++)
                {
                    T g = ((T*)ady)[(long)r * oc + o];
                    sb += g;
                    if (g != T.Zero) TrainMath.Axpy(g, new ReadOnlySpan<T>((T*)ax + (long)r * c, c), dwr);
                }
                if (hasDb) ((T*)adb)[o] += sb;
            }, minItemsPerThread: Math.Max(1, 4096 / Math.Max(1, n)));
        }
    }

    internal static void Check(int have, int need, string name)
    {
        if (have < need) throw new ArgumentException($"{name} holds {have} elements, need {need}", name);
    }
}

using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// Scaled dot-product multi-head attention with grouped K/V heads (GQA: query head h reads K/V head h / (NH/KVH)).
/// Forward: q (B,T,NH,HS), k (B,T,KVH,HS), v (B,T,KVH,HS) -> att (B,NH,T,T) softmax probabilities (saved for the
/// backward pass; masked entries are 0), out (B,T,NH,HS):
///   att[b,h,t,s] = softmax_s(q[b,t,h]·k[b,s,g] / sqrt(HS)) over s &lt;= t when causal (all s otherwise),
///   out[b,t,h] = sum_s att[b,h,t,s] v[b,s,g].
/// Backward (+=): datt = dout·v; dpre = att * (datt - sum_s att*datt); dq += dpre k / sqrt(HS);
/// dk += dpre^T q / sqrt(HS); dv += att^T dout. Work items are (b, K/V head): each owns its dk/dv rows.
/// </summary>
internal static unsafe class Attention
{
    public static void Forward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, Span<T> att, Span<T> output,
                                  int b, int t, int nh, int kvh, int hs, bool causal)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate(q.Length, k.Length, v.Length, att.Length, output.Length, b, t, nh, kvh, hs);
        T scale = T.One / T.Sqrt(T.CreateTruncating(hs));
        int group = nh / kvh;
        fixed (T* pq = q, pk = k, pv = v, pa = att, po = output)
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, aa = (nint)pa, ao = (nint)po;
            TrainParallel.For(b * kvh, item =>
            {
                int bi = item / kvh, g = item % kvh;
                for (int hh = 0; hh < group; hh++)
                {
                    int h = g * group + hh;
                    for (int ti = 0; ti < t; ti++)
                    {
                        var qr = new ReadOnlySpan<T>((T*)aq + ((long)(bi * t + ti) * nh + h) * hs, hs);
                        var ar = new Span<T>((T*)aa + (((long)bi * nh + h) * t + ti) * t, t);
                        int end = causal ? ti + 1 : t;
                        T max = T.NegativeInfinity;
                        for (int s = 0; s < end; s++)
                        {
                            T sc = TrainMath.Dot(qr, new ReadOnlySpan<T>((T*)ak + ((long)(bi * t + s) * kvh + g) * hs, hs)) * scale;
                            ar[s] = sc;
                            if (sc > max) max = sc;
                        }
                        T sum = T.Zero;
                        for (int s = 0; s < end; s++) { T e = T.Exp(ar[s] - max); ar[s] = e; sum += e; }
                        T inv = T.One / sum;
                        for (int s = 0; s < end; s++) ar[s] *= inv;
                        ar[end..].Clear();
                        var orow = new Span<T>((T*)ao + ((long)(bi * t + ti) * nh + h) * hs, hs);
                        orow.Clear();
                        for (int s = 0; s < end; s++)
                            TrainMath.Axpy(ar[s], new ReadOnlySpan<T>((T*)av + ((long)(bi * t + s) * kvh + g) * hs, hs), orow);
                    }
                }
            });
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dout, ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> att,
                                   Span<T> dq, Span<T> dk, Span<T> dv, int b, int t, int nh, int kvh, int hs, bool causal)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate(q.Length, k.Length, v.Length, att.Length, dout.Length, b, t, nh, kvh, hs);
        Validate(dq.Length, dk.Length, dv.Length, att.Length, dout.Length, b, t, nh, kvh, hs);
        T scale = T.One / T.Sqrt(T.CreateTruncating(hs));
        int group = nh / kvh;
        fixed (T* pdo = dout, pq = q, pk = k, pv = v, pa = att, pdq = dq, pdk = dk, pdv = dv)
        {
            nint ado = (nint)pdo, aq = (nint)pq, ak = (nint)pk, av = (nint)pv, aa = (nint)pa, adq = (nint)pdq, adk = (nint)pdk, adv = (nint)pdv;
            TrainParallel.For(b * kvh, item =>
            {
                int bi = item / kvh, g = item % kvh;
                Span<T> datt = t <= 2048 ? stackalloc T[t] : new T[t];
                for (int hh = 0; hh < group; hh++)
                {
                    int h = g * group + hh;
                    for (int ti = 0; ti < t; ti++)
                    {
                        int end = causal ? ti + 1 : t;
                        var ar = new ReadOnlySpan<T>((T*)aa + (((long)bi * nh + h) * t + ti) * t, t);
                        var dor = new ReadOnlySpan<T>((T*)ado + ((long)(bi * t + ti) * nh + h) * hs, hs);
                        T dotSum = T.Zero;
                        for (int s = 0; s < end; s++)
                        {
                            long kvOff = ((long)(bi * t + s) * kvh + g) * hs;
                            T d = TrainMath.Dot(dor, new ReadOnlySpan<T>((T*)av + kvOff, hs));
                            datt[s] = d;
                            dotSum += d * ar[s];
                            TrainMath.Axpy(ar[s], dor, new Span<T>((T*)adv + kvOff, hs));
                        }
                        var qr = new ReadOnlySpan<T>((T*)aq + ((long)(bi * t + ti) * nh + h) * hs, hs);
                        var dqr = new Span<T>((T*)adq + ((long)(bi * t + ti) * nh + h) * hs, hs);
                        for (int s = 0; s < end; s++)
                        {
                            T dpre = ar[s] * (datt[s] - dotSum) * scale;
                            if (dpre == T.Zero) continue;
                            long kvOff = ((long)(bi * t + s) * kvh + g) * hs;
                            TrainMath.Axpy(dpre, new ReadOnlySpan<T>((T*)ak + kvOff, hs), dqr);
                            TrainMath.Axpy(dpre, qr, new Span<T>((T*)adk + kvOff, hs));
                        }
                    }
                }
            });
        }
    }

    private static void Validate(int ql, int kl, int vl, int al, int ol, int b, int t, int nh, int kvh, int hs)
    {
        if (kvh <= 0 || nh % kvh != 0) throw new ArgumentException($"heads ({nh}) must be a multiple of kv heads ({kvh})");
        Linear.Check(ql, b * t * nh * hs, "q");
        Linear.Check(kl, b * t * kvh * hs, "k");
        Linear.Check(vl, b * t * kvh * hs, "v");
        Linear.Check(al, b * nh * t * t, "att");
        Linear.Check(ol, b * t * nh * hs, "out");
    }
}

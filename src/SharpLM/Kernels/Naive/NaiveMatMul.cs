using SharpLM.Tensors;

namespace SharpLM.Kernels.Naive;

/// <summary>The readable matmul: y[t,o] = sum_c x[t,c] * W[o,c]. The oracle every fast variant is tested against.</summary>
internal static class NaiveMatMul
{
    /// <summary>x (T,C) f32, w (OC,C) any dtype -> y (T,OC).</summary>
    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t)
    {
        int c = w.Cols, oc = w.Rows;
        var row = new float[c];
        for (int o = 0; o < oc; o++)
        {
            Tensors.Types.DTypes.Of(w.Type).DequantizeRowNaive(w.Row(o), row);
            for (int i = 0; i < t; i++)
            {
                double acc = 0;
                var xi = x.Slice(i * c, c);
                for (int k = 0; k < c; k++) acc += (double)xi[k] * row[k];
                y[i * oc + o] = (float)acc;
            }
        }
    }
}

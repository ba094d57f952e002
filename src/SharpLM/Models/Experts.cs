using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Models;

/// <summary>
/// A mixture-of-experts MLP (Mixtral, Qwen2-MoE, Qwen3-MoE), as llama.cpp's build_moe_ffn: per row, router logits
/// (X) = h Wr, p = softmax(logits), the top-k experts by p with weights p (renormalised to sum 1 when
/// <see cref="Normalize"/>), y = sum_k w_k down_k(silu(gate_k h) * up_k h); plus, for Qwen2-MoE, a shared expert whose
/// output is scaled by sigmoid(h . w_shared) and added. Each expert runs once per pass on the rows routed to it.
/// </summary>
internal sealed class ExpertWeights
{
    public required LinearWeights Router { get; init; }        // (X, C)
    public required WeightMatrix[] Gate { get; init; }          // X of (FE, C)
    public required WeightMatrix[] Up { get; init; }            // X of (FE, C)
    public required WeightMatrix[] Down { get; init; }          // X of (C, FE)
    public LinearWeights? SharedRouter { get; init; }           // (1, C)
    public LinearWeights? SharedGate { get; init; }             // (FS, C)
    public LinearWeights? SharedUp { get; init; }               // (FS, C)
    public LinearWeights? SharedDown { get; init; }             // (C, FS)
    public required int TopK { get; init; }
    public required bool Normalize { get; init; }

    public static ExpertWeights Bind(BoundTensors t, int layer, ModelConfig c)
    {
        LinearWeights? Opt(string role) => t.Has(role, layer) ? LinearWeights.Bind(t, role, layer) : null;
        return new ExpertWeights
        {
            Router = LinearWeights.Bind(t, "ffn_gate_inp", layer),
            Gate = t.Experts("ffn_gate_exps", layer),
            Up = t.Experts("ffn_up_exps", layer),
            Down = t.Experts("ffn_down_exps", layer),
            SharedRouter = Opt("ffn_gate_inp_shexp"),
            SharedGate = Opt("ffn_gate_shexp"),
            SharedUp = Opt("ffn_up_shexp"),
            SharedDown = Opt("ffn_down_shexp"),
            TopK = c.ExpertsPerToken,
            Normalize = c.ExpertWeightsNorm,
        };
    }

    public long MatrixBytes => new[] { Gate, Up, Down }.SelectMany(m => m).Sum(m => m.RowBytes * m.Rows)
                               + new[] { SharedGate, SharedUp, SharedDown }.Sum(l => l is { } w ? w.W.RowBytes * w.W.Rows : 0);

    /// <summary>h (N,C) -> y (N,C) (y += nothing: it is overwritten). Scratch: router (N*X), rows (N), weights (N),
    /// x and out (N*C), g, u, act (N*max(FE, FS)).</summary>
    public void Forward(ReadOnlySpan<float> h, Span<float> y, int n, int c, DecoderLayerBuffers s)
    {
        int x = Gate.Length, k = TopK;
        var logits = s.Router.AsSpan(0, n * x);
        Router.Forward(h, logits, n);
        // per row: softmax, then the k largest (ties to the lower expert), their weights; chosen[r*k + j], weight[r*k + j]
        var chosen = s.Chosen.AsSpan(0, n * k);
        var weight = s.ChosenWeight.AsSpan(0, n * k);
        for (int r = 0; r < n; r++)
        {
            var p = logits.Slice(r * x, x);
            Softmax.Forward(p);
            float sum = 0;
            for (int j = 0; j < k; j++)
            {
                int best = -1;
                for (int e = 0; e < x; e++)
                    if ((best < 0 || p[e] > p[best]) && !chosen.Slice(r * k, j).Contains(e)) best = e;
                chosen[r * k + j] = best;
                weight[r * k + j] = p[best];
                sum += p[best];
            }
            if (Normalize)
                for (int j = 0; j < k; j++) weight[r * k + j] /= sum;
        }
        y[..(n * c)].Clear();
        var rows = s.ExpertRows;
        var rowWeight = s.ExpertRowWeight;
        for (int e = 0; e < x; e++)
        {
            int m = 0;
            for (int i = 0; i < n * k; i++)
                if (chosen[i] == e)
                {
                    rows[m] = i / k;
                    rowWeight[m++] = weight[i];
                }
            if (m == 0) continue;
            var xs = s.ExpertX.AsSpan(0, m * c);
            for (int i = 0; i < m; i++) h.Slice(rows[i] * c, c).CopyTo(xs.Slice(i * c, c));
            int fe = Gate[e].Rows;
            MatMul.Forward(xs, Gate[e], s.G, m);
            MatMul.Forward(xs, Up[e], s.U, m);
            var act = s.Act.AsSpan(0, m * fe);
            SwiGlu.Forward(s.G.AsSpan(0, m * fe), s.U.AsSpan(0, m * fe), act);
            var outs = s.ExpertOut.AsSpan(0, m * c);
            MatMul.Forward(act, Down[e], outs, m);
            for (int i = 0; i < m; i++) Add.Scaled(outs.Slice(i * c, c), rowWeight[i], y.Slice(rows[i] * c, c));
        }
        if (SharedRouter is LinearWeights sr && SharedGate is LinearWeights sg && SharedUp is LinearWeights su && SharedDown is LinearWeights sd)
        {
            int fs = sg.W.Rows;
            var gateLogit = s.Router.AsSpan(0, n);
            sr.Forward(h, gateLogit, n);
            sg.Forward(h, s.G, n);
            su.Forward(h, s.U, n);
            var act = s.Act.AsSpan(0, n * fs);
            SwiGlu.Forward(s.G.AsSpan(0, n * fs), s.U.AsSpan(0, n * fs), act);
            var outs = s.ExpertOut.AsSpan(0, n * c);
            sd.Forward(act, outs, n);
            for (int r = 0; r < n; r++) Add.Scaled(outs.Slice(r * c, c), 1f / (1f + MathF.Exp(-gateLogit[r])), y.Slice(r * c, c));
        }
    }
}

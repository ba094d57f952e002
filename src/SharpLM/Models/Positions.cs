namespace SharpLM.Models;

/// <summary>How a decoder tells its rows where they are (the study note's 1 g and 1 z; the lab's positions experiment).</summary>
public enum PositionKind
{
    /// <summary>The family's own: rotary for the LLaMA family, a learned table for GPT-2.</summary>
    Default,
    /// <summary>RoPE: q and k rotated by angles proportional to the position (LLaMA).</summary>
    Rotary,
    /// <summary>A trainable (P, C) table added to the token embedding (BERT, GPT-2): tensor role "position_embd".</summary>
    Learned,
    /// <summary>The original transformer's fixed table added to the token embedding (<see cref="Sinusoid.Table"/>); no parameters.</summary>
    Sinusoidal,
    /// <summary>No position information at all: attention sees the keys as a set (the causal mask aside).</summary>
    None,
}

/// <summary>The original transformer's fixed position table ("Attention Is All You Need", section 3.5).</summary>
internal static class Sinusoid
{
    /// <summary>
    /// (P, C), pinned: PE[p, 2i] = sin(p / 10000^(2i/C)), PE[p, 2i+1] = cos(p / 10000^(2i/C)), for p &lt; P and 2i (+1) &lt; C.
    /// Added to the token embedding of the row at position p, as a learned table is.
    /// </summary>
    public static float[] Table(int positions, int width)
    {
        var t = GC.AllocateArray<float>(checked(Math.Max(1, positions * width)), pinned: true);
        for (int p = 0; p < positions; p++)
            for (int j = 0; j < width; j++)
            {
                double angle = p / Math.Pow(10000.0, 2.0 * (j / 2) / width);
                t[p * width + j] = (float)(j % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        return t;
    }
}

namespace SharpLM.Kernels;

/// <summary>
/// Per-thread pinned scratch buffers for the kernels, grown on demand and then reused, so kernels do not allocate
/// per call. Slot numbers keep buffers that are alive at the same time apart.
/// </summary>
internal static unsafe class Scratch
{
    public const int PackedX = 0;  // caller thread: packed activations for the GEMM
    public const int Panel = 1;    // worker: dequantized weight panel
    public const int Accum = 2;    // worker: transposed output accumulator
    public const int Row = 3;      // worker: one dequantized row
    public const int Scores = 4;   // worker: attention scores, outputs and running sums of one tile
    public const int Q8 = 5;       // caller thread: activation rows quantized to 8 bits (bytes)
    public const int RoundTrip = 6; // caller thread: activation rows quantized and dequantized for the GEMM
    public const int Tiles = 7;    // caller thread: the attention's tiles of rows (ints)
    private const int Slots = 8;

    [ThreadStatic] private static float[]?[]? t_buffers;

    /// <summary>A pinned float buffer of at least <paramref name="floats"/> elements for this thread and slot (64-byte aligned).</summary>
    public static float* Get(int slot, long floats)
    {
        var bufs = t_buffers ??= new float[]?[Slots];
        var b = bufs[slot];
        if (b is null || b.Length < floats + 16)
        {
            long size = Math.Max(floats + 16, b is null ? 1024 : b.Length * 2L);
            b = bufs[slot] = GC.AllocateUninitializedArray<float>(checked((int)size), pinned: true);
        }
        fixed (float* p = b)
        {
            nint a = (nint)p;
            return (float*)((a + 63) & ~(nint)63);
        }
    }
}

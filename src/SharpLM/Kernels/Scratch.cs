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
    public const int PlainRow = 8; // any thread: a grouped weight row copied out in the plain layout (bytes)
    private const int Slots = 9;

    [ThreadStatic] private static AlignedBytes?[]? t_buffers;

    /// <summary>This thread's buffer <paramref name="slot"/>, at least <paramref name="floats"/> long, 64-byte aligned
    /// (<see cref="AlignedBytes"/>); grown by doubling, never shrunk.</summary>
    public static float* Get(int slot, long floats)
    {
        var bufs = t_buffers ??= new AlignedBytes?[Slots];
        var b = bufs[slot];
        if (b is null || b.Length < 4 * floats)
            b = bufs[slot] = new AlignedBytes(4 * Math.Max(floats, b is null ? 1024 : b.Length / 4 * 2));
        return (float*)b.Pointer;
    }
}

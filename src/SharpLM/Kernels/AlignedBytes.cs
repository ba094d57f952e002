namespace SharpLM.Kernels;

/// <summary>
/// A pinned byte buffer whose usable bytes start on a 64-byte boundary, so that rows laid out at multiples of 64 bytes
/// never make a vector load split a cache line (a pinned array's data is only 8-byte aligned; an f32 matvec read its
/// activations 1.3-1.6x slower that way). The array is over-allocated by 63 bytes; it never moves, so the pointer holds.
/// </summary>
internal sealed unsafe class AlignedBytes
{
    private readonly byte[] _array;

    public AlignedBytes(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _array = GC.AllocateUninitializedArray<byte>(checked((int)(length + 63)), pinned: true);
        Length = length;
        fixed (byte* p = _array) Pointer = (nint)(((long)p + 63) & ~63L);
    }

    /// <summary>Usable bytes.</summary>
    public long Length { get; }

    /// <summary>The first usable byte (64-byte aligned).</summary>
    public nint Pointer { get; }

    public Span<byte> Span => new((void*)Pointer, checked((int)Length));
}

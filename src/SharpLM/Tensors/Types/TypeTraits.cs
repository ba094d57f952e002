using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Everything SharpLM knows about one weight <see cref="DType"/>, in the manner of ggml's <c>type_traits</c>: the block
/// geometry, the llama_ftype a whole file of this type is tagged with, the reference quantizer, the readable
/// dequantizer (the oracle), and the fast kernels per ISA (dequantize a row, dot a row with an f32 vector). Each type's
/// traits live in its own file (F32.cs, Q8_0.cs, ...) beside its kernels; <see cref="DTypes"/> is the table. A
/// missing kernel is null: a type with no quantizer cannot be written, one with no dequantizer cannot be read.
/// </summary>
internal sealed unsafe class TypeTraits(DType type, string name, int blockSize, int blockBytes, string description, uint? fileType)
{
    public DType Type { get; } = type;

    /// <summary>Lower-case name as llama.cpp and the CLI spell it ("q8_0").</summary>
    public string Name { get; } = name;

    /// <summary>Elements per block (1 for plain types, 32 for the legacy quants, 256 for the k-quants).</summary>
    public int BlockSize { get; } = blockSize;

    /// <summary>Bytes per block.</summary>
    public int BlockBytes { get; } = blockBytes;

    public string Description { get; } = description;

    /// <summary>general.file_type (llama_ftype) of a file whose matrices are mostly this type, or null.</summary>
    public uint? FileType { get; } = fileType;

    /// <summary>Reference quantizer: src (n) f32 -> dst (RowBytes(n)); n a multiple of the block size.</summary>
    public delegate*<ReadOnlySpan<float>, Span<byte>, void> Quantize { get; init; }

    /// <summary>The readable oracle: src (RowBytes(n)) -> dst (n).</summary>
    public delegate*<ReadOnlySpan<byte>, Span<float>, void> DequantizeNaive { get; init; }

    /// <summary>Fast dequantization of n elements for a kernel variant; bit-identical to the oracle.</summary>
    public delegate*<byte*, float*, int, KernelIsa, void> Dequantize { get; init; }

    /// <summary>Fused dot product of a weight row (n elements) with x (n) f32 for a kernel variant; rowBuf holds n floats
    /// of scratch for variants that dequantize first.</summary>
    public delegate*<byte*, float*, int, KernelIsa, float*, float> Dot { get; init; }

    /// <summary>Block size (32 or 256) of the 8-bit activations <see cref="DotQ8"/> takes (<see cref="Q8Row"/>), or 0 for
    /// a type without an integer dot (its matvec keeps f32 activations).</summary>
    public int DotQ8Block { get; init; }

    /// <summary>Integer dot of a weight row (n elements) with an activation row quantized in blocks of
    /// <see cref="DotQ8Block"/>, for a kernel variant; rowBuf holds n floats of scratch for variants that dequantize.</summary>
    public delegate*<byte*, Q8Row, int, KernelIsa, float*, float> DotQ8 { get; init; }

    public bool HasDotQ8 => DotQ8 != null;

    /// <summary>Optional: <see cref="Dot"/> of one weight row with four f32 rows at once, results[r] bit for bit equal to
    /// Dot(w, xs[r]), the row decoded once; returns false when the variant has none (the matvec then calls Dot per row).</summary>
    public delegate*<byte*, float**, int, KernelIsa, float*, bool> Dot4 { get; init; }

    /// <summary>Optional: <see cref="Dot4"/> for eight f32 rows (the dense types on AVX-512, where the weight bytes dominate:
    /// a batch of 8 decoding sequences reads each weight vector once); false when the variant has none (the matvec then
    /// takes four at a time).</summary>
    public delegate*<byte*, float**, int, KernelIsa, float*, bool> Dot8 { get; init; }

    /// <summary>Optional: the integer dots of one weight row with four activation rows at once (the matvec of a batch, 2-15
    /// rows), results[r] = DotQ8(w, xs[r], ...) bit for bit, for a kernel variant; null when the variant has none (the
    /// matvec then calls <see cref="DotQ8"/> per row). The weight row is loaded and unpacked once for the four rows.
    /// Returns false when the variant has no four-row kernel.</summary>
    public delegate*<byte*, Q8Row*, int, KernelIsa, float*, bool> DotQ8x4 { get; init; }

    /// <summary>Optional: a row of n weights in the integer GEMM's form (<see cref="Int8"/>): n bytes u (element order), and
    /// per scale group h of Int8.Sub (32 or 16) weights the scale d[h] and the min m[h]: w = d*(u - Int8.Offset) + m (the prefill's
    /// <see cref="GemmInt8"/>; types without it dequantize to the f32 GEMM).</summary>
    public delegate*<byte*, int, byte*, float*, float*, void> Unpack32 { get; init; }

    /// <summary>What <see cref="Unpack32"/>'s bytes mean.</summary>
    public Int8Form Int8 { get; init; }

    public double BytesPerValue => (double)BlockBytes / BlockSize;

    public bool CanQuantize => Quantize != null;

    public bool CanDequantize => DequantizeNaive != null;

    /// <summary>Bytes of a row of <paramref name="cols"/> elements; cols must be a multiple of the block size.</summary>
    public long RowBytes(long cols)
    {
        if (cols % BlockSize != 0) throw new ArgumentException($"{Type} rows need a multiple of {BlockSize} elements, got {cols}", nameof(cols));
        return cols / BlockSize * BlockBytes;
    }

    /// <summary>Bytes for <paramref name="count"/> values, rounded up to whole blocks' bytes (sizing; no multiple needed).</summary>
    public long BytesFor(long count) => checked((long)(((Int128)count * BlockBytes + BlockSize - 1) / BlockSize));

    /// <summary>"2" or "34/32" bytes per value, for formulas.</summary>
    public string BytesText => BlockSize == 1 ? BlockBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{BlockBytes}/{BlockSize}";

    /// <summary>src (cols) f32 -> dst (RowBytes(cols)) with the reference quantizer.</summary>
    public void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (Quantize == null) throw new NotSupportedException($"quantizing to {Type} is not implemented; supported: {string.Join(", ", DTypes.Quantizable.Select(t => t.Type))}");
        long need = RowBytes(src.Length);
        if (dst.Length < need) throw new ArgumentException($"{Type} row of {src.Length} elements needs {need} bytes, dst holds {dst.Length}", nameof(dst));
        Quantize(src, dst);
    }

    /// <summary>src (RowBytes(dst.Length)) -> dst with the readable oracle.</summary>
    public void DequantizeRowNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (DequantizeNaive == null) throw new NotSupportedException($"dequantization of {Type} is not implemented");
        long need = RowBytes(dst.Length);
        if (src.Length < need) throw new ArgumentException($"{Type} row of {dst.Length} elements needs {need} bytes, got {src.Length}", nameof(src));
        DequantizeNaive(src, dst);
    }

    /// <summary>src (RowBytes(dst.Length)) -> dst with the fast kernel of the current variant.</summary>
    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst) => DequantizeRow(src, dst, KernelIsaSelector.Current);

    public void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst, KernelIsa isa)
    {
        if (DequantizeNaive == null) throw new NotSupportedException($"dequantization of {Type} is not implemented");
        long need = RowBytes(dst.Length);
        if (src.Length < need) throw new ArgumentException($"{Type} row of {dst.Length} elements needs {need} bytes, got {src.Length}", nameof(src));
        fixed (byte* s = src)
        fixed (float* d = dst)
            DequantizeRow(s, d, dst.Length, isa);
    }

    /// <summary>Pointer form: n elements (a multiple of the block size).</summary>
    public void DequantizeRow(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (Dequantize != null) Dequantize(src, dst, n, isa);
        else DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)RowBytes(n))), new Span<float>(dst, n));
    }

    /// <summary>w (n elements of this type) . x (n) f32, the inner loop of the matvec.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float DotRow(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) =>
        Dot != null ? Dot(w, x, n, isa, rowBuf) : DotGeneric(this, w, x, n, isa, rowBuf);

    /// <summary>The path for types (or variants) with no fused dot: dequantize into rowBuf, then an f32 dot.</summary>
    public static float DotGeneric(TypeTraits t, byte* w, float* x, int n, KernelIsa isa, float* rowBuf)
    {
        t.DequantizeRow(w, rowBuf, n, isa);
        return F32Type.Dot((byte*)rowBuf, x, n, isa, null);
    }

    public override string ToString() => Name;
}

/// <summary>The dtype table: the <see cref="TypeTraits"/> of every <see cref="DType"/>, and parsing of type names.</summary>
internal static class DTypes
{
    private static readonly TypeTraits[] s_byId = Build();

    /// <summary>Every type with traits, in GGML id order.</summary>
    public static IReadOnlyList<TypeTraits> All { get; } = [.. s_byId.Where(t => t != null)];

    /// <summary>Types the reference quantizers can write.</summary>
    public static IReadOnlyList<TypeTraits> Quantizable { get; } = [.. All.Where(t => t.CanQuantize)];

    /// <summary>Types calc sizes weights and KV caches in (the common storage types, best first).</summary>
    public static IReadOnlyList<TypeTraits> SizingTypes { get; } =
        [.. new[] { DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q6_K, DType.Q5_K, DType.Q5_0, DType.Q4_K, DType.Q4_1, DType.Q4_0 }.Select(Of)];

    /// <summary>Types the engine can read as weights.</summary>
    public static IReadOnlyList<TypeTraits> Readable { get; } = [.. All.Where(t => t.CanDequantize)];

    private static TypeTraits[] Build()
    {
        TypeTraits[] all =
        [
            F32Type.Traits, F16Type.Traits, Q4_0Type.Traits, Q4_1Type.Traits, Q5_0Type.Traits, Q5_1Type.Traits, Q8_0Type.Traits,
            new(DType.Q8_1, "q8_1", 32, 36, "8-bit blocks of 32 with scale and sum (activations only)", null),
            Q2_KType.Traits, Q3_KType.Traits, Q4_KType.Traits, Q5_KType.Traits, Q6_KType.Traits,
            new(DType.Q8_K, "q8_k", 256, 292, "8-bit k-quant (activations only)", null),
            IQ4_NLType.Traits, IQ4_XSType.Traits,
            // recognized in files (their geometry is known, so inspect lists them and calc sizes them), not computed
            new(DType.IQ2_XXS, "iq2_xxs", 256, 66, "2.06-bit grid quant (not computed by SharpLM)", 19u),
            new(DType.IQ2_XS, "iq2_xs", 256, 74, "2.31-bit grid quant (not computed by SharpLM)", 20u),
            new(DType.IQ3_XXS, "iq3_xxs", 256, 98, "3.06-bit grid quant (not computed by SharpLM)", 23u),
            new(DType.IQ1_S, "iq1_s", 256, 50, "1.56-bit grid quant (not computed by SharpLM)", 24u),
            new(DType.IQ3_S, "iq3_s", 256, 110, "3.44-bit grid quant (not computed by SharpLM)", 26u),
            new(DType.IQ2_S, "iq2_s", 256, 82, "2.5-bit grid quant (not computed by SharpLM)", 28u),
            new(DType.IQ1_M, "iq1_m", 256, 56, "1.75-bit grid quant (not computed by SharpLM)", 31u),
            new(DType.TQ1_0, "tq1_0", 256, 54, "ternary 1.69-bit (not computed by SharpLM)", 36u),
            new(DType.TQ2_0, "tq2_0", 256, 66, "ternary 2.06-bit (not computed by SharpLM)", 37u),
            new(DType.MXFP4, "mxfp4", 32, 17, "4-bit microscaling float (not computed by SharpLM)", 38u),
            new(DType.I8, "i8", 1, 1, "8-bit integer", null),
            new(DType.I16, "i16", 1, 2, "16-bit integer", null),
            new(DType.I32, "i32", 1, 4, "32-bit integer", null),
            new(DType.I64, "i64", 1, 8, "64-bit integer", null),
            new(DType.F64, "f64", 1, 8, "64-bit float", null),
            BF16Type.Traits,
        ];
        var byId = new TypeTraits[all.Max(t => (int)t.Type) + 1];
        foreach (var t in all) byId[(int)t.Type] = t;
        return byId;
    }

    /// <summary>The traits of <paramref name="type"/>; throws for an id with none (an unknown GGML type).</summary>
    public static TypeTraits Of(DType type) =>
        (uint)type < (uint)s_byId.Length && s_byId[(int)type] is { } t ? t : throw new NotSupportedException($"unknown dtype id {(int)type}");

    public static bool IsKnown(DType type) => (uint)type < (uint)s_byId.Length && s_byId[(int)type] != null;

    /// <summary>
    /// A type by name, as the CLI and calc take it: "q8_0", "F16", and the aliases int8/i8 (q8_0), fp16/float16/half,
    /// fp32/float32/float, q4_k_m/q4_k_s (q4_k), q6_k_m (q6_k). <paramref name="option"/> names the flag in errors;
    /// <paramref name="allowed"/> restricts the answer (e.g. to quantizable types).
    /// </summary>
    public static TypeTraits Parse(string name, string option, IReadOnlyList<TypeTraits>? allowed = null)
    {
        allowed ??= All;
        string n = name.Trim().ToLowerInvariant();
        n = n switch
        {
            "int8" or "i8" when allowed.All(t => t.Type != DType.I8) => "q8_0",
            "fp16" or "float16" or "half" => "f16",
            "fp32" or "float32" or "float" => "f32",
            "q4_k_m" or "q4_k_s" => "q4_k",
            "q5_k_m" or "q5_k_s" => "q5_k",
            "q6_k_m" => "q6_k",
            _ => n,
        };
        return allowed.FirstOrDefault(t => t.Name == n)
               ?? throw new ArgumentException($"{option}: unknown type '{name}'. Known: {string.Join(", ", allowed.Select(t => t.Name))}.");
    }
}

/// <summary>Small helpers every block format uses: f16 scales, rounding, software prefetch.</summary>
internal static unsafe class BlockMath
{
    /// <summary>How far ahead of the current weight byte the fused dots prefetch. A constant, not a static readonly: the
    /// kernels compiled fully optimized from their first call (AggressiveOptimization) are compiled before this class is
    /// initialized, and a static read there costs a class-initialization check in the loop and spills its accumulators
    /// to the stack (the F16 dot at AVX-512 ran at half speed that way).</summary>
    public const int PrefetchBytes = 2048;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(void* p) => Sse.Prefetch0((byte*)p + PrefetchBytes);

    /// <summary>The f16 at <paramref name="p"/> as float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(byte* p) => F16Type.ToSingle(*(ushort*)p);

    /// <summary>The f16 scales of 16 consecutive blocks (at p, p + stride, ...) as 16 floats: 16 scalar loads inserted
    /// into a vector, then one vector conversion (faster here than two 8-lane gathers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Halves16(byte* p, int stride)
    {
        var lo = Vector128.Create(*(ushort*)p, *(ushort*)(p + stride), *(ushort*)(p + 2 * stride), *(ushort*)(p + 3 * stride),
                                  *(ushort*)(p + 4 * stride), *(ushort*)(p + 5 * stride), *(ushort*)(p + 6 * stride), *(ushort*)(p + 7 * stride));
        p += 8 * stride;
        var hi = Vector128.Create(*(ushort*)p, *(ushort*)(p + stride), *(ushort*)(p + 2 * stride), *(ushort*)(p + 3 * stride),
                                  *(ushort*)(p + 4 * stride), *(ushort*)(p + 5 * stride), *(ushort*)(p + 6 * stride), *(ushort*)(p + 7 * stride));
        return F16Type.ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Create(lo, hi)));
    }

    /// <summary>The fewest 32-blocks past a row's last 16-block step that the legacy types' AVX-512 dots (Q4_0, Q8_0) run as
    /// a short step (their <c>LastBlocks</c>); fewer go block by block (a 576-wide row's last 2 of 18: the short step's
    /// fixed cost measured more than theirs).</summary>
    public const int ShortStep = 4;

    /// <summary>results[r] += the lane sum of t[r], r &lt; 4 (a four-row dot's short last step; the same sums as the
    /// one-row dot's <see cref="Horizontal.Sum(Vector512{float})"/> of its own).</summary>
    [SkipLocalsInit]
    public static void AddSums4(Vector512<float>* t, float* results)
    {
        float* s = stackalloc float[4];
        Horizontal.Sum4(t[0], t[1], t[2], t[3], s);
        for (int r = 0; r < 4; r++) results[r] += s[r];
    }

    /// <summary>The f16 scales of the last <paramref name="m"/> (1-15) blocks of a row, at p, as 16 floats, lanes m.. zero,
    /// reading nothing past them (they may end the mapped weights): a row with 16 blocks before them
    /// (<paramref name="after16"/>) reads the 16 blocks that end with them and moves them down, a shorter row reads them
    /// one by one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LastHalves(byte* p, int stride, int m, bool after16)
    {
        if (after16)
            return Vector512.ConditionalSelect(FirstLanes(m), Avx512F.PermuteVar16x32(Halves16(p - (16 - m) * stride, stride), Vector512<int>.Indices + Vector512.Create(16 - m)), default);
        var h = Vector256<ushort>.Zero; // element by element, without a call (a call spills the caller's vector registers)
        for (int i = 0; i < m; i++) h = h.WithElement(i, *(ushort*)(p + i * stride));
        return F16Type.ToSingle(Avx512F.ConvertToVector512UInt32(h));
    }

    /// <summary>The first <paramref name="m"/> (&lt;= 16) floats at p in a vector, the other lanes zero (never a NaN from
    /// whatever follows them). Reads 16 floats: for the activation rows' scales, whose arrays
    /// (<see cref="Q8Activations.RowStride"/>) are padded to 64 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(float* p, int m) => Vector512.ConditionalSelect(FirstLanes(m), Vector512.Load(p), default);

    /// <summary>All ones in lanes 0..m-1, zero in the others (a select mask).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> FirstLanes(int m) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(m)).AsSingle();

    /// <summary>The f16 scales of 8 consecutive blocks (at p, p + stride, ...) as 8 floats (AVX2: <see cref="Halves16"/>'s
    /// half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Halves8(byte* p, int stride)
    {
        var h = Vector128.Create(*(ushort*)p, *(ushort*)(p + stride), *(ushort*)(p + 2 * stride), *(ushort*)(p + 3 * stride),
                                 *(ushort*)(p + 4 * stride), *(ushort*)(p + 5 * stride), *(ushort*)(p + 6 * stride), *(ushort*)(p + 7 * stride));
        return F16Type.ToSingle(Avx2.ConvertToVector256Int32(h).AsUInt32());
    }

    /// <summary>The f16 at <paramref name="offset"/> of a block as float (the oracles' reader).</summary>
    public static float H(ReadOnlySpan<byte> b, int offset) => (float)BinaryPrimitives.ReadHalfLittleEndian(b[offset..]);

    public static void WriteHalf(Span<byte> dst, float v) => BinaryPrimitives.WriteUInt16LittleEndian(dst, F16Type.FromSingle(v));

    public static float ReadHalf(ReadOnlySpan<byte> src) => F16Type.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src));

    /// <summary>ggml's nearest_int: round half to even (the 1.5*2^23 trick), valid for |x| &lt;= 2^22.</summary>
    public static int NearestInt(float x) => (int)MathF.Round(x, MidpointRounding.ToEven);
}

/// <summary>The integer GEMM's reading of a type's unpacked bytes u: unsigned at most <paramref name="Max"/> (15 or 31,
/// 63 with scales per 16), or <paramref name="Signed"/> int8 (Max 127); w = d*(u - <paramref name="Offset"/>) + m, m zero
/// unless <paramref name="HasMin"/>, with a d and an m per <paramref name="Sub"/> (32 or 16) weights.</summary>
internal readonly record struct Int8Form(bool Signed, int Max, int Offset, bool HasMin, int Sub = 32);

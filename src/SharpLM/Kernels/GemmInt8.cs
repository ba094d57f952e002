using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Kernels;

/// <summary>
/// The integer GEMM of the quantized types (prefill, T rows at once): y (T,OC) = x (T,C) W^T with x quantized to 8 bits
/// per block as the integer matvec quantizes it (<see cref="Q8Activations"/>) and W in its type's 32-weight form
/// (<see cref="Int8Form"/>: bytes u with w = d*(u - offset) + m per scale group of 32, or 16 for Q6_K). Every product of a
/// scale group is an exact integer sum; only the group's scaling is floating point, as in the type's integer dot.
/// <para>Layout: the activations are packed once per call into groups of 8 tokens, each 32-block as 8 steps of
/// [token 8][4 bytes] (one 256-bit vector per step), with each token's block scale dx, its integer sum of q and dx*sum;
/// each task unpacks its W rows (a few at a time, every 32-block: u, d, m) and passes them over every group. The
/// micro-kernel broadcasts 4 bytes of a W row and multiplies them into a group's step with <c>vpmaddubsw</c> (u8 x s8
/// -> pairs summed in 16 bits): 32 products per instruction, four times the f32 FMA's 8. Types whose u is at most 15
/// (31, 63) sum 8 (4, 2) steps in 16 bits before widening (no overflow: 2*2*63*127 &lt; 32768); signed weights (Q8_0)
/// take llama.cpp's sign trick (|w| times x with w's sign) and widen every step.</para>
/// <para>Result per output: for each scale group in order, acc = fma(f32(isum - offset*sum q), d*dx, acc), then
/// acc = fma(m, dx*sum q, acc) for types with a min. A token's result does not depend on the other tokens of the call
/// (batch invariance); it differs from the matvec's integer dot only in the f32 rounding of the block sums.</para>
/// </summary>
internal static unsafe class GemmInt8
{
    /// <summary>Whether <paramref name="traits"/> has an integer GEMM on <paramref name="isa"/> (AVX2's vpmaddubsw; on
    /// AVX-512 the same kernel in 512-bit vectors, two token groups at once, with the same bits).</summary>
    public static bool Supports(TypeTraits traits, KernelIsa isa) =>
        traits.Unpack32 != null && traits.HasDotQ8 && Kernel(traits.Int8) != Steps.None && isa != KernelIsa.Scalar && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>The micro-kernel's step schemes (<see cref="IInt8Steps"/>), one per kind of form.</summary>
    private enum Steps { None, S8, U4, U5, U6Sub16 }

    /// <summary>The step scheme that serves a form, or None.</summary>
    private static Steps Kernel(Int8Form f) => (f.Signed, f.Sub) switch
    {
        (true, 32) => Steps.S8,
        (false, 32) when f.Max <= 15 => Steps.U4,
        (false, 32) when f.Max <= 31 => Steps.U5,
        (false, 16) when f.Max <= 63 => Steps.U6Sub16,
        _ => Steps.None,
    };

    /// <summary>Weight rows per micro-kernel call and tokens per packed group.</summary>
    private const int Rows = 3, Group = 8;

    /// <summary>x (T,C) f32, W (OC,C) -> y (T,OC). Requires <see cref="Supports"/>.</summary>
    public static void Forward(float* x, in WeightMatrix w, float* y, int t, KernelIsa isa, WorkerPool pool)
    {
        var packed = Pack(x, w.Type, w.Cols, t, isa, pool);
        Run(packed, w, y, pool);
    }

    /// <summary>x packed for the weights of one type (and of every type that <see cref="SamePack"/> says packs alike):
    /// valid until the next pack on this thread.</summary>
    public readonly struct Packed
    {
        internal readonly byte* Xp;
        internal readonly int T, C, Groups;
        internal readonly long GroupStride;
        internal readonly DType Type;
        internal readonly KernelIsa Isa;

        internal Packed(byte* xp, int t, int c, int groups, long groupStride, DType type, KernelIsa isa)
        {
            Xp = xp; T = t; C = c; Groups = groups; GroupStride = groupStride; Type = type; Isa = isa;
        }
    }

    /// <summary>Whether two types read the same packed activations (activation blocks, scale groups and offset).</summary>
    public static bool SamePack(DType a, DType b)
    {
        TypeTraits ta = DTypes.Of(a), tb = DTypes.Of(b);
        return ta.DotQ8Block == tb.DotQ8Block && ta.Int8.Sub == tb.Int8.Sub && ta.Int8.Offset == tb.Int8.Offset;
    }

    /// <summary>x (T,C) quantized and packed for weights of <paramref name="type"/> (into this thread's scratch).</summary>
    public static Packed Pack(float* x, DType type, int c, int t, KernelIsa isa, WorkerPool pool)
    {
        var traits = DTypes.Of(type);
        var form = traits.Int8;
        int block = traits.DotQ8Block, nb = c / 32, ns = c / form.Sub;
        int groups = (t + Group - 1) / Group;
        // per group: q (nb * 256 bytes), dx (nb * 8 floats), then per scale group (ns of them) offset * sum q (int) and
        // dx * sum q, 8 each
        long groupStride = (long)nb * 256 + 4L * nb * Group + 8L * ns * Group;
        byte* xp = (byte*)Scratch.Get(Scratch.PackedX, groupStride * groups / 4 + 16);
        var pack = new PackJob { X = x, Xp = xp, T = t, C = c, Block = block, Nb = nb, Sub = form.Sub, GroupStride = groupStride, Offset = form.Offset, Isa = isa };
        pool.Run(groups, pack);
        return new Packed(xp, t, c, groups, groupStride, type, isa);
    }

    /// <summary>y (T,OC) = the packed x times W^T, for W of a type that packs as <paramref name="x"/>'s.</summary>
    public static void Run(in Packed x, in WeightMatrix w, float* y, WorkerPool pool)
    {
        if (w.Cols != x.C || !SamePack(w.Type, x.Type)) throw new ArgumentException($"activations packed for {x.Type} x {x.C} cannot multiply {w.Type} x {w.Cols}");
        var traits = DTypes.Of(w.Type);
        var form = traits.Int8;
        int t = x.T, c = x.C, nb = c / 32, ns = c / form.Sub, groups = x.Groups;
        long groupStride = x.GroupStride;
        byte* xp = x.Xp;
        long rowBytes = w.RowBytes;
        int tasks = WorkSplit.Tasks(w.Rows, rowBytes * 4 + (long)t * c / 8, pool.Threads, Rows);
        var job = new GemmJob
        {
            W = w.Data, RowBytes = rowBytes, Unpack = traits.Unpack32, Rows = w.Rows, Cols = c, Nb = nb, Subs = ns, T = t,
            Type = w.Type, GroupedRows = w.GroupedRows,
            Groups = groups, GroupStride = groupStride, Xp = xp, Y = y, Tasks = tasks, Offset = form.Offset, HasMin = form.HasMin,
            Wide = x.Isa == KernelIsa.Avx512 && Avx512BW.IsSupported,
        };
        switch (Kernel(form))
        {
            case Steps.S8: pool.Run(tasks, new Runner<S8> { Job = job }); break;
            case Steps.U4: pool.Run(tasks, new Runner<U4> { Job = job }); break;
            case Steps.U5: pool.Run(tasks, new Runner<U5> { Job = job }); break;
            case Steps.U6Sub16: pool.Run(tasks, new Runner<U6Sub16> { Job = job }); break;
            default: throw new NotSupportedException($"{w.Type} has no integer GEMM");
        }
    }

    /// <summary>Quantizes group g's 8 tokens (rows past T zero) into the packed layout.</summary>
    private struct PackJob : IParallelJob
    {
        public float* X;
        public byte* Xp;
        public int T, C, Block, Nb, Sub, Offset;
        public long GroupStride;
        public KernelIsa Isa;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
        public readonly void Execute(int g)
        {
            int per = Block / 32, subsPer = 32 / Sub;
            var pg = new PackedGroup(Xp, GroupStride, g, Nb, C / Sub);
            byte* q = pg.Q;
            float* dx = pg.Dx;
            int* sq = pg.Sq;
            float* sx = pg.Sx;
            // the group's 8 tokens quantized side by side (tokens past T: zeros)
            long stride = Q8Activations.RowStride(C, Block);
            byte* rows = (byte*)Scratch.Get(Scratch.Row, stride * Group / 4 + 16);
            var r = stackalloc Q8Row[Group];
            for (int j = 0; j < Group; j++)
            {
                r[j] = Q8Activations.At(rows + j * stride, C, Block);
                int tok = g * Group + j;
                if (tok < T) Q8Activations.Quantize(X + (long)tok * C, C, Block, r[j], Isa);
                else new Span<byte>(rows + j * stride, (int)stride).Clear();
            }
            for (int b = 0; b < Nb; b++)
            {
                // step s of block b = dword s of each token's 32 q: an 8x8 transpose of dwords
                int o = b * 32;
                Transpose8x8(Vector256.Load((int*)(r[0].Q + o)), Vector256.Load((int*)(r[1].Q + o)), Vector256.Load((int*)(r[2].Q + o)),
                    Vector256.Load((int*)(r[3].Q + o)), Vector256.Load((int*)(r[4].Q + o)), Vector256.Load((int*)(r[5].Q + o)),
                    Vector256.Load((int*)(r[6].Q + o)), Vector256.Load((int*)(r[7].Q + o)), (int*)(q + b * 256));
                for (int j = 0; j < Group; j++)
                {
                    float d = r[j].D[b / per];
                    dx[b * Group + j] = d;
                    for (int k = 0; k < subsPer; k++)
                    {
                        int h = b * subsPer + k;
                        int sum = Sub == 16 ? r[j].Sums[h] : r[j].Sums[2 * b] + r[j].Sums[2 * b + 1];
                        sq[h * Group + j] = Offset * sum;
                        sx[h * Group + j] = d * sum;
                    }
                }
            }
        }

        /// <summary>dst[s*8 + j] = row j's dword s (rows r0..r7 of 8 dwords).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Transpose8x8(Vector256<int> r0, Vector256<int> r1, Vector256<int> r2, Vector256<int> r3,
                                         Vector256<int> r4, Vector256<int> r5, Vector256<int> r6, Vector256<int> r7, int* dst)
        {
            // pairs of rows interleaved, then pairs of pairs, then the 128-bit halves: rows 0-3 and 4-7 of each step
            var t0 = Avx2.UnpackLow(r0, r1).AsInt64(); var t1 = Avx2.UnpackHigh(r0, r1).AsInt64();
            var t2 = Avx2.UnpackLow(r2, r3).AsInt64(); var t3 = Avx2.UnpackHigh(r2, r3).AsInt64();
            var t4 = Avx2.UnpackLow(r4, r5).AsInt64(); var t5 = Avx2.UnpackHigh(r4, r5).AsInt64();
            var t6 = Avx2.UnpackLow(r6, r7).AsInt64(); var t7 = Avx2.UnpackHigh(r6, r7).AsInt64();
            var u0 = Avx2.UnpackLow(t0, t2).AsInt32(); var u1 = Avx2.UnpackHigh(t0, t2).AsInt32();
            var u2 = Avx2.UnpackLow(t1, t3).AsInt32(); var u3 = Avx2.UnpackHigh(t1, t3).AsInt32();
            var u4 = Avx2.UnpackLow(t4, t6).AsInt32(); var u5 = Avx2.UnpackHigh(t4, t6).AsInt32();
            var u6 = Avx2.UnpackLow(t5, t7).AsInt32(); var u7 = Avx2.UnpackHigh(t5, t7).AsInt32();
            Avx2.Permute2x128(u0, u4, 0x20).Store(dst);
            Avx2.Permute2x128(u1, u5, 0x20).Store(dst + 8);
            Avx2.Permute2x128(u2, u6, 0x20).Store(dst + 16);
            Avx2.Permute2x128(u3, u7, 0x20).Store(dst + 24);
            Avx2.Permute2x128(u0, u4, 0x31).Store(dst + 32);
            Avx2.Permute2x128(u1, u5, 0x31).Store(dst + 40);
            Avx2.Permute2x128(u2, u6, 0x31).Store(dst + 48);
            Avx2.Permute2x128(u3, u7, 0x31).Store(dst + 56);
        }
    }

    /// <summary>Group g of the packed activations: the steps q (Nb x 256 bytes), each token's block scale dx (Nb x 8), then
    /// per scale group offset * sum q (int) and dx * sum q (ns x 8 each); written by <see cref="PackJob"/>, read by the tiles.</summary>
    private readonly struct PackedGroup
    {
        public readonly byte* Q;
        public readonly float* Dx;
        public readonly int* Sq;
        public readonly float* Sx;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public PackedGroup(byte* xp, long groupStride, int g, int nb, int ns)
        {
            Q = xp + g * groupStride;
            Dx = (float*)(Q + (long)nb * 256);
            Sq = (int*)(Dx + (long)nb * Group);
            Sx = (float*)(Sq + (long)ns * Group);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public PackedGroup(in GemmJob j, int g) : this(j.Xp, j.GroupStride, g, j.Nb, j.Subs) { }
    }

    /// <summary>Unpacked weight row i of a task's buffer: u (C bytes), then d and m (a float per scale group each).</summary>
    private readonly struct UnpackedRow
    {
        public readonly byte* U;
        public readonly float* D, M;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public UnpackedRow(in GemmJob j, byte* buf, long rowStride, int i)
        {
            U = buf + i * rowStride;
            D = (float*)(U + j.Cols);
            M = D + j.Subs;
        }
    }

    private struct GemmJob
    {
        public byte* W, Xp;
        public long RowBytes, GroupStride;
        public delegate*<byte*, int, byte*, float*, float*, void> Unpack;
        public int Rows, Cols, Nb, Subs, T, Groups, Tasks, Offset;
        public bool HasMin;
        /// <summary>The weights' type and their rows stored in groups of eight (<see cref="WeightMatrix.GroupedRows"/>).</summary>
        public DType Type;
        public int GroupedRows;
        /// <summary>Two groups at once in 512-bit vectors (<see cref="Tile512{TK, TR}"/>).</summary>
        public bool Wide;
        public float* Y;
    }

    private struct Runner<TK> : IParallelJob where TK : struct, IInt8Steps
    {
        public GemmJob Job;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
        public readonly void Execute(int task)
        {
            ref readonly var j = ref Job;
            var (r0, r1) = WorkSplit.Range(task, j.Tasks, j.Rows, Rows);
            int c = j.Cols, ns = j.Subs;
            // Rows unpacked rows: u (C bytes each), then d and m (a float per scale group each)
            long rowStride = c + 8L * ns;
            byte* buf = (byte*)Scratch.Get(Scratch.Panel, rowStride * Rows / 4 + 16);
            for (int o = r0; o < r1; o += Rows)
            {
                int n = Math.Min(Rows, r1 - o);
                for (int i = 0; i < n; i++)
                {
                    var row = new UnpackedRow(j, buf, rowStride, i);
                    int r = o + i;
                    if (r < j.GroupedRows) RowGroups.Unpack32(j.Type, j.W, j.RowBytes, r, c, row.U, row.D, row.M);
                    else j.Unpack(j.W + r * j.RowBytes, c, row.U, row.D, row.M);
                }
                for (int g = 0; g < j.Groups; g += 2)
                {
                    bool two = g + 1 < j.Groups;
                    if (two && j.Wide)
                    {
                        if (n == 3) Tile512<TK, N3>(j, buf, rowStride, o, g);
                        else if (n == 2) Tile512<TK, N2>(j, buf, rowStride, o, g);
                        else Tile512<TK, N1>(j, buf, rowStride, o, g);
                        continue;
                    }
                    if (n == 3) { if (two) Tile<TK, N3, N2>(j, buf, rowStride, o, g); else Tile<TK, N3, N1>(j, buf, rowStride, o, g); }
                    else if (n == 2) { if (two) Tile<TK, N2, N2>(j, buf, rowStride, o, g); else Tile<TK, N2, N1>(j, buf, rowStride, o, g); }
                    else { if (two) Tile<TK, N1, N2>(j, buf, rowStride, o, g); else Tile<TK, N1, N1>(j, buf, rowStride, o, g); }
                }
            }
        }
    }

    /// <summary>R (1-3) unpacked W rows x G (1-2) groups of 8 tokens over all of K: R*G f32 accumulators of 8 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TK, TR, TG>(in GemmJob j, byte* buf, long rowStride, int o, int g)
        where TK : struct, IInt8Steps where TR : struct, ICount where TG : struct, ICount
    {
        int R = TR.N, G = TG.N, nb = j.Nb;
        UnpackedRow r0 = new(j, buf, rowStride, 0), r1 = new(j, buf, rowStride, 1), r2 = new(j, buf, rowStride, 2);
        PackedGroup xa = new(j, g), xb = new(j, g + 1);
        var ones = Vector256.Create((short)1);
        Vector256<float> f00 = default, f01 = default, f10 = default, f11 = default, f20 = default, f21 = default;
        for (int b = 0; b < nb; b++)
        {
            sbyte* qa = (sbyte*)xa.Q + b * 256, qb = (sbyte*)xb.Q + b * 256;
            int* w0 = (int*)(r0.U + b * 32), w1 = (int*)(r1.U + b * 32), w2 = (int*)(r2.U + b * 32);
            // the block's scale groups (one of 8 steps, or two of 4)
            for (int h = b * (8 / TK.ScaleSteps), s0 = 0; s0 < 8; s0 += TK.ScaleSteps, h++)
            {
            Vector256<int> i00 = default, i01 = default, i10 = default, i11 = default, i20 = default, i21 = default;
            Vector256<short> s00 = default, s01 = default, s10 = default, s11 = default, s20 = default, s21 = default;
            for (int s = s0; s < s0 + TK.ScaleSteps; s++, qa += 32, qb += 32)
            {
                var va = Vector256.Load(qa);
                var vb = G > 1 ? Vector256.Load(qb) : default;
                if (TK.Signed)
                {
                    var w = Vector256.Create(w0[s]).AsSByte();
                    var aw = Avx2.Abs(w);
                    i00 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(va, w)), ones);
                    if (G > 1) i01 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(vb, w)), ones);
                    if (R > 1)
                    {
                        w = Vector256.Create(w1[s]).AsSByte();
                        aw = Avx2.Abs(w);
                        i10 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(va, w)), ones);
                        if (G > 1) i11 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(vb, w)), ones);
                    }
                    if (R > 2)
                    {
                        w = Vector256.Create(w2[s]).AsSByte();
                        aw = Avx2.Abs(w);
                        i20 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(va, w)), ones);
                        if (G > 1) i21 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(vb, w)), ones);
                    }
                }
                else
                {
                    var w = Vector256.Create(w0[s]).AsByte();
                    s00 += Avx2.MultiplyAddAdjacent(w, va);
                    if (G > 1) s01 += Avx2.MultiplyAddAdjacent(w, vb);
                    if (R > 1)
                    {
                        w = Vector256.Create(w1[s]).AsByte();
                        s10 += Avx2.MultiplyAddAdjacent(w, va);
                        if (G > 1) s11 += Avx2.MultiplyAddAdjacent(w, vb);
                    }
                    if (R > 2)
                    {
                        w = Vector256.Create(w2[s]).AsByte();
                        s20 += Avx2.MultiplyAddAdjacent(w, va);
                        if (G > 1) s21 += Avx2.MultiplyAddAdjacent(w, vb);
                    }
                    if (TK.Flush < TK.ScaleSteps && (s + 1 - s0) % TK.Flush == 0)
                    {
                        i00 += Avx2.MultiplyAddAdjacent(s00, ones); s00 = default;
                        if (G > 1) { i01 += Avx2.MultiplyAddAdjacent(s01, ones); s01 = default; }
                        if (R > 1) { i10 += Avx2.MultiplyAddAdjacent(s10, ones); s10 = default; if (G > 1) { i11 += Avx2.MultiplyAddAdjacent(s11, ones); s11 = default; } }
                        if (R > 2) { i20 += Avx2.MultiplyAddAdjacent(s20, ones); s20 = default; if (G > 1) { i21 += Avx2.MultiplyAddAdjacent(s21, ones); s21 = default; } }
                    }
                }
            }
            if (!TK.Signed && TK.Flush == TK.ScaleSteps)
            {
                // the 16-bit sums hold the whole scale group: widened once
                i00 = Avx2.MultiplyAddAdjacent(s00, ones);
                if (G > 1) i01 = Avx2.MultiplyAddAdjacent(s01, ones);
                if (R > 1) { i10 = Avx2.MultiplyAddAdjacent(s10, ones); if (G > 1) i11 = Avx2.MultiplyAddAdjacent(s11, ones); }
                if (R > 2) { i20 = Avx2.MultiplyAddAdjacent(s20, ones); if (G > 1) i21 = Avx2.MultiplyAddAdjacent(s21, ones); }
            }
            // a scale group (32 or 16 weights) done: isum - offset*sum q (packed with x), times d*dx; + m * dx*sum q
            {
                var ea = Vector256.Load(xa.Dx + b * Group);
                var eb = G > 1 ? Vector256.Load(xb.Dx + b * Group) : default;
                if (j.Offset != 0)
                {
                    var qsa = Vector256.Load(xa.Sq + h * Group);
                    i00 -= qsa; if (R > 1) i10 -= qsa; if (R > 2) i20 -= qsa;
                    if (G > 1)
                    {
                        var qsb = Vector256.Load(xb.Sq + h * Group);
                        i01 -= qsb; if (R > 1) i11 -= qsb; if (R > 2) i21 -= qsb;
                    }
                }
                f00 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i00), Vector256.Create(r0.D[h]) * ea, f00);
                if (G > 1) f01 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i01), Vector256.Create(r0.D[h]) * eb, f01);
                if (R > 1)
                {
                    f10 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i10), Vector256.Create(r1.D[h]) * ea, f10);
                    if (G > 1) f11 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i11), Vector256.Create(r1.D[h]) * eb, f11);
                }
                if (R > 2)
                {
                    f20 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i20), Vector256.Create(r2.D[h]) * ea, f20);
                    if (G > 1) f21 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(i21), Vector256.Create(r2.D[h]) * eb, f21);
                }
                if (j.HasMin)
                {
                    var xsa = Vector256.Load(xa.Sx + h * Group);
                    var xsb = G > 1 ? Vector256.Load(xb.Sx + h * Group) : default;
                    f00 = Fma.MultiplyAdd(Vector256.Create(r0.M[h]), xsa, f00);
                    if (G > 1) f01 = Fma.MultiplyAdd(Vector256.Create(r0.M[h]), xsb, f01);
                    if (R > 1) { f10 = Fma.MultiplyAdd(Vector256.Create(r1.M[h]), xsa, f10); if (G > 1) f11 = Fma.MultiplyAdd(Vector256.Create(r1.M[h]), xsb, f11); }
                    if (R > 2) { f20 = Fma.MultiplyAdd(Vector256.Create(r2.M[h]), xsa, f20); if (G > 1) f21 = Fma.MultiplyAdd(Vector256.Create(r2.M[h]), xsb, f21); }
                }
            }
            }
        }
        Store(j, f00, g, o);
        if (G > 1) Store(j, f01, g + 1, o);
        if (R > 1) { Store(j, f10, g, o + 1); if (G > 1) Store(j, f11, g + 1, o + 1); }
        if (R > 2) { Store(j, f20, g, o + 2); if (G > 1) Store(j, f21, g + 1, o + 2); }
    }

    /// <summary><see cref="Tile{TK, TR, TG}"/> for two groups in one 512-bit vector (group g in the low half, g + 1 in
    /// the high half): each lane does exactly the 256-bit kernel's operations, so a token's bits do not depend on which
    /// kernel served it; the multiplies and the scaling take half the instructions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512<TK, TR>(in GemmJob j, byte* buf, long rowStride, int o, int g)
        where TK : struct, IInt8Steps where TR : struct, ICount
    {
        int R = TR.N, nb = j.Nb;
        UnpackedRow r0 = new(j, buf, rowStride, 0), r1 = new(j, buf, rowStride, 1), r2 = new(j, buf, rowStride, 2);
        PackedGroup xa = new(j, g), xb = new(j, g + 1);
        var ones = Vector512.Create((short)1);
        Vector512<float> f0 = default, f1 = default, f2 = default;
        for (int b = 0; b < nb; b++)
        {
            sbyte* qa = (sbyte*)xa.Q + b * 256, qb = (sbyte*)xb.Q + b * 256;
            int* w0 = (int*)(r0.U + b * 32), w1 = (int*)(r1.U + b * 32), w2 = (int*)(r2.U + b * 32);
            for (int h = b * (8 / TK.ScaleSteps), s0 = 0; s0 < 8; s0 += TK.ScaleSteps, h++)
            {
            Vector512<int> i0 = default, i1 = default, i2 = default;
            Vector512<short> s0v = default, s1v = default, s2v = default;
            for (int s = s0; s < s0 + TK.ScaleSteps; s++, qa += 32, qb += 32)
            {
                var v = Vector512.Create(Vector256.Load(qa), Vector256.Load(qb));
                if (TK.Signed)
                {
                    // |w| times x with w's sign (vpsignb has no 512-bit form: x negated where w < 0; w = 0 gives |w| = 0)
                    var w = Vector512.Create(w0[s]).AsSByte();
                    i0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Vector512.Abs(w).AsByte(), Negated(v, w)), ones);
                    if (R > 1)
                    {
                        w = Vector512.Create(w1[s]).AsSByte();
                        i1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Vector512.Abs(w).AsByte(), Negated(v, w)), ones);
                    }
                    if (R > 2)
                    {
                        w = Vector512.Create(w2[s]).AsSByte();
                        i2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Vector512.Abs(w).AsByte(), Negated(v, w)), ones);
                    }
                }
                else
                {
                    s0v += Avx512BW.MultiplyAddAdjacent(Vector512.Create(w0[s]).AsByte(), v);
                    if (R > 1) s1v += Avx512BW.MultiplyAddAdjacent(Vector512.Create(w1[s]).AsByte(), v);
                    if (R > 2) s2v += Avx512BW.MultiplyAddAdjacent(Vector512.Create(w2[s]).AsByte(), v);
                    if (TK.Flush < TK.ScaleSteps && (s + 1 - s0) % TK.Flush == 0)
                    {
                        i0 += Avx512BW.MultiplyAddAdjacent(s0v, ones); s0v = default;
                        if (R > 1) { i1 += Avx512BW.MultiplyAddAdjacent(s1v, ones); s1v = default; }
                        if (R > 2) { i2 += Avx512BW.MultiplyAddAdjacent(s2v, ones); s2v = default; }
                    }
                }
            }
            if (!TK.Signed && TK.Flush == TK.ScaleSteps)
            {
                i0 = Avx512BW.MultiplyAddAdjacent(s0v, ones);
                if (R > 1) i1 = Avx512BW.MultiplyAddAdjacent(s1v, ones);
                if (R > 2) i2 = Avx512BW.MultiplyAddAdjacent(s2v, ones);
            }
            {
                var e = Vector512.Create(Vector256.Load(xa.Dx + b * Group), Vector256.Load(xb.Dx + b * Group));
                if (j.Offset != 0)
                {
                    var qs = Vector512.Create(Vector256.Load(xa.Sq + h * Group), Vector256.Load(xb.Sq + h * Group));
                    i0 -= qs; if (R > 1) i1 -= qs; if (R > 2) i2 -= qs;
                }
                f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i0), Vector512.Create(r0.D[h]) * e, f0);
                if (R > 1) f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i1), Vector512.Create(r1.D[h]) * e, f1);
                if (R > 2) f2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i2), Vector512.Create(r2.D[h]) * e, f2);
                if (j.HasMin)
                {
                    var xs = Vector512.Create(Vector256.Load(xa.Sx + h * Group), Vector256.Load(xb.Sx + h * Group));
                    f0 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0.M[h]), xs, f0);
                    if (R > 1) f1 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1.M[h]), xs, f1);
                    if (R > 2) f2 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2.M[h]), xs, f2);
                }
            }
            }
        }
        Store(j, f0.GetLower(), g, o); Store(j, f0.GetUpper(), g + 1, o);
        if (R > 1) { Store(j, f1.GetLower(), g, o + 1); Store(j, f1.GetUpper(), g + 1, o + 1); }
        if (R > 2) { Store(j, f2.GetLower(), g, o + 2); Store(j, f2.GetUpper(), g + 1, o + 2); }
    }

    /// <summary>x with its bytes negated where w's are negative (the sign trick's activation side; x is never -128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Negated(Vector512<sbyte> x, Vector512<sbyte> w) =>
        Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), Vector512<sbyte>.Zero - x, x);

    /// <summary>The 8 tokens of group g for output row o (tokens past T dropped).</summary>
    private static void Store(in GemmJob j, Vector256<float> v, int g, int o)
    {
        int t0 = g * Group, n = Math.Min(Group, j.T - t0);
        float* y = j.Y + (long)t0 * j.Rows + o;
        for (int i = 0; i < n; i++) y[(long)i * j.Rows] = v.GetElement(i);
    }

    /// <summary>How the micro-kernel sums a scale group's steps (4 bytes of 8 tokens each): 16-bit sums widened every
    /// <see cref="Flush"/> steps for unsigned u (at most 2*Flush*max(u)*127 &lt; 32768), or the sign trick widened every
    /// step for signed weights; the group is scaled every <see cref="ScaleSteps"/> steps (8: scales per 32 weights, 4: per 16).</summary>
    private interface IInt8Steps
    {
        static abstract int Flush { get; }
        static abstract int ScaleSteps { get; }
        static abstract bool Signed { get; }
    }

    private struct U4 : IInt8Steps { public static int Flush => 8; public static int ScaleSteps => 8; public static bool Signed => false; }
    private struct U5 : IInt8Steps { public static int Flush => 4; public static int ScaleSteps => 8; public static bool Signed => false; }
    private struct U6Sub16 : IInt8Steps { public static int Flush => 2; public static int ScaleSteps => 4; public static bool Signed => false; }
    private struct S8 : IInt8Steps { public static int Flush => 1; public static int ScaleSteps => 8; public static bool Signed => true; }
}

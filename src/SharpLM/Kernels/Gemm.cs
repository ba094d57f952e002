using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Tensors;

namespace SharpLM.Kernels;

/// <summary>
/// The compute-bound matmul (prefill, T rows at once): y (T,OC) = x (T,C) W^T for W of any dtype.
/// x is packed once per call, transposed into tiles of NT rows ([k][NT], zero padded). Each task owns a range of W rows;
/// per K block of <see cref="KC"/> it dequantizes (or copies) MR W rows into a thread-local f32 panel
/// and reuses that panel against every x tile with a register-tiled outer-product micro-kernel: MR broadcasts of W times
/// NT x lanes (AVX-512: 8 x 32 = 16 zmm accumulators; AVX2: 6 x 16 = 12 ymm). Results accumulate in a transposed
/// scratch of 8 panels x T and are written to y when a chunk of rows is done. f32 FMA accumulation throughout.
/// </summary>
internal static unsafe class Gemm
{
    public const int KC = 256; // a multiple of every block size (256 for k-quants)

    public static int Mr(KernelIsa isa) => isa == KernelIsa.Avx512 ? 8 : 6;

    public static int Nt(KernelIsa isa) => isa == KernelIsa.Avx512 ? 32 : 16;

    /// <summary>x (T,C), W (OC,C) -> y (T,OC). isa must be Avx512 or Avx2.</summary>
    public static void Forward(float* x, in WeightMatrix w, float* y, int t, KernelIsa isa, WorkerPool pool)
    {
        int nt = Nt(isa), mr = Mr(isa);
        int tpad = (t + nt - 1) / nt * nt;
        int c = w.Cols;
        float* bp = Scratch.Get(Scratch.PackedX, (long)tpad * c);
        var pack = new PackJob { X = x, Bp = bp, T = t, Tpad = tpad, C = c, Nt = nt };
        pool.Run(tpad / nt, pack);

        long rowBytes = w.RowBytes;
        int tasks = WorkSplit.Tasks(w.Rows, rowBytes * 4 + (long)t * c / 8, pool.Threads, mr);
        var job = new GemmJob
        {
            W = w.Data, RowBytes = rowBytes, Type = w.Type, Rows = w.Rows, Cols = c, T = t, Tpad = tpad,
            Bp = bp, Y = y, Tasks = tasks, Isa = isa, Mr = mr, Nt = nt,
        };
        pool.Run(tasks, job);
    }

    private struct PackJob : IParallelJob
    {
        public float* X, Bp;
        public int T, Tpad, C, Nt;

        public readonly void Execute(int tile)
        {
            int t0 = tile * Nt;
            for (int k0 = 0; k0 < C; k0 += KC)
            {
                int kc = Math.Min(KC, C - k0);
                float* dst = Bp + (long)k0 * Tpad + (long)t0 * kc;
                for (int j = 0; j < Nt; j++)
                {
                    int tj = t0 + j;
                    if (tj < T)
                    {
                        float* src = X + (long)tj * C + k0;
                        for (int k = 0; k < kc; k++) dst[k * Nt + j] = src[k];
                    }
                    else
                    {
                        for (int k = 0; k < kc; k++) dst[k * Nt + j] = 0;
                    }
                }
            }
        }
    }

    private struct GemmJob : IParallelJob
    {
        public byte* W;
        public long RowBytes;
        public DType Type;
        public int Rows, Cols, T, Tpad, Tasks, Mr, Nt;
        public float* Bp, Y;
        public KernelIsa Isa;

        public readonly void Execute(int task)
        {
            var (r0, r1) = WorkSplit.Range(task, Tasks, Rows, Mr);
            // rows in chunks of 8 panels, so the transposed accumulator stays small (8*Mr x Tpad floats)
            for (int o0 = r0; o0 < r1; o0 += 8 * Mr) Chunk(o0, Math.Min(r1, o0 + 8 * Mr));
        }

        private readonly void Chunk(int o0, int o1)
        {
            int nPanels = (o1 - o0 + Mr - 1) / Mr;
            float* acc = Scratch.Get(Scratch.Accum, (long)nPanels * Mr * Tpad);
            new Span<float>(acc, nPanels * Mr * Tpad).Clear();
            float* panel = Scratch.Get(Scratch.Panel, (long)Mr * KC);
            for (int k0 = 0; k0 < Cols; k0 += KC)
            {
                int kc = Math.Min(KC, Cols - k0);
                long kOffset = DTypeInfo.RowBytes(Type, k0);
                for (int p = o0; p < o1; p += Mr)
                {
                    int pr = Math.Min(Mr, o1 - p);
                    // F32 rows are copied too: 8 rows 4*C bytes apart alias in the L1 sets; the 1 KB-strided panel does not
                    for (int i = 0; i < pr; i++) Tensors.Types.DTypes.Of(Type).DequantizeRow(W + (p + i) * RowBytes + kOffset, panel + i * KC, kc, Isa);
                    for (int i = pr; i < Mr; i++) new Span<float>(panel + i * KC, kc).Clear();
                    float* wp = panel;
                    int ldw = KC;
                    float* accP = acc + (long)(p - o0) * Tpad;
                    for (int tt = 0; tt < Tpad; tt += Nt)
                    {
                        float* b = Bp + (long)k0 * Tpad + (long)tt * kc;
                        if (Isa == KernelIsa.Avx512) Micro8x32(wp, ldw, b, kc, accP + tt, Tpad);
                        else Micro6x16(wp, ldw, b, kc, accP + tt, Tpad);
                    }
                }
            }
            for (int o = o0; o < o1; o++)
            {
                float* a = acc + (long)(o - o0) * Tpad;
                for (int ti = 0; ti < T; ti++) Y[(long)ti * Rows + o] = a[ti];
            }
        }
    }

    /// <summary>acc[i*ldc + j] += sum_k w[i*ldw + k] * b[k*32 + j] for i &lt; 8, j &lt; 32.</summary>
    private static void Micro8x32(float* w, int ldw, float* b, int kc, float* acc, int ldc)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw, w4 = w + 4 * ldw, w5 = w + 5 * ldw, w6 = w + 6 * ldw, w7 = w + 7 * ldw;
        for (int k = 0; k < kc; k++, b += 32)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var a = Vector512.Create(w0[k]); c00 = Avx512F.FusedMultiplyAdd(a, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(w1[k]); c10 = Avx512F.FusedMultiplyAdd(a, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(w2[k]); c20 = Avx512F.FusedMultiplyAdd(a, b0, c20); c21 = Avx512F.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(w3[k]); c30 = Avx512F.FusedMultiplyAdd(a, b0, c30); c31 = Avx512F.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(w4[k]); c40 = Avx512F.FusedMultiplyAdd(a, b0, c40); c41 = Avx512F.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(w5[k]); c50 = Avx512F.FusedMultiplyAdd(a, b0, c50); c51 = Avx512F.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(w6[k]); c60 = Avx512F.FusedMultiplyAdd(a, b0, c60); c61 = Avx512F.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(w7[k]); c70 = Avx512F.FusedMultiplyAdd(a, b0, c70); c71 = Avx512F.FusedMultiplyAdd(a, b1, c71);
        }
        Add(acc, c00, c01); Add(acc + ldc, c10, c11); Add(acc + 2 * ldc, c20, c21); Add(acc + 3 * ldc, c30, c31);
        Add(acc + 4 * ldc, c40, c41); Add(acc + 5 * ldc, c50, c51); Add(acc + 6 * ldc, c60, c61); Add(acc + 7 * ldc, c70, c71);

        static void Add(float* p, Vector512<float> lo, Vector512<float> hi)
        {
            (Vector512.Load(p) + lo).Store(p);
            (Vector512.Load(p + 16) + hi).Store(p + 16);
        }
    }

    /// <summary>acc[i*ldc + j] += sum_k w[i*ldw + k] * b[k*16 + j] for i &lt; 6, j &lt; 16.</summary>
    private static void Micro6x16(float* w, int ldw, float* b, int kc, float* acc, int ldc)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw, w4 = w + 4 * ldw, w5 = w + 5 * ldw;
        for (int k = 0; k < kc; k++, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a = Vector256.Create(w0[k]); c00 = Fma.MultiplyAdd(a, b0, c00); c01 = Fma.MultiplyAdd(a, b1, c01);
            a = Vector256.Create(w1[k]); c10 = Fma.MultiplyAdd(a, b0, c10); c11 = Fma.MultiplyAdd(a, b1, c11);
            a = Vector256.Create(w2[k]); c20 = Fma.MultiplyAdd(a, b0, c20); c21 = Fma.MultiplyAdd(a, b1, c21);
            a = Vector256.Create(w3[k]); c30 = Fma.MultiplyAdd(a, b0, c30); c31 = Fma.MultiplyAdd(a, b1, c31);
            a = Vector256.Create(w4[k]); c40 = Fma.MultiplyAdd(a, b0, c40); c41 = Fma.MultiplyAdd(a, b1, c41);
            a = Vector256.Create(w5[k]); c50 = Fma.MultiplyAdd(a, b0, c50); c51 = Fma.MultiplyAdd(a, b1, c51);
        }
        Add(acc, c00, c01); Add(acc + ldc, c10, c11); Add(acc + 2 * ldc, c20, c21);
        Add(acc + 3 * ldc, c30, c31); Add(acc + 4 * ldc, c40, c41); Add(acc + 5 * ldc, c50, c51);

        static void Add(float* p, Vector256<float> lo, Vector256<float> hi)
        {
            (Vector256.Load(p) + lo).Store(p);
            (Vector256.Load(p + 8) + hi).Store(p + 8);
        }
    }
}

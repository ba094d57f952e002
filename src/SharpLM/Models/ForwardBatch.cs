using SharpLM.Kernels;

namespace SharpLM.Models;

/// <summary>
/// Where a forward pass finds and writes each sequence's keys and values: for layer l and sequence slot s, K and V of
/// shape (S, KVH, HS). In inference that is each sequence's KV cache (rows are written at their positions); in training,
/// and in the encoder, it is the layer's own K and V activations (<see cref="IsActivations"/>: row i's keys are row i of
/// the layer's K buffer, nothing is copied).
/// </summary>
internal interface IKvStore
{
    nint Keys(int layer, int slot);
    nint Values(int layer, int slot);
    bool IsActivations { get; }
    /// <summary>How the keys and values are stored (F32, or an F16/Q8_0 cache): each position is KVH*HS values of it.</summary>
    Tensors.DType KvType { get; }

    /// <summary>R when layer <paramref name="layer"/> of slot <paramref name="slot"/> keeps only a rolling window of R
    /// positions (2R rows: position p at rows p % R and p % R + R); 0 when position p is row p.</summary>
    int Ring(int layer, int slot) => 0;
}

/// <summary>
/// The rows of one forward pass, from any number of sequences: for each row the token, its position in its sequence,
/// the sequence slot, and the keys it sees (<see cref="AttentionRows"/>). A single sequence is one slot; a training
/// batch is B slots of T rows each; an encoder batch is one slot per text. Arrays are pinned and sized once.
/// </summary>
internal sealed unsafe class ForwardBatch
{
    public ForwardBatch(int capacity, int maxSlots)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a batch holds at least one row");
        Capacity = capacity;
        MaxSlots = Math.Max(1, maxSlots);
        Tokens = GC.AllocateArray<int>(capacity, pinned: true);
        Positions = GC.AllocateArray<int>(capacity, pinned: true);
        Slot = GC.AllocateArray<int>(capacity, pinned: true);
        KvStart = GC.AllocateArray<int>(capacity, pinned: true);
        KvEnd = GC.AllocateArray<int>(capacity, pinned: true);
        TypeIds = GC.AllocateArray<int>(capacity, pinned: true);
        OutputRows = GC.AllocateArray<int>(capacity, pinned: true);
        SlotRows = GC.AllocateArray<int>(MaxSlots + 1, pinned: true);
        KBase = GC.AllocateArray<nint>(MaxSlots, pinned: true);
        VBase = GC.AllocateArray<nint>(MaxSlots, pinned: true);
        WindowStart = GC.AllocateArray<int>(capacity, pinned: true);
        WindowEnd = GC.AllocateArray<int>(capacity, pinned: true);
    }

    public int Capacity { get; }
    public int MaxSlots { get; }

    /// <summary>N: rows in this pass.</summary>
    public int Rows { get; private set; }

    /// <summary>Slots in use (1 + the largest slot index of a row).</summary>
    public int Slots { get; private set; }

    public int[] Tokens { get; }
    public int[] Positions { get; }
    public int[] Slot { get; }
    public int[] KvStart { get; }
    public int[] KvEnd { get; }
    /// <summary>BERT segment ids (0 unless set).</summary>
    public int[] TypeIds { get; }

    /// <summary>Rows whose logits are computed (<see cref="OutputCount"/> of them); all rows when <see cref="AllOutputs"/>.</summary>
    public int[] OutputRows { get; }
    public int OutputCount { get; private set; }
    public bool AllOutputs { get; set; }

    /// <summary>When the rows are grouped by slot (training, encoders): slot s owns rows SlotRows[s]..SlotRows[s+1]-1.</summary>
    public int[] SlotRows { get; }

    /// <summary>Per slot, the current layer's K and V (set by the model before each layer's attention).</summary>
    public nint[] KBase { get; }
    public nint[] VBase { get; }

    public void Clear()
    {
        Rows = 0;
        Slots = 0;
        OutputCount = 0;
        AllOutputs = false;
    }

    /// <summary>Adds a row; <paramref name="kvEnd"/> is one past the last key it sees (position + 1 when causal).</summary>
    public void Add(int token, int position, int slot, int kvStart, int kvEnd, bool output, int typeId = 0)
    {
        if (Rows == Capacity) throw new InvalidOperationException($"the batch is full ({Capacity} rows)");
        if ((uint)slot >= (uint)MaxSlots) throw new ArgumentOutOfRangeException(nameof(slot), slot, $"the batch has {MaxSlots} slots");
        int i = Rows++;
        Tokens[i] = token;
        Positions[i] = position;
        Slot[i] = slot;
        KvStart[i] = kvStart;
        KvEnd[i] = kvEnd;
        TypeIds[i] = typeId;
        if (output) OutputRows[OutputCount++] = i;
        Slots = Math.Max(Slots, slot + 1);
    }

    /// <summary>Fills <see cref="SlotRows"/> for rows added slot by slot (0, 0, 1, 1, 1, 2 ...); throws when they are not.</summary>
    public void GroupBySlot()
    {
        int s = 0;
        SlotRows[0] = 0;
        for (int i = 0; i < Rows; i++)
        {
            if (Slot[i] < s) throw new InvalidOperationException("the rows are not grouped by slot");
            while (s < Slot[i]) SlotRows[++s] = i;
        }
        while (s < Slots) SlotRows[++s] = Rows;
    }

    /// <summary>The attention view of the rows (pointers into the pinned arrays): the batch must stay reachable while the view is
    /// used (a caller that holds only the view lets the collector free the arrays under it: end with GC.KeepAlive(batch)).</summary>
    public AttentionRows AttentionRows
    {
        get
        {
            fixed (int* slot = Slot, start = KvStart, end = KvEnd, pos = Positions)
            fixed (nint* k = KBase, v = VBase)
                return new AttentionRows { Slot = slot, KvStart = start, KvEnd = end, KBase = k, VBase = v, Pos = pos };
        }
    }

    private int[] WindowStart { get; }
    private int[] WindowEnd { get; }

    /// <summary>
    /// The attention view of a sliding-window layer: each row sees the last <paramref name="window"/> of the keys it would
    /// see otherwise ([max(start, end - W), end)), as rows of the layer's store (a rolling window maps position p to row
    /// p % R, and its doubled rows keep the range contiguous; no store: the layer's activations, position p is row p).
    /// Valid until the next call.
    /// </summary>
    public AttentionRows SlidingRows(int window, IKvStore? kv, int layer)
    {
        for (int i = 0; i < Rows; i++)
        {
            int end = KvEnd[i], start = Math.Max(KvStart[i], end - window), ring = kv?.Ring(layer, Slot[i]) ?? 0;
            if (ring > 0)
            {
                if (end - start > ring) throw new InvalidOperationException($"a window of {end - start} positions does not fit the rolling cache of {ring}");
                int at = start % ring;
                (start, end) = (at, at + end - start);
            }
            WindowStart[i] = start;
            WindowEnd[i] = end;
        }
        fixed (int* slot = Slot, start = WindowStart, end = WindowEnd, pos = Positions)
        fixed (nint* k = KBase, v = VBase)
            return new AttentionRows { Slot = slot, KvStart = start, KvEnd = end, KBase = k, VBase = v, Pos = pos };
    }

    /// <summary>A training batch: B sequences of T tokens (inputs (B*T)), each a fresh causal sequence, every row an output.</summary>
    public void SetTraining(ReadOnlySpan<int> inputs, int b, int t)
    {
        Clear();
        for (int s = 0; s < b; s++)
            for (int i = 0; i < t; i++) Add(inputs[s * t + i], i, s, 0, i + 1, output: true);
        AllOutputs = true;
        GroupBySlot();
    }
}

/// <summary>The KV store of training and of the encoder: each slot's keys are the layer's own K rows (grouped by slot).</summary>
internal sealed class ActivationKv(Func<int, float[]> keys, Func<int, float[]> values, ForwardBatch batch, int kvWidth) : IKvStore
{
    public bool IsActivations => true;
    public Tensors.DType KvType => Tensors.DType.F32;

    public unsafe nint Keys(int layer, int slot)
    {
        fixed (float* p = keys(layer)) return (nint)(p + (long)batch.SlotRows[slot] * kvWidth);
    }

    public unsafe nint Values(int layer, int slot)
    {
        fixed (float* p = values(layer)) return (nint)(p + (long)batch.SlotRows[slot] * kvWidth);
    }
}

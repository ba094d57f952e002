using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace SharpLM.Formats;

/// <summary>
/// A whole file in memory, read-only: mapped (the OS loads pages lazily from its file cache, shared with other
/// processes) or read into memory of the process's own (<see cref="Open(string, bool)"/>). Weights are used in place
/// through <see cref="Pointer"/>. Disposing unmaps or frees it (pointers into it become invalid).
/// <para>Why reading is the models' default: on the 2-vCPU VMs this project is measured on, a paravirtualized guest
/// with DAMON sampling physical pages, decode from a mapping of a file that stays in the file cache fell from 40 to
/// 3-20 tok/s over minutes (134m F32, 1 thread), while the same file read into process memory, or freshly copied,
/// kept 40; llama.cpp through LLamaSharp reads its weights into its own memory too. A transparent-huge-page hint on
/// the read copy made it slower there (26 vs 38-41 tok/s), so none is given.</para>
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly bool _owned;
    private byte* _pointer;

    /// <summary>The file path, for error messages.</summary>
    public string Path { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>The first byte of the file (null for an empty file).</summary>
    public byte* Pointer => _pointer != null || Length == 0 ? _pointer : throw new ObjectDisposedException(Path);

    private MappedFile(string path, long length, MemoryMappedFile? file, MemoryMappedViewAccessor? view, byte* pointer, bool owned = false)
    {
        Path = path;
        Length = length;
        _file = file;
        _view = view;
        _pointer = pointer;
        _owned = owned;
    }

    /// <summary>Whether the bytes were read into the process's own memory rather than mapped.</summary>
    public bool InMemory => _owned;

    /// <summary>Maps <paramref name="path"/> read-only, or reads it whole into memory of the process's own (64-byte
    /// aligned; read in 16 MB pieces on the worker pool's threads) when <paramref name="inMemory"/>. An empty file gives a
    /// zero-length view.</summary>
    public static MappedFile Open(string path, bool inMemory = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"model file '{full}' does not exist", full);
        long length = new FileInfo(full).Length;
        if (length == 0) return new MappedFile(full, 0, null, null, null);
        if (inMemory) return Read(full, length);
        var file = MemoryMappedFile.CreateFromFile(full, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            return new MappedFile(full, length, file, view, p);
        }
        catch
        {
            view?.Dispose();
            file.Dispose();
            throw;
        }
    }

    private static MappedFile Read(string full, long length)
    {
        byte* p;
        try
        {
            p = (byte*)NativeMemory.AlignedAlloc((nuint)length, 64);
        }
        catch (OutOfMemoryException)
        {
            throw new OutOfMemoryException($"'{full}': cannot allocate {length / 1e9:F2} GB to read the file into memory; load it mapped instead (ModelLoadOptions.MapWeights, the CLI's --mmap)");
        }
        try
        {
            using var handle = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            // pieces of 16 MB read on the worker pool's threads at once: the time goes to the kernel's copy and to the
            // first touch of each fresh page, both of which the cores do in parallel
            const long Piece = 1L << 24;
            int pieces = (int)((length + Piece - 1) / Piece);
            nint at = (nint)p;
            Exception? error = null; // the first failure, rethrown as itself on this thread (not wrapped by the pool)
            Kernels.WorkerPool.Shared.For(pieces, i =>
            {
                try
                {
                    long start = i * Piece, end = Math.Min(length, start + Piece);
                    for (long done = start; done < end;)
                    {
                        int n = RandomAccess.Read(handle, new Span<byte>((byte*)at + done, (int)(end - done)), done);
                        if (n <= 0) throw new IOException($"'{full}' ended at byte {done} while reading {length} bytes (was it truncated while loading?)");
                        done += n;
                    }
                }
                catch (Exception ex)
                {
                    Interlocked.CompareExchange(ref error, ex, null);
                }
            });
            if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
            return new MappedFile(full, length, null, null, p, owned: true);
        }
        catch
        {
            NativeMemory.AlignedFree(p);
            throw;
        }
    }

    /// <summary>A span over [offset, offset+length) of the file; the caller has checked the range.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length) => new(Pointer + offset, length);

    public void Dispose()
    {
        if (_owned)
        {
            if (_pointer != null) NativeMemory.AlignedFree(_pointer);
            _pointer = null;
            return;
        }
        if (_view is not null && _pointer != null)
        {
            _pointer = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        _view?.Dispose();
        _file?.Dispose();
    }
}

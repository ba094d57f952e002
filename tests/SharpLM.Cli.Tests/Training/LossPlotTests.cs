using System.Buffers.Binary;
using System.IO.Compression;
using SharpLM.Cli.Commands;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests.Training;

/// <summary>The managed loss-curve PNG: a valid file (signature, chunk CRCs, zlib pixels) holding both curves.</summary>
public class LossPlotTests
{
    [Fact]
    public void WritesAValidPngWithBothCurves()
    {
        var path = Path.Combine(TestPaths.NewTempDir(), "loss.png");
        var train = Enumerable.Range(0, 100).Select(i => ((double)i, 5.0 * Math.Exp(-i / 30.0) + 1)).ToArray();
        var val = Enumerable.Range(0, 10).Select(i => (i * 10.0, 5.0 * Math.Exp(-i / 3.0) + 1.2)).ToArray();
        LossPlot.Save(path, train, val, 320, 200);
        var png = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var idat = new MemoryStream();
        int at = 8;
        var types = new List<string>();
        while (at < png.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            string type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            types.Add(type);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 8 + len));
            Assert.Equal(Crc32(png.AsSpan(at + 4, 4 + len)), crc);
            if (type == "IHDR")
            {
                Assert.Equal(320, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at + 8)));
                Assert.Equal(200, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at + 12)));
            }
            if (type == "IDAT") idat.Write(png, at + 8, len);
            at += 12 + len;
        }
        Assert.Equal(["IHDR", "IDAT", "IEND"], types);
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        var rows = new MemoryStream();
        z.CopyTo(rows);
        var pixels = rows.ToArray();
        Assert.Equal(200 * (1 + 320 * 3), pixels.Length);
        int blue = 0, orange = 0;
        for (int y = 0; y < 200; y++)
            for (int x = 0; x < 320; x++)
            {
                int i = y * (1 + 320 * 3) + 1 + x * 3;
                if (pixels[i] == 31 && pixels[i + 1] == 119 && pixels[i + 2] == 180) blue++;
                if (pixels[i] == 255 && pixels[i + 1] == 127 && pixels[i + 2] == 14) orange++;
            }
        Assert.True(blue > 200, $"{blue} train-curve pixels");
        Assert.True(orange > 100, $"{orange} validation-curve pixels");
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB88320 : c >> 1;
        }
        return ~c;
    }
}

using System.Buffers.Binary;
using System.IO.Compression;
using SharpLM.Lab;
using SharpLM.Testing;

namespace SharpLM.Tests.Lab;

/// <summary>The managed PNG charts: valid files (signature, chunk CRCs, zlib pixels) holding what was drawn.</summary>
public class ChartTests
{
    [Fact]
    public void WritesAValidPngWithBothCurves()
    {
        var path = Path.Combine(TestPaths.NewTempDir(), "loss.png");
        var train = Enumerable.Range(0, 100).Select(i => ((double)i, 5.0 * Math.Exp(-i / 30.0) + 1)).ToArray();
        var val = Enumerable.Range(0, 10).Select(i => (i * 10.0, 5.0 * Math.Exp(-i / 3.0) + 1.2)).ToArray();
        Chart.SaveLoss(path, train, val, 320, 200);
        var pixels = ReadPixels(path, 320, 200);
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

    [Fact]
    public void DrawsBarsHeatMapsAndLogAxesInPanels()
    {
        var path = Path.Combine(TestPaths.NewTempDir(), "panels.png");
        var cells = new double[8, 8];
        for (int i = 0; i < 8; i++) for (int j = 0; j <= i; j++) cells[i, j] = 1;
        Chart.Save(path, 900, 300,
            new ChartPanel { Title = "bars", Kind = ChartKind.Bar, Categories = ["a", "b"], Series = [new("x", [(0, 1), (1, 3)]), new("y", [(0, 2), (1, 0.5)])] },
            new ChartPanel { Title = "mask", Kind = ChartKind.Heat, Cells = cells },
            new ChartPanel { Title = "log", LogX = true, LogY = true, Series = [new("p", [(16, 0.01), (1024, 100)])] });
        var pixels = ReadPixels(path, 900, 300);
        int Count((byte R, byte G, byte B) c, int x0, int x1)
        {
            int n = 0;
            for (int y = 0; y < 300; y++)
                for (int x = x0; x < x1; x++)
                {
                    int i = y * (1 + 900 * 3) + 1 + x * 3;
                    if (pixels[i] == c.R && pixels[i + 1] == c.G && pixels[i + 2] == c.B) n++;
                }
            return n;
        }
        Assert.True(Count(Chart.Palette[1], 0, 300) > 500, "the second series' bars fill the first panel");
        // the heat map: 36 of 64 cells lit, in the series colour, only in the middle panel
        Assert.True(Count(Chart.Palette[0], 300, 600) > 36 * 9, "the mask's lit cells");
        Assert.Equal(0, Count(Chart.Palette[1], 300, 600));
        Assert.True(Count(Chart.Palette[0], 600, 900) > 100, "the log-log line");
    }

    /// <summary>Checks the PNG's signature, chunks and CRCs and returns its filtered rows (filter byte + RGB per row).</summary>
    private static byte[] ReadPixels(string path, int width, int height)
    {
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
                Assert.Equal(width, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at + 8)));
                Assert.Equal(height, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at + 12)));
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
        Assert.Equal(height * (1 + width * 3), pixels.Length);
        return pixels;
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

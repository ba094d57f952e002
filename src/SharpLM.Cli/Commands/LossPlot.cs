using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace SharpLM.Cli.Commands;

/// <summary>
/// The loss curve of <c>sharplm train</c> as a PNG, in managed code (no native drawing library, so the tool package
/// and the native-AOT binary ship no native files): train loss in blue, validation loss in orange, a frame with the
/// step range under it and the loss range beside it, in a 3x5 pixel digit font scaled x2.
/// PNG layout: signature, IHDR (width, height, 8-bit RGB), one zlib IDAT (each row prefixed by filter byte 0), IEND.
/// </summary>
internal static class LossPlot
{
    private const int Left = 70, Right = 20, Top = 20, Bottom = 40;

    /// <summary>Draws the curves (x = step) into a width x height PNG at <paramref name="path"/>.</summary>
    public static void Save(string path, IReadOnlyList<(double X, double Y)> train, IReadOnlyList<(double X, double Y)> validation,
        int width = 800, int height = 500)
    {
        var px = new byte[width * height * 3];
        Array.Fill(px, (byte)255);
        var all = train.Concat(validation).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToArray();
        double x0 = all.Length > 0 ? all.Min(p => p.X) : 0, x1 = all.Length > 0 ? all.Max(p => p.X) : 1;
        double y0 = all.Length > 0 ? all.Min(p => p.Y) : 0, y1 = all.Length > 0 ? all.Max(p => p.Y) : 1;
        if (x1 <= x0) x1 = x0 + 1;
        if (y1 <= y0) y1 = y0 + 1;
        int pw = width - Left - Right, ph = height - Top - Bottom;
        (int, int) Map((double X, double Y) p) =>
            (Left + (int)Math.Round((p.X - x0) / (x1 - x0) * (pw - 1)), Top + (int)Math.Round((y1 - p.Y) / (y1 - y0) * (ph - 1)));

        void Set(int x, int y, (byte R, byte G, byte B) c)
        {
            if ((uint)x >= (uint)width || (uint)y >= (uint)height) return;
            int i = (y * width + x) * 3;
            px[i] = c.R; px[i + 1] = c.G; px[i + 2] = c.B;
        }
        void Line(int xa, int ya, int xb, int yb, (byte, byte, byte) c, int thick)
        {
            int dx = Math.Abs(xb - xa), dy = -Math.Abs(yb - ya), sx = xa < xb ? 1 : -1, sy = ya < yb ? 1 : -1, err = dx + dy;
            while (true)
            {
                for (int t = 0; t < thick; t++) { Set(xa, ya + t, c); Set(xa + t, ya, c); }
                if (xa == xb && ya == yb) break;
                int e2 = 2 * err;
                if (e2 >= dy) { err += dy; xa += sx; }
                if (e2 <= dx) { err += dx; ya += sy; }
            }
        }
        void Curve(IReadOnlyList<(double X, double Y)> pts, (byte, byte, byte) c)
        {
            (int, int)? last = null;
            foreach (var p in pts)
            {
                if (!double.IsFinite(p.X) || !double.IsFinite(p.Y)) continue;
                var q = Map(p);
                if (last is var (lx, ly)) Line(lx, ly, q.Item1, q.Item2, c, 2);
                else Set(q.Item1, q.Item2, c);
                last = q;
            }
        }
        var grey = ((byte)200, (byte)200, (byte)200);
        var black = ((byte)0, (byte)0, (byte)0);
        for (int k = 1; k < 4; k++) Line(Left, Top + k * ph / 4, Left + pw - 1, Top + k * ph / 4, grey, 1);
        Line(Left, Top, Left + pw - 1, Top, black, 1);
        Line(Left, Top + ph - 1, Left + pw - 1, Top + ph - 1, black, 1);
        Line(Left, Top, Left, Top + ph - 1, black, 1);
        Line(Left + pw - 1, Top, Left + pw - 1, Top + ph - 1, black, 1);
        Curve(train, (31, 119, 180));
        Curve(validation, (255, 127, 14));
        Text(Format(y1), 4, Top, Set);
        Text(Format(y0), 4, Top + ph - 10, Set);
        Text(Format(x0), Left, Top + ph + 8, Set);
        string xs = Format(x1);
        Text(xs, Left + pw - xs.Length * 8, Top + ph + 8, Set);
        WritePng(path, px, width, height);
    }

    private static string Format(double v) => v.ToString(Math.Abs(v) >= 100 ? "F0" : "0.###", CultureInfo.InvariantCulture);

    // 3x5 glyphs, one row per 3 bits (top row first), for the characters numbers need.
    private static readonly Dictionary<char, ushort[]> Glyphs = new()
    {
        ['0'] = [7, 5, 5, 5, 7], ['1'] = [2, 6, 2, 2, 7], ['2'] = [7, 1, 7, 4, 7], ['3'] = [7, 1, 7, 1, 7], ['4'] = [5, 5, 7, 1, 1],
        ['5'] = [7, 4, 7, 1, 7], ['6'] = [7, 4, 7, 5, 7], ['7'] = [7, 1, 1, 1, 1], ['8'] = [7, 5, 7, 5, 7], ['9'] = [7, 5, 7, 1, 7],
        ['.'] = [0, 0, 0, 0, 2], ['-'] = [0, 0, 7, 0, 0], ['E'] = [7, 4, 7, 4, 7], ['+'] = [0, 2, 7, 2, 0],
    };

    private static void Text(string s, int x, int y, Action<int, int, (byte, byte, byte)> set)
    {
        foreach (char ch in s)
        {
            if (Glyphs.TryGetValue(ch, out var g))
                for (int r = 0; r < 5; r++)
                    for (int c = 0; c < 3; c++)
                        if ((g[r] >> (2 - c) & 1) != 0)
                            for (int k = 0; k < 4; k++) set(x + c * 2 + (k & 1), y + r * 2 + (k >> 1), (0, 0, 0));
            x += 8;
        }
    }

    private static void WritePng(string path, byte[] rgb, int width, int height)
    {
        using var f = File.Create(path);
        f.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2; // 8 bits per channel, RGB
        Chunk(f, "IHDR"u8, ihdr);
        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
            for (int y = 0; y < height; y++)
            {
                z.WriteByte(0);
                z.Write(rgb, y * width * 3, width * 3);
            }
        Chunk(f, "IDAT"u8, raw.ToArray());
        Chunk(f, "IEND"u8, []);
    }

    private static void Chunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        s.Write(type);
        s.Write(data);
        Span<byte> c = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(c, ~Crc(Crc(0xFFFFFFFFu, type), data));
        s.Write(c);
    }

    /// <summary>PNG's CRC-32 (polynomial 0xEDB88320), continued over <paramref name="data"/>.</summary>
    private static uint Crc(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (uint)-(int)(crc & 1));
        }
        return crc;
    }
}

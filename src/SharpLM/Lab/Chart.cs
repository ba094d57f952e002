using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace SharpLM.Lab;

/// <summary>How a panel draws its series.</summary>
internal enum ChartKind
{
    /// <summary>Each series a polyline with a marker per point.</summary>
    Line,
    /// <summary>Grouped bars: point X is the category index, one bar per series in each category.</summary>
    Bar,
    /// <summary>A grid of cells (<see cref="ChartPanel.Cells"/>, row 0 at the top) shaded from white (0) to the first colour (max).</summary>
    Heat,
}

/// <summary>One named series of (x, y) points. Non-finite points are skipped (a diverged run ends its line).</summary>
internal sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>One plot: a frame with ticks, axis labels, a title and a legend.</summary>
internal sealed record ChartPanel
{
    public string Title { get; init; } = "";
    public string XLabel { get; init; } = "";
    public string YLabel { get; init; } = "";
    public ChartKind Kind { get; init; } = ChartKind.Line;
    /// <summary>Logarithmic axes (base 10 ticks; positive values only).</summary>
    public bool LogX { get; init; }
    public bool LogY { get; init; }
    public IReadOnlyList<ChartSeries> Series { get; init; } = [];
    /// <summary>Bar charts: the category names under the groups.</summary>
    public IReadOnlyList<string> Categories { get; init; } = [];
    /// <summary>Heat maps: the cell values (rows, columns).</summary>
    public double[,]? Cells { get; init; }
}

/// <summary>
/// Line, bar and heat-map charts as PNG files, in managed code: no native drawing library, so the tool package and the
/// native-AOT binary ship no native files (ScottPlot's SkiaSharp/HarfBuzz would). Used by <c>sharplm train</c> for the
/// loss curve and by <c>sharplm lab</c> for every experiment's picture. One or more panels side by side; text in a
/// 3x5 pixel capital font scaled x2 (lower case prints as capitals).
/// PNG layout: signature, IHDR (width, height, 8-bit RGB), one zlib IDAT (each row prefixed by filter byte 0), IEND.
/// </summary>
internal static class Chart
{
    /// <summary>The colours of the series, in order (matplotlib's tab10).</summary>
    public static readonly (byte R, byte G, byte B)[] Palette =
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    ];

    private const int Left = 78, Right = 16, Top = 46, Bottom = 58, LegendRow = 14;

    /// <summary>A loss curve: train loss (blue) and validation loss (orange) against the step.</summary>
    public static void SaveLoss(string path, IReadOnlyList<(double X, double Y)> train, IReadOnlyList<(double X, double Y)> validation,
        int width = 800, int height = 500) =>
        Save(path, width, height, new ChartPanel
        {
            Title = "loss", XLabel = "step", YLabel = "loss",
            Series = validation.Count > 0 ? [new("train", train), new("validation", validation)] : [new("train", train)],
        });

    /// <summary>Draws the panels side by side into a width x height PNG at <paramref name="path"/>.</summary>
    public static void Save(string path, int width, int height, params ChartPanel[] panels)
    {
        var canvas = new Canvas(width, height);
        for (int i = 0; i < panels.Length; i++)
        {
            int x0 = width * i / panels.Length, x1 = width * (i + 1) / panels.Length;
            DrawPanel(canvas, panels[i], x0, x1 - x0, height);
        }
        WritePng(path, canvas.Pixels, width, height);
    }

    private static void DrawPanel(Canvas cv, ChartPanel p, int ox, int w, int h)
    {
        var black = ((byte)0, (byte)0, (byte)0);
        var grey = ((byte)215, (byte)215, (byte)215);
        int legendH = p.Kind == ChartKind.Heat ? 0 : p.Series.Count * LegendRow;
        int left = ox + Left, top = Top, pw = w - Left - Right, ph = h - Top - Bottom - legendH;
        cv.Text(p.Title, ox + (w - TextWidth(p.Title)) / 2, 8, black);
        cv.Text(p.YLabel, ox + 6, top - 18, black);
        cv.Text(p.XLabel, left + (pw - TextWidth(p.XLabel)) / 2, top + ph + 26, black);
        if (pw < 20 || ph < 20) return;

        if (p.Kind == ChartKind.Heat)
        {
            DrawHeat(cv, p, left, top, pw, ph);
            return;
        }
        var pts = p.Series.SelectMany(s => s.Points).Where(q => double.IsFinite(q.X) && double.IsFinite(q.Y)
                                                             && (!p.LogX || q.X > 0) && (!p.LogY || q.Y > 0)).ToArray();
        bool bars = p.Kind == ChartKind.Bar;
        double xa, xb, ya, yb;
        if (bars)
        {
            xa = -0.5;
            xb = Math.Max(p.Categories.Count, pts.Length == 0 ? 1 : (int)pts.Max(q => q.X) + 1) - 0.5;
        }
        else
        {
            xa = pts.Length > 0 ? pts.Min(q => q.X) : 0;
            xb = pts.Length > 0 ? pts.Max(q => q.X) : 1;
        }
        ya = pts.Length > 0 ? pts.Min(q => q.Y) : 0;
        yb = pts.Length > 0 ? pts.Max(q => q.Y) : 1;
        if (bars && !p.LogY) ya = Math.Min(0, ya);
        var (tx, fx0, fx1) = bars ? ([], xa, xb) : Ticks(xa, xb, p.LogX);
        var (ty, fy0, fy1) = Ticks(ya, yb, p.LogY);
        double T(double v, bool log) => log ? Math.Log10(v) : v;
        int MapX(double x) => left + (int)Math.Round((T(x, p.LogX && !bars) - fx0) / (fx1 - fx0) * (pw - 1));
        int MapY(double y) => top + (int)Math.Round((fy1 - T(y, p.LogY)) / (fy1 - fy0) * (ph - 1));

        foreach (var t in ty)
        {
            int y = MapY(t);
            cv.Line(left, y, left + pw - 1, y, grey, 1);
            string s = Format(t);
            cv.Text(s, left - 6 - TextWidth(s), y - 5, black);
        }
        foreach (var t in tx)
        {
            int x = MapX(t);
            cv.Line(x, top, x, top + ph - 1, grey, 1);
            string s = Format(t);
            cv.Text(s, x - TextWidth(s) / 2, top + ph + 6, black);
        }
        cv.Rect(left, top, pw, ph, black);

        if (bars)
        {
            int groups = Math.Max(1, (int)Math.Round(xb - xa)), n = Math.Max(1, p.Series.Count);
            double slot = (pw - 1) / (double)groups;
            int barW = Math.Max(1, (int)(slot * 0.8 / n));
            int baseY = MapY(p.LogY ? Math.Pow(10, fy0) : fy0 <= 0 && fy1 >= 0 ? 0 : fy0);
            for (int si = 0; si < p.Series.Count; si++)
                foreach (var (x, y) in p.Series[si].Points)
                {
                    if (!double.IsFinite(y) || (p.LogY && y <= 0)) continue;
                    int gx = left + (int)(slot * (x - xa - 0.5) + slot * 0.1) + si * barW;
                    int yy = MapY(y);
                    cv.Fill(gx, Math.Min(yy, baseY), barW - 1, Math.Abs(baseY - yy) + 1, Palette[si % Palette.Length]);
                }
            for (int c = 0; c < p.Categories.Count; c++)
            {
                string s = p.Categories[c];
                int cx = left + (int)(slot * (c + 0.5));
                cv.Text(s, cx - TextWidth(s) / 2, top + ph + 6, black);
            }
        }
        else
        {
            for (int si = 0; si < p.Series.Count; si++)
            {
                var col = Palette[si % Palette.Length];
                (int, int)? last = null;
                foreach (var (x, y) in p.Series[si].Points)
                {
                    if (!double.IsFinite(x) || !double.IsFinite(y) || (p.LogX && x <= 0) || (p.LogY && y <= 0)) { last = null; continue; }
                    var q = (MapX(x), MapY(y));
                    if (last is var (lx, ly)) cv.Line(lx, ly, q.Item1, q.Item2, col, 2);
                    if (p.Series[si].Points.Count <= 40) cv.Fill(q.Item1 - 2, q.Item2 - 2, 5, 5, col);
                    last = q;
                }
            }
        }
        // legend under the axis labels
        for (int si = 0; si < p.Series.Count; si++)
        {
            int y = top + ph + 44 + si * LegendRow;
            cv.Fill(left, y + 2, 14, 6, Palette[si % Palette.Length]);
            cv.Text(p.Series[si].Name, left + 20, y, black);
        }
    }

    private static void DrawHeat(Canvas cv, ChartPanel p, int left, int top, int pw, int ph)
    {
        var cells = p.Cells;
        if (cells is null || cells.Length == 0) return;
        int rows = cells.GetLength(0), cols = cells.GetLength(1);
        int cell = Math.Max(1, Math.Min(pw / cols, ph / rows));
        double max = 0;
        foreach (var v in cells) if (double.IsFinite(v)) max = Math.Max(max, v);
        if (max <= 0) max = 1;
        var (r0, g0, b0) = Palette[0];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double f = double.IsFinite(cells[r, c]) ? Math.Clamp(cells[r, c] / max, 0, 1) : 0;
                var col = ((byte)(255 - f * (255 - r0)), (byte)(255 - f * (255 - g0)), (byte)(255 - f * (255 - b0)));
                cv.Fill(left + c * cell, top + r * cell, cell, cell, col);
            }
        cv.Rect(left, top, cols * cell, rows * cell, (0, 0, 0));
    }

    /// <summary>Tick positions (in data units) and the axis range in transformed units (log10 when <paramref name="log"/>).</summary>
    private static (double[] Ticks, double From, double To) Ticks(double a, double b, bool log)
    {
        if (log)
        {
            double la = Math.Log10(a), lb = Math.Log10(b);
            if (lb - la < 1e-9) { la -= 0.5; lb += 0.5; }
            double pad = (lb - la) * 0.04;
            la -= pad;
            lb += pad;
            var t = new List<double>();
            int step = Math.Max(1, (int)Math.Ceiling((lb - la) / 8));
            for (double e = Math.Ceiling(la); e <= lb; e += step) t.Add(Math.Pow(10, e));
            if (t.Count < 2) { t.Clear(); t.Add(a); t.Add(b); }
            return ([.. t], la, lb);
        }
        if (b <= a) { a -= 0.5; b += 0.5; }
        double raw = (b - a) / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double nice = raw / mag < 1.5 ? 1 : raw / mag < 3 ? 2 : raw / mag < 7 ? 5 : 10;
        double d = nice * mag, from = Math.Floor(a / d) * d, to = Math.Ceiling(b / d) * d;
        var ticks = new List<double>();
        for (double v = from; v <= to + d * 1e-6; v += d) ticks.Add(Math.Round(v / d) * d);
        return ([.. ticks], from, to);
    }

    private static string Format(double v)
    {
        double a = Math.Abs(v);
        if (a == 0) return "0";
        if (a >= 1e5 || a < 1e-3) return v.ToString("0.#E+0", CultureInfo.InvariantCulture);
        return v.ToString(a >= 100 ? "F0" : "0.###", CultureInfo.InvariantCulture);
    }

    private static int TextWidth(string s) => s.Length * 8;

    // 3x5 glyphs, one row per 3 bits (top row first).
    private static readonly Dictionary<char, byte[]> Glyphs = new()
    {
        ['0'] = [7, 5, 5, 5, 7], ['1'] = [2, 6, 2, 2, 7], ['2'] = [7, 1, 7, 4, 7], ['3'] = [7, 1, 7, 1, 7], ['4'] = [5, 5, 7, 1, 1],
        ['5'] = [7, 4, 7, 1, 7], ['6'] = [7, 4, 7, 5, 7], ['7'] = [7, 1, 1, 1, 1], ['8'] = [7, 5, 7, 5, 7], ['9'] = [7, 5, 7, 1, 7],
        ['A'] = [2, 5, 7, 5, 5], ['B'] = [6, 5, 6, 5, 6], ['C'] = [3, 4, 4, 4, 3], ['D'] = [6, 5, 5, 5, 6], ['E'] = [7, 4, 7, 4, 7],
        ['F'] = [7, 4, 7, 4, 4], ['G'] = [3, 4, 5, 5, 3], ['H'] = [5, 5, 7, 5, 5], ['I'] = [7, 2, 2, 2, 7], ['J'] = [1, 1, 1, 5, 2],
        ['K'] = [5, 5, 6, 5, 5], ['L'] = [4, 4, 4, 4, 7], ['M'] = [5, 7, 7, 5, 5], ['N'] = [6, 5, 5, 5, 5], ['O'] = [2, 5, 5, 5, 2],
        ['P'] = [6, 5, 6, 4, 4], ['Q'] = [2, 5, 5, 6, 3], ['R'] = [6, 5, 6, 5, 5], ['S'] = [3, 4, 2, 1, 6], ['T'] = [7, 2, 2, 2, 2],
        ['U'] = [5, 5, 5, 5, 7], ['V'] = [5, 5, 5, 5, 2], ['W'] = [5, 5, 7, 7, 5], ['X'] = [5, 5, 2, 5, 5], ['Y'] = [5, 5, 2, 2, 2],
        ['Z'] = [7, 1, 2, 4, 7], ['.'] = [0, 0, 0, 0, 2], ['-'] = [0, 0, 7, 0, 0], ['+'] = [0, 2, 7, 2, 0], ['('] = [1, 2, 2, 2, 1],
        [')'] = [4, 2, 2, 2, 4], ['/'] = [1, 1, 2, 4, 4], [':'] = [0, 2, 0, 2, 0], ['%'] = [5, 1, 2, 4, 5], [','] = [0, 0, 0, 2, 4],
        ['='] = [0, 7, 0, 7, 0], ['_'] = [0, 0, 0, 0, 7], ['<'] = [1, 2, 4, 2, 1], ['>'] = [4, 2, 1, 2, 4], ['['] = [3, 2, 2, 2, 3],
        [']'] = [6, 2, 2, 2, 6], ['\''] = [2, 2, 0, 0, 0], ['*'] = [0, 5, 2, 5, 0], ['^'] = [2, 5, 0, 0, 0], ['!'] = [2, 2, 2, 0, 2],
        ['?'] = [6, 1, 2, 0, 2], ['#'] = [5, 7, 5, 7, 5], ['|'] = [2, 2, 2, 2, 2], ['²'] = [6, 2, 4, 6, 0], ['·'] = [0, 0, 2, 0, 0],
    };

    /// <summary>An RGB pixel buffer with the few drawing operations the charts need.</summary>
    private sealed class Canvas
    {
        private readonly int _w, _h;
        public byte[] Pixels { get; }

        public Canvas(int w, int h)
        {
            _w = w;
            _h = h;
            Pixels = new byte[w * h * 3];
            Array.Fill(Pixels, (byte)255);
        }

        public void Set(int x, int y, (byte R, byte G, byte B) c)
        {
            if ((uint)x >= (uint)_w || (uint)y >= (uint)_h) return;
            int i = (y * _w + x) * 3;
            Pixels[i] = c.R; Pixels[i + 1] = c.G; Pixels[i + 2] = c.B;
        }

        public void Fill(int x, int y, int w, int h, (byte, byte, byte) c)
        {
            for (int j = 0; j < h; j++)
                for (int i = 0; i < w; i++) Set(x + i, y + j, c);
        }

        public void Rect(int x, int y, int w, int h, (byte, byte, byte) c)
        {
            Line(x, y, x + w - 1, y, c, 1);
            Line(x, y + h - 1, x + w - 1, y + h - 1, c, 1);
            Line(x, y, x, y + h - 1, c, 1);
            Line(x + w - 1, y, x + w - 1, y + h - 1, c, 1);
        }

        public void Line(int xa, int ya, int xb, int yb, (byte, byte, byte) c, int thick)
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

        public void Text(string s, int x, int y, (byte, byte, byte) color)
        {
            foreach (char ch in s)
            {
                if (Glyphs.TryGetValue(char.ToUpperInvariant(ch), out var g))
                    for (int r = 0; r < 5; r++)
                        for (int c = 0; c < 3; c++)
                            if ((g[r] >> (2 - c) & 1) != 0)
                                for (int k = 0; k < 4; k++) Set(x + c * 2 + (k & 1), y + r * 2 + (k >> 1), color);
                x += 8;
            }
        }
    }

    private static void WritePng(string path, byte[] rgb, int width, int height) =>
        SharpLM.Tokenizers.Core.AtomicFile.Write(path, f => WritePng(f, rgb, width, height));

    private static void WritePng(Stream f, byte[] rgb, int width, int height)
    {
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

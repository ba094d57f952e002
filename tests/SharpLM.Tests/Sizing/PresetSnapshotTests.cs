using System.Globalization;
using System.Text;
using SharpLM.Sizing;
using SharpLM.Testing;
using Xunit;

namespace SharpLM.Tests.Sizing;

/// <summary>
/// Snapshot of every preset's components, counts and formulas (tests/testdata/sizing/presets.approved.txt), so a
/// change to a preset or to the counting shows up in review. Regenerate with SHARPLM_UPDATE_SNAPSHOTS=1 after
/// checking the new numbers.
/// </summary>
public class PresetSnapshotTests
{
    private static string Render()
    {
        var sb = new StringBuilder();
        foreach (var name in ModelPresets.Names)
        {
            var p = new ParameterCount(ModelPresets.Load(name));
            sb.Append(CultureInfo.InvariantCulture, $"{name}: {p.Total:N0} parameters, one layer {p.PerLayer:N0} = {p.PerLayerFormula}\n");
            foreach (var c in p.Components)
                sb.Append(CultureInfo.InvariantCulture, $"  {c.Name,-22} {c.Count,16:N0}  {c.Formula}\n");
        }
        return sb.ToString();
    }

    [Fact]
    public void Presets_MatchTheApprovedSnapshot()
    {
        var path = Path.Combine(TestPaths.TestData, "sizing", "presets.approved.txt");
        string actual = Render();
        if (Environment.GetEnvironmentVariable("SHARPLM_UPDATE_SNAPSHOTS") == "1") File.WriteAllText(path, actual);
        Assert.True(File.Exists(path), $"{path} is missing: run the tests once with SHARPLM_UPDATE_SNAPSHOTS=1 and review it");
        string approved = File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal);
        if (approved == actual) return;
        var a = approved.Split('\n');
        var b = actual.Split('\n');
        int i = 0;
        while (i < Math.Min(a.Length, b.Length) && a[i] == b[i]) i++;
        Assert.Fail($"preset snapshot differs at line {i + 1}:\napproved: {(i < a.Length ? a[i] : "(end)")}\nactual:   {(i < b.Length ? b[i] : "(end)")}\n"
                    + "If the change is intended, rerun with SHARPLM_UPDATE_SNAPSHOTS=1 and review the diff.");
    }
}

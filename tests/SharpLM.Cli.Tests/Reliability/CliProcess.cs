using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace SharpLM.Cli.Tests.Reliability;

/// <summary>Runs <c>sharplm</c> (the built SharpLM.Cli.dll) as a child process with a time limit and a memory watch:
/// the reliability tests need a real process (a stack overflow, a hang or SIGKILL cannot be observed in-process).</summary>
internal static class CliProcess
{
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "SharpLM.Cli.dll");

    /// <summary>The result of one run: exit code, stdout and stderr interleaved (first MiB), whether it ran past
    /// <c>timeout</c> (then it was killed), and the peak resident set seen.</summary>
    public readonly record struct Result(int ExitCode, string Output, bool TimedOut, long PeakRss);

    /// <summary>Runs one command line. <paramref name="env"/> adds (or, with a null value, removes) variables;
    /// SHARPLM_DEBUG is always removed (stack traces must not be asked for). The managed heap is capped at
    /// <paramref name="memoryLimit"/> (DOTNET_GCHeapHardLimit) and the resident set polled: past the limit the process
    /// is killed and reported by its peak.</summary>
    public static async Task<Result> RunAsync(IEnumerable<string> args, string? stdin, TimeSpan timeout, long memoryLimit,
                                              IReadOnlyDictionary<string, string?>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("SHARPLM_DEBUG");
        psi.Environment["DOTNET_TieredPGO"] = "0";
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x" + memoryLimit.ToString("X", CultureInfo.InvariantCulture);
        if (env != null)
            foreach (var (k, v) in env)
                if (v is null) psi.Environment.Remove(k);
                else psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var output = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) if (output.Length < 1 << 20) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) if (output.Length < 1 << 20) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            if (stdin != null) await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        catch (IOException) { } // it may have exited already
        long peak = 0;
        var sw = Stopwatch.StartNew();
        while (!p.HasExited && sw.Elapsed < timeout)
        {
            peak = Math.Max(peak, PeakRss(p.Id));
            if (peak > memoryLimit + (512L << 20)) break; // the heap limit plus the runtime and mapped files
            await Task.WhenAny(p.WaitForExitAsync(), Task.Delay(50));
        }
        bool timedOut = !p.HasExited && sw.Elapsed >= timeout;
        if (!p.HasExited)
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        }
        await p.WaitForExitAsync();
        lock (output) return new(p.ExitCode, output.ToString(), timedOut, peak);
    }

    /// <summary>VmHWM (peak resident set) of a live process, from /proc.</summary>
    private static long PeakRss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }
}

using System.Diagnostics;
using SharpLM.Testing;

namespace SharpLM.Server.Tests;

/// <summary>Runs only where nginx (Debian package) is installed.</summary>
public sealed class NginxFactAttribute : FactAttribute
{
    public NginxFactAttribute()
    {
        if (!File.Exists("/usr/sbin/nginx")) Skip = "nginx is not installed (Debian: apt-get install nginx)";
    }
}

/// <summary>docs/DEPLOY.md's scale-out, checked: scripts/serve-replicas-nginx.sh puts two `sharplm serve` replicas
/// behind nginx on loopback and checks that requests (plain and streaming) through nginx reach both.</summary>
public sealed class ScaleOutTests
{
    [NginxFact]
    public async Task Two_replicas_behind_nginx_both_serve_requests()
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(TestPaths.RepoRoot, "scripts", "serve-replicas-nginx.sh"));
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SharpLM.Cli.dll"));
        psi.ArgumentList.Add(TestServer.DefaultModel);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {await stdout}\n{await stderr}");
        Assert.StartsWith("ok: 9 chat requests through nginx", await stdout, StringComparison.Ordinal);
    }
}

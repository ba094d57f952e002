namespace SharpLM.Cli.Tests;

/// <summary>Runs one command line in-process, as the <c>sharplm</c> process would, capturing its exit code and both
/// streams.</summary>
internal static class CliRun
{
    public static async Task<(int Rc, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = await CliApp.RunAsync(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }
}

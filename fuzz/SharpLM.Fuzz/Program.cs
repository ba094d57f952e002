using SharpFuzz;
using SharpLM.Fuzz;

// sharplm-fuzz TARGET                 AFL++ persistent mode (scripts/fuzz.sh runs: afl-fuzz ... -- dotnet SharpLM.Fuzz.dll TARGET)
// sharplm-fuzz TARGET --libfuzzer     libFuzzer mode (with libfuzzer-dotnet)
// sharplm-fuzz TARGET --replay PATH   runs every file under PATH (or PATH itself) once, without a fuzzer: prints each
//                                     input's outcome and exits 1 if any escaped as an unexpected exception
// In AFL++ mode nothing of the instrumented assemblies (SharpLM*) may run before Fuzzer.OutOfProcess.Run has set up the
// shared coverage map (their module initializers write to it), so the target name is checked only in the other modes.
bool afl = args.Length == 1;
if (args.Length == 0 || (!afl && !FuzzTargets.All.ContainsKey(args[0])))
{
    Console.Error.WriteLine("usage: SharpLM.Fuzz TARGET [--libfuzzer | --replay PATH]; targets: gguf safetensors onnx tokenizer-json " +
                            "tiktoken vocab-txt config-json chat-template server-request");
    return 2;
}
string target = args[0];
if (args.Length >= 3 && args[1] == "--replay")
{
    var files = Directory.Exists(args[2]) ? Directory.GetFiles(args[2], "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray() : [args[2]];
    int bad = 0;
    foreach (var f in files)
    {
        try
        {
            bool accepted = FuzzTargets.Run(target, File.ReadAllBytes(f));
            Console.WriteLine($"{(accepted ? "accepted" : "rejected")} {f}");
        }
        catch (Exception e)
        {
            bad++;
            Console.WriteLine($"FINDING {f}: {e}");
        }
    }
    Console.WriteLine($"{files.Length} inputs, {bad} findings");
    return bad == 0 ? 0 : 1;
}
if (args.Length >= 2 && args[1] == "--libfuzzer")
{
    Fuzzer.LibFuzzer.Run(span => FuzzTargets.Run(target, span.ToArray()));
    return 0;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    FuzzTargets.Run(target, ms.ToArray());
});
return 0;

using SharpLM.Cli;
using SharpLM.Cli.Commands;
using SharpLM.Tokenizers.Json;

// The sharplm process caches what it derives from large tokenizer.json files (Json/TokenizerJsonCache.cs) in its cache
// folder; SHARPLM_TOKENIZER_CACHE=0 turns that off. Without a home folder (and no SHARPLM_CACHE) the default would be
// relative to the working directory: then nothing is cached.
string cacheRoot = BuiltinModels.CacheRoot();
if (Path.IsPathFullyQualified(cacheRoot) || Environment.GetEnvironmentVariable("SHARPLM_CACHE") is { Length: > 0 })
    TokenizerJsonCache.Folder = Path.Combine(cacheRoot, "tokenizers");
return await CliApp.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);

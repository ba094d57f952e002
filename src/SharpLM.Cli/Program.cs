using SharpLM.Cli;
using SharpLM.Cli.Commands;
using SharpLM.Tokenizers.Json;

// The sharplm process caches what it derives from large tokenizer.json files (Json/TokenizerJsonCache.cs) in its cache
// folder; SHARPLM_TOKENIZER_CACHE=0 turns that off.
TokenizerJsonCache.Folder = Path.Combine(BuiltinModels.CacheRoot(), "tokenizers");
return await CliApp.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);

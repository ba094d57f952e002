using System.Runtime.InteropServices;
using System.Text.Json;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm generate</c>: text (or ids) in, streamed text out, with the sampling options of llama.cpp, a logits
/// dump (float32 LE, one row of V per evaluated position: the prompt's, then one per generated token) and a JSON
/// summary with throughput.
/// </summary>
internal sealed class GenerateCommand : ICliCommand
{
    public string Name => "generate";
    public string Description => "Generate text with a LLaMA-family model (.gguf file or Hugging Face folder)";
    public string Usage => "[--model PATH] (--prompt TEXT | --prompt-ids \"1 2 3\") [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--threads N] [--mmap] [--speculative | --draft-model PATH] [--draft N] [--dump-logits FILE] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        ModelCli.ModelOption,
        new("prompt", "the prompt text (BOS is added when the model uses one)"),
        new("prompt-ids", "the prompt as token ids, \"1 2 3\" or \"1,2,3\" (taken as is: no BOS added)"),
        new("max-tokens", "the most tokens to generate (default 128)"),
        new("temperature", "0 = greedy (default 0.8)"),
        new("top-k", "keep the K most likely tokens, 0 = off (default 40)"),
        new("top-p", "nucleus sampling, 1 = off (default 0.95)"),
        new("min-p", "drop tokens below P x the best one's probability, 0 = off (default 0.05)"),
        new("repeat-penalty", "penalty for tokens in the last --repeat-last-n, 1 = off (default 1)"),
        new("repeat-last-n", "how many recent tokens the penalties see (default 64, -1 = all)"),
        new("presence-penalty", "OpenAI presence penalty (default 0)"),
        new("frequency-penalty", "OpenAI frequency penalty (default 0)"),
        new("seed", "seed of the sampler (default: random)"),
        new("stop", "stop when the text contains this (repeatable)", Repeatable: true),
        new("no-bos", "do not add BOS in front of --prompt", IsFlag: true),
        new("ignore-eos", "keep generating after the end-of-sequence token", IsFlag: true),
        new("speculative", "speculative decoding with prompt lookup: guess the next tokens from earlier text, check them in one pass (greedy output, unchanged)", IsFlag: true),
        new("draft-model", "speculative decoding with a small model of the same vocabulary (.gguf or Hugging Face folder) as the drafter"),
        new("draft", "most tokens drafted per step (default 8 with --speculative, 4 with --draft-model)"),
        ModelCli.ThreadsOption,
        ModelCli.MapOption,
        ModelCli.ContextOption,
        new("dump-logits", "write float32 little-endian logits, one row of vocab size per evaluated position"),
        new("json", "print one JSON object at the end instead of streaming the text", IsFlag: true),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Positionals.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positionals[0]}'");
        if (args.Has("prompt") == args.Has("prompt-ids")) throw new CliUsageException("give exactly one of --prompt and --prompt-ids");
        bool speculative = args.Flag("speculative") || args.Has("draft-model");
        if (args.Has("draft") && !speculative) throw new CliUsageException("--draft needs --speculative or --draft-model");
        if (speculative && args.Has("temperature") && args.Float("temperature", 0, min: 0) > 0)
            throw new CliUsageException("speculative decoding gives the model's greedy output: use --temperature 0 (the default with --speculative)");
        var sampling = ModelCli.Sampling(args);
        if (speculative) sampling = sampling with { Temperature = 0 };
        int maxTokens = args.Int("max-tokens", 128, min: 0);
        bool json = args.Flag("json");
        using var model = ModelCli.Load(args);
        var cfg = model.Config;

        int[] promptIds = args.String("prompt-ids") is { } idText
            ? CliArgs.ParseIds("prompt-ids", idText)
            : model.RequireTokenizer().Encode(args.Required("prompt"), addBos: !args.Flag("no-bos"));
        foreach (var id in promptIds)
            if (id >= cfg.Vocab) throw new CliUsageException($"--prompt-ids: token id {id} is outside the vocabulary of {cfg.Vocab}");
        if (promptIds.Length == 0) throw new CliUsageException("the prompt is empty");
        if (promptIds.Length > model.ContextSize)
            throw new CliUsageException($"the prompt has {promptIds.Length} tokens but the context holds {model.ContextSize}; shorten the prompt or raise --ctx (the model was trained for {cfg.Context})");

        FileStream? dump = null;
        if (args.String("dump-logits") is { } dumpPath)
        {
            if (!BitConverter.IsLittleEndian) throw new NotSupportedException("--dump-logits writes little-endian floats and needs a little-endian machine");
            dump = new FileStream(dumpPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        }
        await using var _ = dump;
        LogitsRowHandler? onLogits = dump is null ? null : row => dump.Write(MemoryMarshal.AsBytes(row));

        using var draftModel = args.String("draft-model") is { } draftPath
            ? LanguageModel.Load(draftPath, new ModelLoadOptions { ContextSize = model.ContextSize, Threads = model.Threads, MapWeights = args.Flag("mmap") })
            : null;
        using var drafter = draftModel is null ? null : new DraftModelDrafter(draftModel, cfg, args.Int("draft", 4, min: 1, max: 64));
        IDrafter? draft = drafter != null ? drafter : speculative ? new PromptLookupDrafter(args.Int("draft", 8, min: 1, max: 64)) : null;

        var state = model.CreateState();
        var gen = new Generator(state, new Sampler(sampling, cfg.Vocab), args.Flag("ignore-eos") ? [] : cfg.EosTokenIds, draft);
        var streamer = model.Tokenizer is null ? null : new TextStreamer(model.Tokenizer, promptIds[^1], sampling.StopStrings);
        if (model.Tokenizer is null && !json)
            await context.Error.WriteLineAsync($"note: {model.Path} has no tokenizer; printing token ids").ConfigureAwait(false);

        var ids = new List<int>();
        string stopReason = "length";
        foreach (var id in gen.Generate(promptIds, maxTokens, onLogits, context.CancellationToken))
        {
            ids.Add(id);
            var piece = streamer is null ? (ids.Count > 1 ? " " : "") + id.ToString(System.Globalization.CultureInfo.InvariantCulture) : streamer.Push(id);
            if (!json && piece.Length > 0)
            {
                await context.Out.WriteAsync(piece).ConfigureAwait(false);
                await context.Out.FlushAsync().ConfigureAwait(false);
            }
            if (streamer is { Stopped: true }) { stopReason = "stop"; break; }
        }
        if (stopReason != "stop")
        {
            if (ids.Count < maxTokens) stopReason = state.Length >= state.Capacity ? "context" : "eos";
            var rest = streamer?.Flush() ?? "";
            if (!json && rest.Length > 0) await context.Out.WriteAsync(rest).ConfigureAwait(false);
        }
        var stats = gen.Stats;
        if (json)
        {
            var o = new GenerateJson(promptIds, ids, streamer?.Text, promptIds.Length, ids.Count, stopReason, stats.PrefillSeconds,
                stats.DecodeSeconds, stats.PrefillTokensPerSecond, stats.DecodeTokensPerSecond, model.Threads, model.Path, stats.DecodeSteps,
                draft is null ? null : new SpeculativeJson(draft.Name, draft.MaxDraft, stats.DraftedTokens, stats.AcceptedTokens,
                    stats.DraftedTokens > 0 ? (double)stats.AcceptedTokens / stats.DraftedTokens : 0, stats.TokensPerStep));
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(o, CliJson.Default.GenerateJson)).ConfigureAwait(false);
        }
        else
        {
            await context.Out.WriteLineAsync().ConfigureAwait(false);
            await context.Error.WriteLineAsync(
                $"[{promptIds.Length} prompt tokens at {stats.PrefillTokensPerSecond:F1} tok/s, {ids.Count} generated at {stats.DecodeTokensPerSecond:F1} tok/s, stop: {stopReason}]").ConfigureAwait(false);
            if (draft != null)
                await context.Error.WriteLineAsync(
                    $"[speculative ({draft.Name}, up to {draft.MaxDraft} per step): {stats.DraftedTokens} drafted, {stats.AcceptedTokens} accepted, {stats.TokensPerStep:F2} tokens per step]").ConfigureAwait(false);
        }
        return 0;
    }
}

/// <summary>Options and helpers shared by generate, chat and bench.</summary>
internal static class ModelCli
{
    public static readonly CliOption ModelOption = new("model", "a .gguf file or a Hugging Face folder (config.json + *.safetensors); default: the installed default model");
    public static readonly CliOption ThreadsOption = new("threads", "worker threads (default: all cores)");
    public static readonly CliOption MapOption = new("mmap", "use the weights where the OS maps the model file instead of reading them into memory first (faster load, memory shared with other processes; on some VMs slower decode)", IsFlag: true);
    public static readonly CliOption ContextOption = new("ctx", "context size in tokens (default: the model's, at most 4096)");

    /// <summary>Environment variable naming the default model.</summary>
    public const string DefaultModelVariable = "SHARPLM_MODEL";

    /// <summary>Replaces the user's home folder when looking for the default model (tests).</summary>
    internal static string? HomeOverride { get; set; }

    /// <summary>
    /// The model that ships with the CLI: the small LLaMA trained on the Brown corpus (docs/TRAINING.md), copied from
    /// the repository's models/default.gguf next to the program. Tests may point it elsewhere.
    /// </summary>
    internal static string BundledModelPath { get; set; } = Path.Combine(AppContext.BaseDirectory, "models", "default.gguf");

    /// <summary>
    /// The default model: $SHARPLM_MODEL, else ~/.sharplm/models/default.gguf (a user's own choice wins), else the
    /// bundled Brown-corpus model, else a clear error.
    /// </summary>
    public static string DefaultModelPath()
    {
        if (Environment.GetEnvironmentVariable(DefaultModelVariable) is { Length: > 0 } env) return env;
        var home = HomeOverride ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var path = Path.Combine(home, ".sharplm", "models", "default.gguf");
        if (File.Exists(path)) return path;
        if (File.Exists(BundledModelPath)) return BundledModelPath;
        throw new CliUsageException($"no default model is installed: pass --model PATH (a .gguf file or a Hugging Face folder), set {DefaultModelVariable}, or put one at {path}");
    }

    public static LanguageModel Load(CliArgs args)
    {
        int threads = args.Int("threads", 0, min: 0, max: 1024); // 0: all cores
        int? ctx = args.Has("ctx") ? args.Int("ctx", 0, min: 1) : null;
        var path = args.String("model") ?? DefaultModelPath();
        return LanguageModel.Load(path, new ModelLoadOptions { ContextSize = ctx, Threads = threads, MapWeights = args.Flag("mmap") });
    }

    public static SamplingOptions Sampling(CliArgs args)
    {
        var d = SamplingOptions.Default;
        var o = d with
        {
            Temperature = args.Float("temperature", d.Temperature, min: 0),
            TopK = args.Int("top-k", d.TopK, min: 0),
            TopP = args.Float("top-p", d.TopP, min: 0, max: 1),
            MinP = args.Float("min-p", d.MinP, min: 0, max: 1),
            RepeatPenalty = args.Has("repeat-penalty") ? args.Float("repeat-penalty", 1, min: 1e-6f) : d.RepeatPenalty,
            RepeatLastN = args.Int("repeat-last-n", d.RepeatLastN, min: -1),
            PresencePenalty = args.Float("presence-penalty", d.PresencePenalty),
            FrequencyPenalty = args.Float("frequency-penalty", d.FrequencyPenalty),
            Seed = args.Has("seed") ? (ulong)args.Long("seed", 0, min: 0) : null,
            StopStrings = args.All("stop"),
        };
        o.Validate();
        return o;
    }
}

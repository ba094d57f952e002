using System.Text.Json;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using SharpLM.Formats.Onnx;
using SharpLM.Formats.Safetensors;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Models;
using SharpLM.Server.Http;
using SharpLM.Server.OpenAi;
using SharpLM.Sizing;
using SharpLM.Tokenizers;
using SharpLM.Tokenizers.Tiktoken;

namespace SharpLM.Fuzz;

/// <summary>
/// One fuzz target per reader of untrusted input. A target gets the bytes of one input and runs the reader (and what
/// uses its result next: a tokenizer encodes, a template renders, a config is counted). A clean rejection
/// (<see cref="UserErrors.IsCleanRejection"/>: a format error naming the file, key or offset) is the expected outcome
/// of a bad input and is swallowed; anything else escapes and is a finding (AFL++ sees a crash; the test suite's
/// replay of tests/fuzz/ fails).
/// </summary>
internal static class FuzzTargets
{
    /// <summary>Every target by name (the folder name under tests/fuzz/).</summary>
    public static IReadOnlyDictionary<string, Action<byte[]>> All { get; } = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["gguf"] = b => WithFile(b, ".gguf", Gguf),
        ["safetensors"] = b => WithFile(b, ".safetensors", Safetensors),
        ["onnx"] = b => WithFile(b, ".onnx", Onnx),
        ["tokenizer-json"] = b => Encode(Tokenizer.FromJson(Utf8(b), "fuzz/tokenizer.json")),
        ["tiktoken"] = b => Encode(TiktokenLoader.Load(new MemoryStream(b), TiktokenEncoding.Cl100kBase, "fuzz/cl100k_base.tiktoken")),
        ["vocab-txt"] = b => Encode(Tokenizer.FromVocabTxt(new StringReader(Utf8(b)), lowercase: true, "fuzz/vocab.txt")),
        ["config-json"] = b => ConfigJson(b),
        ["chat-template"] = b => Template(Utf8(b)),
        ["server-request"] = b => ServerRequest(b),
    };

    /// <summary>Runs <paramref name="target"/> on <paramref name="input"/>; returns false when it rejected the input
    /// cleanly, true when it accepted it. Any other exception propagates.</summary>
    public static bool Run(string target, byte[] input)
    {
        if (!All.TryGetValue(target, out var run))
            throw new ArgumentException($"unknown fuzz target '{target}'; targets: {string.Join(", ", All.Keys)}", nameof(target));
        try
        {
            run(input);
            return true;
        }
        catch (Exception e) when (UserErrors.IsCleanRejection(e))
        {
            return false;
        }
    }

    private static string Utf8(byte[] b) => System.Text.Encoding.UTF8.GetString(b);

    private static readonly string s_tmp = Path.Combine(Path.GetTempPath(), $"sharplm-fuzz-{Environment.ProcessId}");

    /// <summary>The file readers map files: the input is written to a scratch file first.</summary>
    private static void WithFile(byte[] b, string ext, Action<string> read)
    {
        Directory.CreateDirectory(s_tmp);
        var path = Path.Combine(s_tmp, "input" + ext);
        File.WriteAllBytes(path, b);
        read(path);
    }

    private static void Gguf(string path)
    {
        using var g = GgufFile.Open(path);
        foreach (var (_, v) in g.MetadataList) _ = v.ToString();
        foreach (var t in g.TensorList) _ = t.ToString();
        if (g.Contains(GgufKeys.Architecture)) _ = ModelConfigReader.FromGguf(g);
        if (g.Contains("tokenizer.ggml.tokens")) Encode(g.LoadTokenizer());
        if (ModelTokenizers.ChatTemplateFromGguf(g) is { } t2) _ = t2.Render(s_turns, addGenerationPrompt: true);
    }

    /// <summary>The protobuf reader accepts any ONNX graph; the BERT reader on top may then say it is not a BERT.</summary>
    private static void Onnx(string path)
    {
        using (var f = OnnxFile.Open(path))
            foreach (var (_, t) in f.Tensors) _ = t.ToString();
        try
        {
            var (w, c) = OnnxBert.Open(path);
            (w as IDisposable)?.Dispose();
            _ = new ParameterCount(c);
        }
        catch (Exception e) when (UserErrors.IsCleanRejection(e))
        {
            // not a BERT graph: rejected with the missing pieces named
        }
    }

    private static void Safetensors(string path)
    {
        using var f = SafetensorsFile.Open(path);
        foreach (var e in f.Entries) _ = e.ElementCount;
    }

    private static void ConfigJson(byte[] b)
    {
        var c = ModelConfigReader.FromHfJson(b, "fuzz/config.json");
        _ = new ParameterCount(c);
        _ = HfTokenizerConfig.Parse(Utf8(b), "fuzz/tokenizer_config.json");
    }

    private static readonly ChatTurn[] s_turns = [new("user", "hello"), new("assistant", "hi"), new("user", "bye")];

    private static readonly Dictionary<string, object?> s_tokens = new() { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };

    private static void Template(string source) => _ = ChatTemplate.Parse(source).Render(s_turns, addGenerationPrompt: true, s_tokens);

    private static void Encode(Tokenizer t)
    {
        var ids = t.EncodeToIds("Hello world, the cat sat on a mat. 12345 ünïcödé 你好 \t\n  !!");
        _ = t.Decode(ids);
        _ = t.Encode("a [MASK] b", "pair text");
    }

    private static void ServerRequest(byte[] b)
    {
        // the server answers invalid JSON and an ApiException with a 4xx naming the field: a clean rejection
        JsonDocument doc;
        try
        {
            doc = Fields.Parse(b);
        }
        catch (ApiException e) when (e.Status == 400)
        {
            throw new InvalidDataException("400 invalid_json: " + e.Message, e);
        }
        using (doc)
        {
            try
            {
                var f = Fields.Root(doc);
                _ = OpenAiRequest.Sampling(f, []);
                _ = OpenAiRequest.MaxTokens(f);
                _ = OpenAiRequest.ResponseFormat(f);
                _ = OpenAiRequest.LogitBias(f, 1000);
            }
            catch (ApiException e) when (e.Status is >= 400 and < 500)
            {
                throw new InvalidDataException($"{e.Status}: {e.Message}", e);
            }
        }
    }
}

using System.ClientModel;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using SharpLM.Formats.HuggingFace;
using SharpLM.Quantization;
using SharpLM.Testing;
using SharpLM.Tests.Formats;

namespace SharpLM.Server.Tests;

/// <summary>
/// A tiny random Llama 3.1 model: Meta's Llama 3 tokenizer.json (the asset) with the two added tokens Llama 3.1 renamed,
/// 128008 <c>&lt;|eom_id|&gt;</c> and 128010 <c>&lt;|python_tag|&gt;</c> (special tokens, as in Meta's 3.1 release), a
/// config.json and generation_config.json that list 128001, 128008 and 128009 as eos_token_id (as Meta's do), and a chat
/// template of my own in the 3.1 manner (its "Environment: ipython" system turn); as a Hugging Face folder and as the GGUF
/// SharpLM converts it to (whose only EOS is tokenizer_config's <c>&lt;|eot_id|&gt;</c>, as llama.cpp's converter
/// writes it). Built on first use; the tests skip when the asset is missing.
/// </summary>
public sealed class Llama31Model : IDisposable
{
    public const int Eom = 128008, Eot = 128009, PythonTag = 128010;

    public static readonly string[] TokenizerAsset = ["npm", "tokenizer-llama3", "models", "tokenizer.json"];

    private const string Template = """
        {{- bos_token }}
        {%- if tools %}<|start_header_id|>system<|end_header_id|>

        Environment: ipython
        Tools: brave_search

        Call brave_search as <|python_tag|>brave_search.call(query="..."), any other function as {"name": ..., "parameters": ...}.
        {% for t in tools %}{{ t | tojson }}
        {% endfor %}<|eot_id|>
        {%- endif %}
        {%- for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>

        {{ m.content }}<|eot_id|>
        {%- endfor %}
        {%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

        {% endif %}
        """;

    private readonly Lazy<(string Dir, string Hf, string Gguf)> _made = new(Make);

    /// <summary>The Hugging Face folder ("hf") or the GGUF file ("gguf").</summary>
    public string Path(string kind) => kind == "hf" ? _made.Value.Hf : _made.Value.Gguf;

    /// <summary>Meta's Llama 3 tokenizer.json turned into Llama 3.1's: its reserved special tokens 128008 and 128010
    /// renamed as the 3.1 release names them (they stay special).</summary>
    public static string Llama31TokenizerJson()
    {
        var json = JsonNode.Parse(File.ReadAllText(TestPaths.Asset(TokenizerAsset)))!;
        int renamed = 0;
        foreach (var t in json["added_tokens"]!.AsArray())
        {
            string? name = (int)t!["id"]! switch { Eom => "<|eom_id|>", PythonTag => "<|python_tag|>", _ => null };
            if (name is null) continue;
            Assert.StartsWith("<|reserved_special_token_", (string)t["content"]!, StringComparison.Ordinal);
            Assert.True((bool)t["special"]!);
            t["content"] = name;
            renamed++;
        }
        Assert.Equal(2, renamed);
        return json.ToJsonString();
    }

    private static (string, string, string) Make()
    {
        var dir = TestPaths.NewTempDir("llama31");
        var tokenizer = System.IO.Path.Combine(dir, "llama31-tokenizer.json");
        File.WriteAllText(tokenizer, Llama31TokenizerJson());
        var hf = TinyHf.Create(System.IO.Path.Combine(dir, "hf"), "llama", tied: true, llama3Tokenizer: tokenizer, eos: [128001, Eom, Eot]);
        File.WriteAllText(System.IO.Path.Combine(hf, "tokenizer_config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = "<|eot_id|>",
            ["chat_template"] = Template,
        }));
        File.WriteAllText(System.IO.Path.Combine(hf, "generation_config.json"), """{"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "do_sample": true}""");
        var gguf = System.IO.Path.Combine(dir, "llama31.gguf");
        using (var folder = HfModelFolder.Open(hf))
            HfToGguf.Build(folder, new HfToGguf.Options(QuantFileType.Parse("bf16"))).Write(gguf);
        return (dir, hf, gguf);
    }

    public void Dispose()
    {
        if (_made.IsValueCreated) Directory.Delete(_made.Value.Dir, recursive: true);
    }
}

/// <summary>
/// Llama 3.1's real token streams through the server (<see cref="Llama31Model"/>): <c>&lt;|python_tag|&gt;</c> comes
/// as ONE special token, id 128010, whose text the call reader must see (it is a special token, which decoding skips:
/// the server keeps its tool-call format's tags, as llama.cpp keeps a format's preserved tokens, so the call grammar may
/// write it as the one token a real model writes, and the reader reads it); <c>&lt;|eom_id|&gt;</c> (what Llama 3.1
/// writes after such a call) ends the turn as <c>&lt;|eot_id|&gt;</c> does, from the metadata that lists it or, in a GGUF
/// that lists only <c>&lt;|eot_id|&gt;</c>, by its name, as llama.cpp's end-of-generation set takes it. The model is
/// steered as elsewhere: tool_choice "required" (the call's grammar) and logit_bias.
/// </summary>
public sealed class Llama31TokenStreamTests(Llama31Model model) : IClassFixture<Llama31Model>
{
    private const string BraveSchema = """{"type":"object","properties":{"query":{"type":"string","enum":["weather in Paris"]}},"required":["query"]}""";

    private async Task<(TestServer Server, ChatClient Chat)> StartAsync(string kind)
    {
        var s = await TestServer.StartAsync(TestServer.Defaults with { Model = model.Path(kind), ModelAliases = ["default"], Parallel = 2 });
        return (s, new ChatClient("default", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = s.V1, NetworkTimeout = TimeSpan.FromMinutes(2) }));
    }

    private static ChatCompletionOptions Options(int max, params (int Id, int Bias)[] bias)
    {
        var o = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = max };
        foreach (var (id, b) in bias) o.LogitBiases[id] = b;
        return o;
    }

    private static ChatTool Brave => ChatTool.CreateFunctionTool("brave_search", "Searches the web", BinaryData.FromString(BraveSchema));

    /// <summary>Meta's tokenizer reads "&lt;|python_tag|&gt;" in text as the one special token 128010; the server's
    /// decoder writes it back (the Llama 3 format's tag) while it still skips every other special token, and is the
    /// tokenizer's own decode otherwise.</summary>
    [AssetFact("npm", "tokenizer-llama3", "models", "tokenizer.json")]
    public void The_servers_decoder_writes_the_python_tag_and_skips_the_other_special_tokens()
    {
        var tokenizer = Tokenizers.Tokenizer.FromJson(Llama31Model.Llama31TokenizerJson());
        var codec = SharpLM.Models.ModelTokenizers.FromTokenizer(tokenizer);
        var ids = tokenizer.EncodeToIds("<|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>brave_search.call(query=\"Zürich\")<|eom_id|>", addSpecialTokens: false);
        Assert.Equal([128006, 128007, Llama31Model.PythonTag, Llama31Model.Eom], ids.Where(id => id >= 128000));
        var decoder = codec.Keeping(SharpLM.Server.Chat.ToolCalls.Tags(SharpLM.Server.Chat.ToolCallFormat.Llama3));
        Assert.Equal("assistant\n\n<|python_tag|>brave_search.call(query=\"Zürich\")", decoder.Decode(ids));
        Assert.Equal("assistant\n\nbrave_search.call(query=\"Zürich\")", codec.Decode(ids));
        int[] plain = [.. ids.Where(id => id < 128000)];
        Assert.Equal(codec.Decode(plain), decoder.Decode(plain));
        Assert.Same(codec, codec.Keeping(["<|not a token|>", "brave"])); // nothing special to keep: the decoder itself
    }

    [AssetTheory("npm", "tokenizer-llama3", "models", "tokenizer.json")]
    [InlineData("hf")]
    [InlineData("gguf")]
    public async Task Python_tag_comes_as_one_special_token_and_opens_the_call_streamed_and_whole(string kind)
    {
        var (s, chat) = await StartAsync(kind);
        await using var _ = s;
        // the call's grammar allows the special token where "<|python_tag|>" is to be written, and the bias picks it
        var o = Options(60, (Llama31Model.PythonTag, 100));
        o.ToolChoice = ChatToolChoice.CreateRequiredChoice();
        o.Tools.Add(Brave);
        o.IncludeLogProbabilities = true;
        List<OpenAI.Chat.ChatMessage> msgs = [new UserChatMessage("Weather in Paris?")];

        ChatCompletion whole = await chat.CompleteChatAsync(msgs, o);
        var tokens = whole.ContentTokenLogProbabilities;
        Assert.Equal("<|python_tag|>", tokens[0].Token);                     // one token...
        Assert.Equal(Encoding.UTF8.GetBytes("<|python_tag|>"), tokens[0].Utf8Bytes?.ToArray());
        Assert.Equal("brave_search.call(query=\"weather in Paris\")", string.Concat(tokens.Skip(1).Select(t => t.Token))); // ...then the call in ordinary tokens
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, whole.FinishReason);
        var call = Assert.Single(whole.ToolCalls);
        Assert.Equal(("brave_search", """{"query":"weather in Paris"}"""), (call.FunctionName, call.FunctionArguments.ToString()));
        Assert.True(whole.Content.All(p => p.Text.Length == 0), "content beside the call");

        o.IncludeLogProbabilities = false;
        var args = new StringBuilder();
        var content = new StringBuilder();
        string? name = null;
        OpenAI.Chat.ChatFinishReason? finish = null;
        await foreach (var u in chat.CompleteChatStreamingAsync(msgs, o))
        {
            foreach (var p in u.ContentUpdate) content.Append(p.Text);
            foreach (var t in u.ToolCallUpdates)
            {
                name ??= t.FunctionName;
                args.Append(t.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= u.FinishReason;
        }
        Assert.Equal(("brave_search", call.FunctionArguments.ToString(), ""), (name, args.ToString(), content.ToString()));
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, finish);
    }

    /// <summary>The model writes <c>&lt;|eom_id|&gt;</c> first (logit_bias): the turn ends there, with nothing, as at
    /// <c>&lt;|eot_id|&gt;</c>; the HF folder lists it in config.json, the GGUF does not (its EOS is eot only).</summary>
    [AssetTheory("npm", "tokenizer-llama3", "models", "tokenizer.json")]
    [InlineData("hf", Llama31Model.Eom)]
    [InlineData("gguf", Llama31Model.Eom)]
    [InlineData("hf", Llama31Model.Eot)]
    [InlineData("gguf", Llama31Model.Eot)]
    public async Task Eom_ends_the_turn_as_eot_does(string kind, int id)
    {
        var (s, chat) = await StartAsync(kind);
        await using var _ = s;
        var o = Options(6, (id, 100));
        o.Tools.Add(Brave);
        ChatCompletion c = await chat.CompleteChatAsync([new UserChatMessage("Weather in Paris?")], o);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, c.FinishReason);
        Assert.Equal(0, c.Usage.OutputTokenCount);
        Assert.Empty(c.ToolCalls);
        // without the bias the random model rambles to max_tokens: the stop was the token's
        ChatCompletion free = await chat.CompleteChatAsync([new UserChatMessage("Weather in Paris?")], Options(6, (id, -100), (Llama31Model.Eot, -100), (Llama31Model.Eom, -100)));
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, free.FinishReason);
    }

    /// <summary>generation_config.json's eos_token_id ends generation too (transformers generates with it): a folder whose
    /// config.json lists only 128001 and 128009 stops /v1/completions (which stops at the model's EOS only) at 128008.</summary>
    [AssetFact("npm", "tokenizer-llama3", "models", "tokenizer.json")]
    public async Task Generation_config_eos_ids_end_generation()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var folder = System.IO.Path.Combine(dir, "hf");
            Directory.CreateDirectory(folder);
            foreach (var f in Directory.GetFiles(model.Path("hf")))
                File.Copy(f, System.IO.Path.Combine(folder, System.IO.Path.GetFileName(f)));
            var config = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(folder, "config.json")))!;
            config["eos_token_id"] = new JsonArray(128001, Llama31Model.Eot);
            File.WriteAllText(System.IO.Path.Combine(folder, "config.json"), config.ToJsonString());
            await using var s = await TestServer.StartAsync(TestServer.Defaults with { Model = folder, ModelAliases = ["default"], Parallel = 1 });
            string Body(int bias) => $$$"""{"model":"default","prompt":"The weather","max_tokens":6,"temperature":0,"logit_bias":{"{{{Llama31Model.Eom}}}":{{{bias}}}}}""";
            var (status, r) = await s.PostAsync("v1/completions", Body(100));
            Assert.Equal(200, status);
            Assert.Equal("stop", r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
            Assert.Equal(0, r.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            (_, r) = await s.PostAsync("v1/completions", Body(-100));
            Assert.Equal("length", r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>max_tokens cuts code the model writes after <c>&lt;|python_tag|&gt;</c> (tool_choice auto: nothing
    /// constrains it, the bias makes every token the tag, so the text after the first is code): the code is not a call,
    /// its text is the content, whole and streamed, with finish_reason "length".</summary>
    [AssetFact("npm", "tokenizer-llama3", "models", "tokenizer.json")]
    public async Task Code_cut_by_max_tokens_is_content_not_a_call()
    {
        var (s, chat) = await StartAsync("hf");
        await using var _ = s;
        var o = Options(3, (Llama31Model.PythonTag, 100));
        o.Tools.Add(Brave);
        List<OpenAI.Chat.ChatMessage> msgs = [new UserChatMessage("Weather in Paris?")];
        const string text = "<|python_tag|><|python_tag|><|python_tag|>";

        ChatCompletion whole = await chat.CompleteChatAsync(msgs, o);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, whole.FinishReason);
        Assert.Empty(whole.ToolCalls);
        Assert.Equal(text, string.Concat(whole.Content.Select(p => p.Text)));

        var content = new StringBuilder();
        string? name = null;
        OpenAI.Chat.ChatFinishReason? finish = null;
        await foreach (var u in chat.CompleteChatStreamingAsync(msgs, o))
        {
            foreach (var p in u.ContentUpdate) content.Append(p.Text);
            foreach (var t in u.ToolCallUpdates) name ??= t.FunctionName;
            finish ??= u.FinishReason;
        }
        Assert.Equal(text, content.ToString());
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, finish);
        Assert.Equal("python", name); // the code had begun to stream as a call of python; cut, it never finished
    }
}

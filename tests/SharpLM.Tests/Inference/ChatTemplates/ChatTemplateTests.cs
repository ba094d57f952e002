using SharpLM.Inference.ChatTemplates;
using SharpLM.Testing;
using Xunit;

namespace SharpLM.Tests.Inference.ChatTemplates;

/// <summary>
/// Rendered prompts of real chat templates. Each expected string was derived by hand from the template text and
/// Jinja2's rules with Hugging Face's settings (trim_blocks, lstrip_blocks), and agrees with the formats the model
/// cards document (e.g. Llama-3 "&lt;|begin_of_text|&gt;&lt;|start_header_id|&gt;system&lt;|end_header_id|&gt;\n\n...&lt;|eot_id|&gt;").
/// </summary>
public class ChatTemplateTests
{
    private static ChatTemplate Fixture(string name) =>
        ChatTemplate.Parse(File.ReadAllText(Path.Combine(TestPaths.TestData, "chat-templates", name)));

    private static readonly Dictionary<string, object?> LlamaTokens = new() { ["bos_token"] = "<s>", ["eos_token"] = "</s>" };

    private static void Same(string expected, string actual)
    {
        if (expected == actual) return;
        int i = 0;
        while (i < Math.Min(expected.Length, actual.Length) && expected[i] == actual[i]) i++;
        Assert.Fail($"first difference at char {i}:\nexpected: {Escape(expected[i..])}\nactual:   {Escape(actual[i..])}\nfull actual: {Escape(actual)}");
    }

    private static string Escape(string s) => s.Replace("\n", "\\n", StringComparison.Ordinal);

    [Fact]
    public void Llama2Chat_SystemFoldedIntoFirstUserTurn()
    {
        var t = Fixture("llama2-chat.jinja");
        string got = t.Render([new("system", "You are helpful."), new("user", "Hi"), new("assistant", "Hello!"), new("user", "How are you?")], false, LlamaTokens);
        Same("<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] How are you? [/INST]", got);
        // without a system message; content.strip() trims
        Same("<s>[INST] Hi there [/INST]", t.Render([new("user", "  Hi there \n")], true, LlamaTokens));
    }

    [Fact]
    public void Llama2Chat_RaisesOnBadAlternation()
    {
        var t = Fixture("llama2-chat.jinja");
        var e = Assert.Throws<ChatTemplateException>(() => t.Render([new("user", "a"), new("user", "b")], false, LlamaTokens));
        Assert.Contains("Conversation roles must alternate user/assistant/user/assistant/...", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, e.Line);
    }

    [Fact]
    public void Llama3Instruct_HeadersAndGenerationPrompt()
    {
        var t = Fixture("llama3-instruct.jinja");
        var extra = new Dictionary<string, object?> { ["bos_token"] = "<|begin_of_text|>" };
        List<ChatTurn> msgs = [new("system", "You are helpful."), new("user", " Hi \n")];
        Same("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
             + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            t.Render(msgs, true, extra));
        Same("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
             + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
            t.Render(msgs, false, extra));
    }

    [Fact]
    public void Llama3_FromTheAssetTokenizerConfig()
    {
        // this tokenizer_config.json's template always appends the assistant header (no add_generation_prompt test)
        var t = ChatTemplate.FromTokenizerConfig(File.ReadAllText(TestPaths.Asset("npm", "tokenizer-llama3", "models", "tokenizer_config.json")));
        Assert.Equal("<|begin_of_text|>", t.BosToken);
        Same("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            t.Render([new("user", "What is 2+2?")], false));
    }

    [Fact]
    public void MistralInstruct()
    {
        var t = Fixture("mistral-instruct.jinja");
        Same("<s>[INST] Hi [/INST]Hello!</s>[INST] How are you? [/INST]",
            t.Render([new("user", "Hi"), new("assistant", "Hello!"), new("user", "How are you?")], true, LlamaTokens));
        var e = Assert.Throws<ChatTemplateException>(() => t.Render([new("system", "x")], true, LlamaTokens));
        Assert.Contains("alternate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChatMl()
    {
        var t = Fixture("chatml.jinja");
        Same("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            t.Render([new("system", "Be brief."), new("user", "Hi")], true));
        Same("<|im_start|>user\nHi<|im_end|>\n", t.Render([new("user", "Hi")], false));
    }

    [Fact]
    public void TinyLlama_TrimBlocksKeepsTheNewlineAfterOutputTags()
    {
        var t = Fixture("tinyllama-chat.jinja");
        Same("<|system|>\nYou are a friendly chatbot</s>\n<|user|>\nHi</s>\n<|assistant|>\n",
            t.Render([new("system", "You are a friendly chatbot"), new("user", "Hi")], true, LlamaTokens));
        Same("<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n",
            t.Render([new("user", "Hi"), new("assistant", "Hello")], false, LlamaTokens));
    }

    [Fact]
    public void Qwen25_DefaultSystemPrompt_AndTools()
    {
        var t = Fixture("qwen2.5-instruct.jinja");
        Same("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            t.Render([new("user", "Hi")], true));
        Same("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
            t.Render([new("system", "Be brief."), new("user", "Hi")], false));

        var tool = new Dictionary<string, object?>
        {
            ["type"] = "function",
            ["function"] = new Dictionary<string, object?>
            {
                ["name"] = "get_weather",
                ["description"] = "Weather in a city, e.g. \"Zürich\"",
                ["parameters"] = new Dictionary<string, object?> { ["type"] = "object", ["required"] = new[] { "city" } },
            },
        };
        string got = t.Render([new("user", "Weather?")], true, new Dictionary<string, object?> { ["tools"] = new[] { tool } });
        Same("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
             + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
             + "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather in a city, e.g. \\\"Zürich\\\"\", \"parameters\": {\"type\": \"object\", \"required\": [\"city\"]}}}"
             + "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
             + "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n", got);
    }

    private static ChatTemplate Qwen3() =>
        ChatTemplate.FromTokenizerConfig(File.ReadAllText(TestPaths.Asset("npm", "tokenizer-qwen3", "models", "tokenizer_config.json")));

    [Fact]
    public void Qwen3_FromTheAssetTokenizerConfig()
    {
        var t = Qwen3();
        Same("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            t.Render([new("system", "Be brief."), new("user", "Hi")], true));
        Same("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
            t.Render([new("user", "Hi")], true, new Dictionary<string, object?> { ["enable_thinking"] = false }));
    }

    [Fact]
    public void Qwen3_ThinkingIsDroppedFromEarlierTurns_KeptAfterTheLastQuery()
    {
        var t = Qwen3();
        Same("<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n2<|im_end|>\n<|im_start|>user\nand 2+2?<|im_end|>\n<|im_start|>assistant\n",
            t.Render([new("user", "1+1?"), new("assistant", "<think>\nadd\n</think>\n\n2"), new("user", "and 2+2?")], true));
        Same("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n",
            t.Render([new("user", "q"), new("assistant", "<think>\nr\n</think>\n\na")], false));
    }

    [Fact]
    public void Qwen3_ToolResponsesGroupIntoOneUserTurn()
    {
        var t = Qwen3();
        string got = t.Render([new("user", "w?"), new("assistant", "calling"), new("tool", "{\"t\": 20}"), new("tool", "{\"t\": 21}")], true);
        Same("<|im_start|>user\nw?<|im_end|>\n<|im_start|>assistant\ncalling<|im_end|>\n"
             + "<|im_start|>user\n<tool_response>\n{\"t\": 20}\n</tool_response>\n<tool_response>\n{\"t\": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n", got);
    }
}

public class ChatTemplateRichMessageTests
{
    [Fact]
    public void Qwen25_AssistantToolCalls_FromDictionaryMessages()
    {
        var t = ChatTemplate.Parse(File.ReadAllText(Path.Combine(TestPaths.TestData, "chat-templates", "qwen2.5-instruct.jinja")));
        var call = new Dictionary<string, object?>
        {
            ["type"] = "function",
            ["function"] = new Dictionary<string, object?> { ["name"] = "get_weather", ["arguments"] = new Dictionary<string, object?> { ["city"] = "Paris" } },
        };
        var messages = new List<IReadOnlyDictionary<string, object?>>
        {
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = "Weather in Paris?" },
            new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = "", ["tool_calls"] = new[] { call } },
            new Dictionary<string, object?> { ["role"] = "tool", ["content"] = "{\"t\": 20}" },
        };
        // by hand from the template: the assistant turn has no content line, then one <tool_call> block whose
        // arguments go through tojson; the tool result opens a user turn with <tool_response>
        Assert.Equal("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                     + "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
                     + "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
                     + "<|im_start|>user\n<tool_response>\n{\"t\": 20}\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
            t.RenderMessages(messages, true));
    }
}

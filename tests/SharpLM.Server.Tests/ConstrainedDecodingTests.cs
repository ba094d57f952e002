using System.Text;
using System.Text.Json;
using Json.Schema;
using SharpLM.Inference.Constrained;
using Xunit.Abstractions;

namespace SharpLM.Server.Tests;

/// <summary>
/// Constrained decoding (SharpLM.Inference.Constrained): whatever tokens a model prefers, the output parses and
/// validates against the schema (checked by JsonSchema.Net, a validator written elsewhere), and it closes within its
/// token budget. Random walks over a made-up vocabulary, then the real default model through the server.
/// </summary>
[Collection("server")]
public sealed class ConstrainedDecodingTests(ServerFixture fixture, ITestOutputHelper output)
{
    public static readonly string[] Schemas =
    [
        """{"type":"object","properties":{"name":{"type":"string","minLength":1,"maxLength":12},"age":{"type":"integer","minimum":18,"maximum":99},"email":{"type":"string"}},"required":["name","age"],"additionalProperties":false}""",
        """{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","maxLength":6},"qty":{"type":"integer","minimum":1,"maximum":9},"price":{"type":"number"}},"required":["sku","qty"]},"minItems":1,"maxItems":3},"status":{"enum":["open","paid","shipped"]}},"required":["items","status"]}""",
        """{"type":"array","items":{"type":["number","null","boolean"]},"minItems":2,"maxItems":5}""",
        """{"anyOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number","exclusiveMinimum":0,"maximum":100}},"required":["kind","r"],"additionalProperties":false},{"type":"object","properties":{"kind":{"const":"square"},"side":{"type":"integer","minimum":-5,"maximum":5}},"required":["kind","side"],"additionalProperties":false}]}""",
        """{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"],"additionalProperties":false}},"$ref":"#/$defs/node"}""",
        """{"type":"object","properties":{"title":{"type":"string","maxLength":20},"tags":{"type":"array","items":{"type":"string","enum":["a","b","c"]},"maxItems":3},"meta":{"type":"object"},"score":{"type":["number","null"]}},"required":["title","tags","meta"]}""",
        """{"type":"object","properties":{"point":{"type":"array","prefixItems":[{"type":"number"},{"type":"number"}],"items":false,"minItems":2}},"required":["point"],"additionalProperties":false}""",
        """{"type":"string","enum":["yes","no","maybe \"so\""]}""",
    ];

    /// <summary>A vocabulary of single chars, JSON fragments and words, so walks take multi-char steps too.</summary>
    private static TokenVocabulary Vocabulary()
    {
        var texts = new List<string> { "" }; // 0: EOS
        for (char c = ' '; c <= '~'; c++) texts.Add(c.ToString());
        texts.AddRange(["\n", "\t", "é", "中", "\\n", "\\u00e9", "{\"", "\":", "\",", "\"}", "},", "[{", "}]", "],", ", \"", "\": \"", "true", "false", "null", "nul",
                        "name", "age", "items", "sku", "qty", "status", "open", "paid", "kind", "circle", "square", "next", "tags", "title", "meta",
                        "123", "0.5", "-1", "e+1", "  ", "\n  ", "\n\n", "the", " jury", "said", "42", "99", "100", "\"a\"", "point"]);
        return TokenVocabulary.FromTexts([.. texts], [0]);
    }

    [Fact]
    public void Random_walks_always_end_in_valid_json_within_the_budget_and_mask_agrees_with_allows()
    {
        var vocab = Vocabulary();
        var rng = new Random(1234);
        int walks = 0, lengthEnds = 0;
        foreach (var schemaText in Schemas)
        {
            using var schemaDoc = JsonDocument.Parse(schemaText);
            var grammar = JsonSchemaCompiler.Compile(schemaDoc.RootElement);
            var validator = JsonSchema.FromText(schemaText);
            for (int w = 0; w < 40; w++)
            {
                int budget = grammar.MinChars + rng.Next(0, 80);
                var con = new TokenConstraint(vocab, grammar, leadingWhitespace: true);
                var text = new StringBuilder();
                var logits = new float[vocab.Size];
                int used = 0;
                bool ended = false;
                while (used < budget)
                {
                    if (con.IsDone) { ended = true; break; }
                    Array.Clear(logits);
                    int left = budget - used - 1;
                    int allowed = con.Mask(logits, left);
                    Assert.True(allowed > 0, $"nothing allowed after '{text}' with {left + 1} tokens left ({schemaText})");
                    if (w < 3) // the trie walk of Mask agrees with checking tokens one by one
                        for (int id = 0; id < vocab.Size; id++)
                            Assert.Equal(con.Allows(id, left), !float.IsNegativeInfinity(logits[id]));
                    var ids = Enumerable.Range(0, vocab.Size).Where(i => !float.IsNegativeInfinity(logits[i])).ToArray();
                    // prefer EOS when allowed now and then, else a random allowed token
                    int pick = con.CanEnd && ids.Contains(0) && rng.Next(4) == 0 ? 0 : ids[rng.Next(ids.Length)];
                    con.Accept(pick);
                    used++;
                    if (pick == 0) { ended = true; break; }
                    text.Append(vocab.Texts[pick]);
                }
                if (!ended) { Assert.True(con.CanEnd, $"the budget ran out before '{text}' could end ({schemaText})"); lengthEnds++; }
                using var doc = JsonDocument.Parse(text.ToString());
                var result = validator.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
                Assert.True(result.IsValid, $"'{text}' does not validate against {schemaText}");
                walks++;
            }
        }
        output.WriteLine($"{walks} random walks over {Schemas.Length} schemas valid ({lengthEnds} ended exactly at their budget)");
    }

    [Fact]
    public void Unsupported_schema_keywords_are_refused_naming_the_keyword()
    {
        foreach (var (schema, keyword) in new[]
        {
            ("""{"type":"string","pattern":"^a$"}""", "pattern"),
            ("""{"type":"array","uniqueItems":true}""", "uniqueItems"),
            ("""{"type":"number","multipleOf":0.5}""", "multipleOf"),
            ("""{"not":{"type":"string"}}""", "not"),
            ("""{"type":"integer","minimum":5,"maximum":4}""", "minimum"),
            ("""{"$ref":"#/$defs/missing"}""", "$ref"),
        })
        {
            using var doc = JsonDocument.Parse(schema);
            var e = Assert.Throws<SharpLM.Inference.Constrained.JsonSchemaException>(() => JsonSchemaCompiler.Compile(doc.RootElement));
            Assert.Contains(keyword, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_default_model_answers_every_schema_with_valid_json_greedy_and_sampled()
    {
        var s = fixture.Server;
        int n = 0;
        foreach (var schemaText in Schemas)
        {
            var validator = JsonSchema.FromText(schemaText);
            foreach (var sampling in new[] { "\"temperature\":0", "\"temperature\":1,\"seed\":11", "\"temperature\":1.5,\"top_k\":0,\"top_p\":1,\"min_p\":0,\"seed\":5" })
            {
                var body = "{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"Answer in JSON\"}],\"max_tokens\":300," + sampling
                         + ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s\",\"schema\":" + schemaText + "}}}";
                var (status, r) = await s.PostAsync("v1/chat/completions", body);
                Assert.Equal(200, status);
                var text = r.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
                using var doc = JsonDocument.Parse(text);
                Assert.True(validator.Evaluate(doc.RootElement).IsValid, $"'{text}' does not validate against {schemaText}");
                Assert.Equal("stop", r.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
                n++;
            }
        }
        // json_object mode and Ollama's format
        var (st, jo) = await s.PostAsync("v1/chat/completions", """{"model":"default","messages":[{"role":"user","content":"JSON please"}],"max_tokens":200,"temperature":1,"seed":3,"response_format":{"type":"json_object"}}""");
        Assert.Equal(200, st);
        using (var d = JsonDocument.Parse(jo.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!))
            Assert.Equal(JsonValueKind.Object, d.RootElement.ValueKind);
        var (so, ol) = await s.PostAsync("api/chat", "{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"JSON\"}],\"stream\":false,\"format\":" + Schemas[0]
                                                       + ",\"options\":{\"num_predict\":200,\"temperature\":0.9,\"seed\":8}}");
        Assert.Equal(200, so);
        using (var d = JsonDocument.Parse(ol.GetProperty("message").GetProperty("content").GetString()!))
            Assert.True(JsonSchema.FromText(Schemas[0]).Evaluate(d.RootElement).IsValid);
        output.WriteLine($"{n} constrained answers from the default model validate");
    }
}

using SharpLM.Sizing;
using Xunit;

namespace SharpLM.Tests.Sizing;

public class HfConfigTests
{
    private static InvalidDataException Bad(string json) =>
        Assert.Throws<InvalidDataException>(() => HfConfig.Parse(json, "test/config.json"));

    [Fact]
    public void UnknownModelType_NamesTheValueAndTheSupportedOnes()
    {
        var e = Bad("""{"model_type":"t5","d_model":512}""");
        Assert.Contains("'model_type' \"t5\"", e.Message, StringComparison.Ordinal);
        Assert.Contains("llama", e.Message, StringComparison.Ordinal);
        Assert.Contains("test/config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("'model_type'", Bad("""{"hidden_size":4}""").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingField_IsNamed()
    {
        var e = Bad("""{"model_type":"llama","vocab_size":10,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":8}""");
        Assert.Contains("'hidden_size'", e.Message, StringComparison.Ordinal);
        e = Bad("""{"model_type":"gpt2","vocab_size":10,"n_layer":2,"n_head":2,"n_positions":8}""");
        Assert.Contains("'n_embd'", e.Message, StringComparison.Ordinal);
        e = Bad("""{"model_type":"albert","vocab_size":10,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":8,"max_position_embeddings":8}""");
        Assert.Contains("'embedding_size'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("num_hidden_layers", -2)]
    [InlineData("hidden_size", 0)]
    [InlineData("vocab_size", -1)]
    [InlineData("num_key_value_heads", -4)]
    [InlineData("intermediate_size", -8)]
    public void NegativeOrZeroSizes_NameTheField(string field, long value)
    {
        var fields = new Dictionary<string, long>
        {
            ["vocab_size"] = 100, ["hidden_size"] = 64, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 128,
        };
        fields[field] = value;
        string json = "{\"model_type\":\"llama\"," + string.Join(",", fields.Select(kv => $"\"{kv.Key}\":{kv.Value}")) + "}";
        var e = Bad(json);
        Assert.Contains($"'{field}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(value.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongTypes_AndBrokenJson_AreClear()
    {
        Assert.Contains("'hidden_size' must be an integer", Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":"big"}""").Message, StringComparison.Ordinal);
        Assert.Contains("'tie_word_embeddings' must be true or false",
            Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"tie_word_embeddings":"yes"}""").Message,
            StringComparison.Ordinal);
        Assert.Contains("not valid JSON", Bad("""{"model_type": """).Message, StringComparison.Ordinal);
        Assert.Contains("not a multiple", Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":10,"num_hidden_layers":1,"num_attention_heads":3,"intermediate_size":8}""").Message, StringComparison.Ordinal);
        Assert.Contains("'num_attention_heads' 4 is not a multiple of 'num_key_value_heads' 3",
            Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"intermediate_size":8}""").Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_AndOptionalFields()
    {
        var a = HfConfig.Parse("""{"model_type":"llama","vocab_size":10,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,"intermediate_size":8,"head_dim":null}""", "x");
        Assert.Equal(8, a.KvHeads);      // num_key_value_heads defaults to num_attention_heads
        Assert.Equal(8, a.HeadDim);      // h / NH
        Assert.False(a.TiedEmbeddings);
        var g = HfConfig.Parse("""{"model_type":"gpt2","vocab_size":10,"n_embd":64,"n_layer":2,"n_head":8,"n_positions":32,"n_inner":null}""", "x");
        Assert.Equal(256, g.Intermediate); // n_inner null -> 4h
        Assert.True(g.TiedEmbeddings);
        var b = HfConfig.Parse("""{"model_type":"llama","vocab_size":10,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,"intermediate_size":8,"attention_bias":true,"mlp_bias":true}""", "x");
        Assert.True(b.QkvBias && b.OutBias && b.MlpBias);
        var p = new ParameterCount(b);
        Assert.Equal("4h² + 4h", p.AttentionFormula);
    }
}

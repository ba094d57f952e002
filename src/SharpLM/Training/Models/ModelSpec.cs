using System.Text.Json.Nodes;

namespace SharpLM.Training.Models;

/// <summary>
/// Architecture and shape of a model to train: everything needed to rebuild it from a checkpoint.
/// Arch: "llama" or "gpt2". KvHeads and TiedEmbeddings apply to LLaMA (GPT-2 always ties its head).
/// </summary>
internal sealed record ModelSpec(string Arch, int Vocab, int Dim, int Layers, int Heads, int KvHeads, int Ffn, int Context,
                                 bool TiedEmbeddings = true, double RopeTheta = 10000, double NormEps = 1e-5)
{
    public static readonly string[] Archs = ["llama", "gpt2", "bert"];

    /// <summary>BERT: the last vocabulary id is [MASK]; the loss is masked-LM.</summary>
    public bool IsMlm => Arch == "bert";

    public ITrainModel<float> Create() => Arch switch
    {
        "llama" => new LlamaTrainer<float>(new LlamaTrainConfig(Vocab, Dim, Layers, Heads, KvHeads, Ffn, Context, RopeTheta, NormEps, TiedEmbeddings)),
        "gpt2" => new Gpt2Trainer<float>(new Gpt2TrainConfig(Vocab, Dim, Layers, Heads, Ffn, Context, NormEps)),
        "bert" => new BertMlmTrainer<float>(new BertMlmConfig(Vocab, Dim, Layers, Heads, Ffn, Context, NormEps)),
        _ => throw new ArgumentException($"unknown architecture '{Arch}': expected one of {string.Join(", ", Archs)}"),
    };

    public static void Initialize(ITrainModel<float> m, ulong seed)
    {
        switch (m)
        {
            case LlamaTrainer<float> l: l.Initialize(seed); break;
            case Gpt2Trainer<float> g: g.Initialize(seed); break;
            case BertMlmTrainer<float> b: b.Initialize(seed); break;
            default: throw new NotSupportedException(m.GetType().Name);
        }
    }

    /// <summary>A Hugging Face config.json (LlamaForCausalLM or GPT2LMHeadModel) plus the fields SharpLM reads back.</summary>
    public JsonObject ToHfConfig()
    {
        var o = Arch == "bert"
            ? new JsonObject
            {
                ["architectures"] = new JsonArray("BertForMaskedLM"),
                ["model_type"] = "bert",
                ["vocab_size"] = Vocab,
                ["hidden_size"] = Dim,
                ["intermediate_size"] = Ffn,
                ["num_hidden_layers"] = Layers,
                ["num_attention_heads"] = Heads,
                ["max_position_embeddings"] = Context,
                ["type_vocab_size"] = 2,
                ["layer_norm_eps"] = NormEps,
                ["hidden_act"] = "gelu",
                ["mask_token_id"] = Vocab - 1,
                ["torch_dtype"] = "float32",
            }
            : Arch == "llama"
            ? new JsonObject
            {
                ["architectures"] = new JsonArray("LlamaForCausalLM"),
                ["model_type"] = "llama",
                ["vocab_size"] = Vocab,
                ["hidden_size"] = Dim,
                ["intermediate_size"] = Ffn,
                ["num_hidden_layers"] = Layers,
                ["num_attention_heads"] = Heads,
                ["num_key_value_heads"] = KvHeads,
                ["head_dim"] = Dim / Heads,
                ["max_position_embeddings"] = Context,
                ["rms_norm_eps"] = NormEps,
                ["rope_theta"] = RopeTheta,
                ["hidden_act"] = "silu",
                ["tie_word_embeddings"] = TiedEmbeddings,
                ["attention_bias"] = false,
                ["mlp_bias"] = false,
                ["torch_dtype"] = "float32",
            }
            : new JsonObject
            {
                ["architectures"] = new JsonArray("GPT2LMHeadModel"),
                ["model_type"] = "gpt2",
                ["vocab_size"] = Vocab,
                ["n_embd"] = Dim,
                ["n_inner"] = Ffn,
                ["n_layer"] = Layers,
                ["n_head"] = Heads,
                ["n_positions"] = Context,
                ["n_ctx"] = Context,
                ["layer_norm_epsilon"] = NormEps,
                ["activation_function"] = "gelu_new",
                ["tie_word_embeddings"] = true,
                ["torch_dtype"] = "float32",
            };
        o["sharplm_spec"] = new JsonObject
        {
            ["arch"] = Arch, ["vocab"] = Vocab, ["dim"] = Dim, ["layers"] = Layers, ["heads"] = Heads, ["kv_heads"] = KvHeads,
            ["ffn"] = Ffn, ["context"] = Context, ["tied"] = TiedEmbeddings, ["rope_theta"] = RopeTheta, ["norm_eps"] = NormEps,
        };
        return o;
    }

    public static ModelSpec FromHfConfig(JsonNode config, string file)
    {
        var s = config["sharplm_spec"] ?? throw new InvalidDataException($"{file}: no 'sharplm_spec' object; it was not written by 'sharplm train'");
        T Get<T>(string k) => s[k] is JsonNode n ? n.GetValue<T>() : throw new InvalidDataException($"{file}: sharplm_spec.{k} is missing");
        return new ModelSpec(Get<string>("arch"), Get<int>("vocab"), Get<int>("dim"), Get<int>("layers"), Get<int>("heads"), Get<int>("kv_heads"),
                             Get<int>("ffn"), Get<int>("context"), Get<bool>("tied"), Get<double>("rope_theta"), Get<double>("norm_eps"));
    }

    /// <summary>Parameters a model of this shape has.</summary>
    public long ParameterCount() => Create().Parameters.Count;
}

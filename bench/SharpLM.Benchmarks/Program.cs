using BenchmarkDotNet.Running;

// Benchmarks compare SharpLM with its peers in the same run; results go to docs/BENCHMARKS.md.
// Run: dotnet run -c Release --project bench/SharpLM.Benchmarks -- --filter '*'
if (args.Length > 0 && args[0] == "encoders-quick") { SharpLM.Benchmarks.Encoders.EncoderQuickBench.Run(args[1..]); return; }
if (args.Length > 0 && args[0] == "micro-tune") { SharpLM.Benchmarks.Kernels.QuickKernelBench.MicroTune(); return; }
if (args.Length > 0 && args[0] == "attn-tune") { SharpLM.Benchmarks.Kernels.QuickKernelBench.AttnTune(args[1..]); return; }
if (args.Length > 0 && args[0] == "matrix-profile") { SharpLM.Benchmarks.Inference.MatrixProfile.Run(args[1..]); return; }
if (args.Length > 0 && args[0] == "decode-profile") { SharpLM.Benchmarks.Inference.DecodeRace.Profile(args[1..]); return; }
if (args.Length > 0 && args[0] == "decode-race") { SharpLM.Benchmarks.Inference.DecodeRace.Run(args[1..]); return; }
if (args.Length > 0 && args[0] == "matvec-tune") { SharpLM.Benchmarks.Kernels.QuickKernelBench.MatVecTune(args[1..]); return; }
if (args.Length > 0 && args[0] == "rows-tune") { SharpLM.Benchmarks.Kernels.QuickKernelBench.RowsTune(args[1..]); return; }
if (args.Length > 0 && args[0] == "dot-tune") { SharpLM.Benchmarks.Kernels.QuickKernelBench.DotTune(args[1..]); return; }
if (args.Length > 0 && args[0] == "gemm-tune") { SharpLM.Benchmarks.Kernels.QuickKernelBench.GemmTune(args[1..]); return; }
if (args.Length > 0 && args[0] == "gemm-small") { SharpLM.Benchmarks.Kernels.QuickKernelBench.GemmSmall(args[1..]); return; }
if (args.Length > 0 && args[0] == "kernels-quick") { SharpLM.Benchmarks.Kernels.QuickKernelBench.Run(args[1..]); return; }
// Tokenizers, alternating peers (noisy shared machine): dotnet run -c Release --project bench/SharpLM.Benchmarks -- tokenizer-race
if (args.Length > 0 && args[0] == "tokenizer-race") { SharpLM.Benchmarks.Tokenizers.TokenizerRace.Run(args[1..]); return; }
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

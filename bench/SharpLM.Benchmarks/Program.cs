using BenchmarkDotNet.Running;

// Benchmarks compare SharpLM with its peers in the same run; results go to docs/BENCHMARKS.md.
// Run: dotnet run -c Release --project bench/SharpLM.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

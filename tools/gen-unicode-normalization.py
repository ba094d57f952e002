#!/usr/bin/env python3
"""Writes src/SharpLM.Tokenizers/Normalizers/UnicodeNormalizationData.txt: the Unicode data SharpLM's managed
NFC/NFD/NFKC/NFKD needs (.NET's string.Normalize is a no-op under InvariantGlobalization).
Run: python3 tools/gen-unicode-normalization.py   (uses Python's unicodedata; its Unicode version goes in the header)
Lines: 'c CP CCC' canonical combining class; 'd CP X Y..' full canonical decomposition; 'k CP X Y..' full
compatibility decomposition (only where it differs from the canonical one); 'p A B C' primary composite A+B->C.
Hangul syllables are algorithmic and not listed."""
import sys, unicodedata

out = [f"# SHARPLM-UNORM 1 unicode {unicodedata.unidata_version}"]
def h(s): return " ".join(f"{ord(ch):X}" for ch in s)
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or 0xAC00 <= cp <= 0xD7A3:
        continue
    ch = chr(cp)
    ccc = unicodedata.combining(ch)
    if ccc:
        out.append(f"c {cp:X} {ccc}")
    nfd = unicodedata.normalize("NFD", ch)
    if nfd != ch:
        out.append(f"d {cp:X} {h(nfd)}")
    nfkd = unicodedata.normalize("NFKD", ch)
    if nfkd != nfd:
        out.append(f"k {cp:X} {h(nfkd)}")
    dec = unicodedata.decomposition(ch)
    if dec and not dec.startswith("<"):
        parts = [int(x, 16) for x in dec.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", ch) == ch:
            out.append(f"p {parts[0]:X} {parts[1]:X} {cp:X}")
path = "src/SharpLM.Tokenizers/Normalizers/UnicodeNormalizationData.txt"
open(path, "w", encoding="ascii").write("\n".join(out) + "\n")
print(path, len(out), "lines")

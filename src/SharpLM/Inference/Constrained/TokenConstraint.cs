namespace SharpLM.Inference.Constrained;

/// <summary>
/// Keeps one sequence's output inside a grammar, token by token. A token is allowed when every char of its text keeps
/// the grammar alive and the grammar can still be completed within the token budget: the shortest completion after the
/// token (<see cref="GrammarState.MinChars"/>, at most one token per char since every vocabulary here can spell an
/// ASCII char with one token) must fit the tokens left. So a constrained generation always ends complete, even from a
/// model that would ramble, unless its budget is smaller than the shortest valid output. EOS is allowed where the
/// grammar may end; other empty-text (special) tokens never are.
/// <para>Use: sample as usual; if <see cref="Allows"/> refuses the token, <see cref="Mask"/> the logits and sample
/// again (exact for greedy, and for sampling the result has the masked distribution); then <see cref="Accept"/>.</para>
/// </summary>
internal sealed class TokenConstraint
{
    private readonly TokenVocabulary _vocab;
    private List<GrammarState> _states;
    private readonly List<GrammarState> _a = [], _b = [];

    public TokenConstraint(TokenVocabulary vocab, GrammarNode root, bool leadingWhitespace = false)
    {
        _vocab = vocab;
        _states = [GrammarState.Start(root, leadingWhitespace)];
    }

    /// <summary>The grammar is complete and nothing may follow: end the sequence.</summary>
    public bool IsDone => _states.TrueForAll(s => s.IsDone);

    /// <summary>The grammar may end here (EOS allowed).</summary>
    public bool CanEnd => _states.Exists(s => s.IsAccepting);

    /// <summary>Chars the shortest completion still needs.</summary>
    public int MinChars
    {
        get
        {
            int m = int.MaxValue;
            foreach (var s in _states) m = Math.Min(m, s.MinChars);
            return m;
        }
    }

    /// <summary>Whether <paramref name="id"/> may come next when <paramref name="budgetAfter"/> tokens may follow it.</summary>
    public bool Allows(int id, int budgetAfter)
    {
        if ((uint)id >= (uint)_vocab.Size) return false;
        if (_vocab.Eos.Contains(id)) return CanEnd;
        var text = _vocab.Texts[id];
        if (text.Length == 0) return false;
        var states = Advance(_states, text, _a, _b);
        return Fits(states, budgetAfter);
    }

    private static bool Fits(List<GrammarState> states, int budget)
    {
        foreach (var s in states) if (s.MinChars <= budget) return true;
        return false;
    }

    /// <summary>Sets the logit of every token that <see cref="Allows"/> would refuse to -inf; returns how many are left.</summary>
    public int Mask(Span<float> logits, int budgetAfter)
    {
        int v = Math.Min(logits.Length, _vocab.Size);
        var allowed = new bool[v];
        int count = 0;
        bool canEnd = CanEnd;
        foreach (int e in _vocab.Eos)
            if (e < v && canEnd) { allowed[e] = true; count++; }

        // a walk over the ids sorted by text: states[d] are the states after the first d chars of the current text,
        // reused for the next text as far as the two share a prefix; a dead prefix skips every text that shares it
        var sorted = _vocab.Sorted;
        var common = _vocab.CommonPrefix;
        var levels = new List<List<GrammarState>> { _states };
        int valid = 0;                  // levels[0..valid] hold states for the current text's first chars
        int dead = int.MaxValue;        // the previous text died after this many chars
        for (int k = 0; k < sorted.Length; k++)
        {
            int id = sorted[k];
            string text = _vocab.Texts[id];
            int shared = k == 0 ? 0 : common[k];
            if (dead != int.MaxValue && shared >= dead) continue; // same dead prefix
            dead = int.MaxValue;
            valid = Math.Min(valid, shared);
            int d = valid;
            for (; d < text.Length; d++)
            {
                while (levels.Count <= d + 1) levels.Add([]);
                var next = levels[d + 1];
                next.Clear();
                foreach (var s in levels[d]) s.Step(text[d], next);
                if (next.Count == 0) break;
            }
            if (d < text.Length)
            {
                dead = d + 1;
                valid = d;
                continue;
            }
            valid = text.Length;
            if (id < v && !_vocab.Eos.Contains(id) && Fits(levels[text.Length], budgetAfter))
            {
                allowed[id] = true;
                count++;
            }
        }
        for (int i = 0; i < logits.Length; i++)
            if (i >= v || !allowed[i]) logits[i] = float.NegativeInfinity;
        return count;
    }

    /// <summary>Moves past <paramref name="id"/> (which must be allowed, EOS included).</summary>
    public void Accept(int id)
    {
        if (_vocab.Eos.Contains(id))
        {
            if (!CanEnd) throw new InvalidOperationException($"token {id} (end of sequence) is not allowed here");
            _states = [GrammarState.Done];
            return;
        }
        var next = Advance(_states, _vocab.Texts[id], _a, _b);
        if (next.Count == 0) throw new InvalidOperationException($"token {id} ({_vocab.Texts[id]}) does not fit the grammar here");
        _states = [.. next];
    }

    /// <summary>Feeds text that is already decided (e.g. the rest of a token after a tool-call trigger); false when the
    /// grammar refuses it (the state is then unchanged).</summary>
    public bool AcceptText(string text)
    {
        var next = Advance(_states, text, _a, _b);
        if (next.Count == 0) return false;
        _states = [.. next];
        return true;
    }

    private static List<GrammarState> Advance(List<GrammarState> from, string text, List<GrammarState> a, List<GrammarState> b)
    {
        var cur = from;
        foreach (char c in text)
        {
            var next = ReferenceEquals(cur, a) ? b : a;
            next.Clear();
            foreach (var s in cur) s.Step(c, next);
            if (next.Count == 0) return next;
            if (next.Count > 64) next.RemoveRange(64, next.Count - 64); // pathological ambiguity: keep the first
            cur = next;
        }
        if (ReferenceEquals(cur, from))
        {
            a.Clear();
            a.AddRange(from);
            return a;
        }
        return cur;
    }
}

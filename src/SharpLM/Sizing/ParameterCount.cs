using System.Globalization;
using SharpLM.Models;

namespace SharpLM.Sizing;

/// <summary>One parameter tensor family, summed over layers.</summary>
/// <param name="Name">the architecture table's calc component, e.g. "attention.q.weight"</param>
/// <param name="Group">embeddings, attention, mlp, norms, output_head or pooler</param>
/// <param name="Count">parameters in the whole model</param>
/// <param name="PerLayer">parameters in one layer (0 for tensors outside the layers)</param>
/// <param name="Formula">how Count was computed, symbols then numbers</param>
internal sealed record ParamComponent(string Name, string Group, long Count, long PerLayer, string Formula);

/// <summary>
/// A model's parameter count by component, read from its architecture table (<see cref="TensorTable"/>): every tensor
/// the configuration has, grouped by the table's calc component, each counted from its shape letters, so a new
/// architecture is sized by declaring its tensors and nothing else. The sum is what PyTorch's
/// <c>sum(p.numel() for p in model.parameters())</c> gives for the HF class (tied matrices counted once; buffers such
/// as position_ids or rotary inv_freq and task heads not counted). The formulas are derived from the same shapes:
/// each tensor is a product of dimension letters (h for the width C), like terms are collected, and the per-layer
/// summaries substitute NH·HS = h, KVH·HS = h and F = 4h where the configuration has them, which is how BERT's
/// attention block comes out as the study note's 4h² + 4h.
/// </summary>
internal sealed class ParameterCount
{
    public static readonly string[] Groups = ["embeddings", "attention", "mlp", "norms", "output_head", "pooler"];

    public ModelConfig Config { get; }
    public IReadOnlyList<ParamComponent> Components { get; }
    public long Total { get; }
    /// <summary>Parameters in one layer's parameter set (attention + MLP + its norms).</summary>
    public long PerLayer { get; }
    /// <summary>The per-layer formula, e.g. "12h² + 13h  (attention 4h² + 4h, MLP 8h² + 5h, norms 4h)" for BERT.</summary>
    public string PerLayerFormula { get; }
    /// <summary>Attention block per layer and its formula (e.g. "4h² + 4h").</summary>
    public long AttentionPerLayer { get; }
    public string AttentionFormula { get; }
    /// <summary>Parameters used for each token: differs from <see cref="Total"/> only for mixtures of experts.</summary>
    public long Active { get; }
    /// <summary>Lookup tables (token, position, token type): memory, but no matrix multiply per token.</summary>
    public long EmbeddingLookup { get; }
    /// <summary>The MLP has a gate matrix (SwiGLU, GeGLU): two F-wide activations per token instead of one.</summary>
    public bool GatedMlp { get; }
    /// <summary>The model ends in an LM head (decoders), tied or not; encoders have none.</summary>
    public bool HasLmHead { get; }

    public IReadOnlyDictionary<string, long> ByGroup { get; }

    /// <summary>Counts <paramref name="c"/> as it stands (its <see cref="ModelConfig.Pooler"/> says whether BERT's
    /// pooler is counted; <see cref="BaseModel"/> gives the Hugging Face base class's default).</summary>
    public ParameterCount(ModelConfig c)
    {
        Config = c;
        var tensors = TensorTable.Expand(c, TensorNaming.Gguf)
            .Where(t => t.Need == TensorNeed.Required && !t.Decl.NotAParameter && t.Decl.Component != "mlm_head")
            .ToList();
        var sym = new Symbols(c);
        string L = c.LayerGroups == c.Layers ? "L" : "L_stored";
        string Ls = N(c.LayerGroups);

        var list = new List<ParamComponent>();
        var perLayerPoly = new Dictionary<string, Poly>(StringComparer.Ordinal);
        foreach (var group in tensors.GroupBy(t => t.Decl.Component))
        {
            var decls = group.Select(t => t.Decl).DistinctBy(d => d.Role).ToList();
            long total = group.Sum(t => t.Elements);
            bool perLayer = decls[0].PerLayer;
            long one = perLayer ? decls.Sum(d => d.ShapeFor(c).Aggregate(1L, (a, b) => checked(a * b))) : 0;
            var poly = Poly.Sum(decls.Select(d => sym.Of(d)));
            string formula = poly is null
                ? N(total)
                : perLayer ? $"{L}·{Wrap(poly.Render(sym))} = {Ls}·{Wrap(poly.RenderNumbers(sym))}" : $"{poly.Render(sym)} = {poly.RenderNumbers(sym)}";
            list.Add(new ParamComponent(group.Key, GroupOf(group.Key), total, one, formula));
            if (perLayer && poly is not null) perLayerPoly[group.Key] = poly;
        }

        // the output head: counted above when stored; say why it is zero otherwise
        var head = c.Arch.Tensors.FirstOrDefault(d => d.Component == "output_head");
        HasLmHead = head is not null && head.Need(c) != TensorNeed.Absent;
        if (head is null) list.Add(new ParamComponent("output_head", "output_head", 0, 0, "none (encoder without an LM head)"));
        else if (head.Need(c) != TensorNeed.Required) list.Add(new ParamComponent("output_head", "output_head", 0, 0, "0: tied to the token embedding"));
        list = [.. list.OrderBy(x => Array.IndexOf(Groups, x.Group))]; // stable: table order within a group

        Components = list;
        Total = list.Sum(x => x.Count);
        PerLayer = list.Sum(x => x.PerLayer);
        AttentionPerLayer = list.Where(x => x.Group == "attention").Sum(x => x.PerLayer);
        var groups = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var g in Groups) groups[g] = list.Where(x => x.Group == g).Sum(x => x.Count);
        ByGroup = groups;
        GatedMlp = tensors.Any(t => t.Decl.Component.StartsWith("mlp.gate.", StringComparison.Ordinal));

        // a mixture of experts runs ExpertsPerToken of its Experts for each token: the expert tensors (an X dimension
        // and not the router) count at that fraction
        long idle = 0;
        if (c.Experts > 0)
            foreach (var t in tensors.Where(t => t.Decl.ShapeLetters.Contains("X") && t.Decl.Component != "mlp.router"))
                idle += t.Elements / c.Experts * (c.Experts - c.ExpertsPerToken);
        Active = Total - idle;
        EmbeddingLookup = list.Where(x => x.Name is "embeddings.token" or "embeddings.position" or "embeddings.token_type").Sum(x => x.Count);

        Poly? Part(string g) => Poly.Sum(perLayerPoly.Where(kv => GroupOf(kv.Key) == g).Select(kv => kv.Value));
        var attention = Part("attention")?.Substitute(sym);
        AttentionFormula = attention?.Render(sym) ?? N(AttentionPerLayer);
        var mlp = Part("mlp")?.Substitute(sym);
        var norms = Part("norms")?.Substitute(sym);
        var all = Poly.Sum(new[] { attention, mlp, norms }.OfType<Poly>());
        PerLayerFormula = all is null || mlp is null || norms is null
            ? N(PerLayer)
            : $"{all.Render(sym)}  (attention {AttentionFormula}, MLP {mlp.Render(sym)}, norms {norms.Render(sym)})";
    }

    /// <summary>The configuration as Hugging Face's base class has it (BertModel, AlbertModel and RoBERTa with their
    /// pooler, which config.json does not mention): what calc counts for a config or preset without a weights file.</summary>
    public static ModelConfig BaseModel(ModelConfig c) =>
        c.Arch.Tensors.Any(d => d.Component == "pooler") ? c with { Pooler = true } : c;

    private static string GroupOf(string component)
    {
        int dot = component.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? component : component[..dot];
    }

    private static string N(long x) => x.ToString(CultureInfo.InvariantCulture);

    private static string Wrap(string s) => s.Contains(" + ", StringComparison.Ordinal) ? $"({s})" : s;

    /// <summary>How a dimension letter is shown and what it is worth.</summary>
    private sealed class Symbols(ModelConfig c)
    {
        public string Show(string letter) => letter switch
        {
            "C" => "h",
            "E" when c.EmbeddingWidth == c.Width => "h",
            _ => letter,
        };

        public long Value(string letter) => c.Dim(letter);

        /// <summary>A tensor's element count as a product of its dimensions, each a sum of products of letters and
        /// integers ("NH*HS+2*KVH*HS"): a polynomial, or null when a dimension is a quotient.</summary>
        public Poly? Of(TensorDecl d)
        {
            List<(long Coef, List<string> Atoms)> product = [(1, [])];
            foreach (var dim in d.ShapeLetters)
            {
                if (dim.Contains('/', StringComparison.Ordinal)) return null;
                var terms = new List<(long Coef, string? Atom)>();
                foreach (var term in dim.Split('+', StringSplitOptions.TrimEntries))
                {
                    long coef = 1;
                    var letters = new List<string>();
                    foreach (var f in term.Split('*', StringSplitOptions.TrimEntries))
                    {
                        if (long.TryParse(f, NumberStyles.None, CultureInfo.InvariantCulture, out long k)) coef *= k;
                        else letters.Add(f);
                    }
                    terms.Add((coef, letters.Count == 0 ? null : string.Join("*", letters)));
                }
                product = [.. product.SelectMany(p => terms.Select(t => (p.Coef * t.Coef, t.Atom is null ? p.Atoms : [.. p.Atoms, t.Atom])))];
            }
            return Poly.Sum(product.Select(m => (Poly?)Poly.Monomial(m.Coef, m.Atoms)));
        }

        /// <summary>NH·HS and KVH·HS become h where they equal the width, F becomes 4h where it is four widths.</summary>
        public IEnumerable<(long Coef, string Atom)> Simplify(string atom)
        {
            if ((atom == "NH*HS" && c.QueryWidth == c.Width) || (atom == "KVH*HS" && c.KvWidth == c.Width) || (atom == "E" && c.EmbeddingWidth == c.Width))
                return [(1, "C")];
            if (atom == "F" && c.FfnWidth == 4L * c.Width) return [(4, "C")];
            return [(1, atom)];
        }

        public string ShowAtom(string atom) =>
            atom.Contains('*', StringComparison.Ordinal) ? "(" + string.Join("·", atom.Split('*').Select(Show)) + ")" : Show(atom);

        public long AtomValue(string atom) => atom.Split('*').Aggregate(1L, (a, l) => checked(a * Value(l)));
    }

    /// <summary>A polynomial in dimension atoms ("C", "F", "NH*HS"): monomial (its atoms, sorted) to coefficient; each
    /// monomial keeps the order its atoms were first written in (a tensor's shape order) for display.</summary>
    private sealed class Poly
    {
        private readonly Dictionary<string, long> _terms = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string[]> _shown = new(StringComparer.Ordinal);
        private readonly List<string> _order = [];

        public static Poly Monomial(long coef, IReadOnlyList<string> atoms)
        {
            var p = new Poly();
            p.Add(atoms, coef);
            return p;
        }

        public static Poly? Sum(IEnumerable<Poly?> parts)
        {
            Poly? r = null;
            foreach (var p in parts)
            {
                if (p is null) return null;
                r ??= new Poly();
                foreach (var k in p._order) r.Add(p._shown[k], p._terms[k]);
            }
            return r;
        }

        private void Add(IReadOnlyList<string> atoms, long coef)
        {
            string key = string.Join(" ", atoms.Order(StringComparer.Ordinal));
            if (!_terms.ContainsKey(key)) { _order.Add(key); _shown[key] = [.. atoms]; }
            _terms[key] = _terms.GetValueOrDefault(key) + coef;
        }

        public Poly Substitute(Symbols s)
        {
            var r = new Poly();
            foreach (var k in _order)
            {
                long coef = _terms[k];
                var atoms = new List<string>();
                foreach (var a in _shown[k])
                    foreach (var (c, b) in s.Simplify(a)) { coef *= c; atoms.Add(b); }
                r.Add(atoms, coef);
            }
            return r;
        }

        // Highest degree first (then the width's powers first), in the order the terms were met.
        private IEnumerable<string> Ordered() =>
            _order.Where(k => _terms[k] != 0).OrderByDescending(k => _shown[k].Length).ThenByDescending(k => _shown[k].Count(a => a == "C"));

        /// <summary>e.g. "4h² + 4h", "2h² + 2h·(KVH·HS)", "V·h".</summary>
        public string Render(Symbols s) => string.Join(" + ", Ordered().Select(k => RenderTerm(_terms[k], _shown[k], s)));

        /// <summary>The same terms with numbers, e.g. "768·768" or "2·1536 + 768".</summary>
        public string RenderNumbers(Symbols s) =>
            string.Join(" + ", Ordered().Select(k => string.Join("·", (_terms[k] == 1 ? [] : new[] { N(_terms[k]) }).Concat(_shown[k].Select(a => N(s.AtomValue(a)))))));

        private static string RenderTerm(long coef, string[] atoms, Symbols s)
        {
            // repeated atoms become powers, kept where the atom first stands
            var parts = atoms.Distinct().Select(a =>
            {
                int n = atoms.Count(x => x == a);
                return s.ShowAtom(a) + (n == 1 ? "" : n == 2 ? "²" : n == 3 ? "³" : "^" + N(n));
            });
            string body = string.Join("·", parts);
            if (body.Length == 0) return N(coef);
            return coef == 1 ? body : N(coef) + body;
        }
    }
}

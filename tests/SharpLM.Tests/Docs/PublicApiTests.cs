using System.Reflection;
using System.Text;
using SharpLM.Testing;

namespace SharpLM.Tests.Docs;

/// <summary>
/// The public API of each library, snapshotted (tests/testdata/api/*.approved.txt) so what we promise does not drift
/// unnoticed: every public type with its public and protected members, one line each, sorted. An intended change is
/// approved by rerunning with SHARPLM_UPDATE_SNAPSHOTS=1 and reviewing the diff.
/// </summary>
public sealed class PublicApiTests
{
    /// <summary>The libraries this test assembly snapshots: the engine and tokenizers here; SharpLM.Server in the server
    /// tests, which compile this file too.</summary>
    public static TheoryData<string> Libraries => typeof(PublicApiTests).Assembly.GetName().Name == "SharpLM.Server.Tests"
        ? new() { "SharpLM.Server" }
        : new() { "SharpLM", "SharpLM.Tokenizers" };

    [Theory]
    [MemberData(nameof(Libraries))]
    public void The_public_api_matches_the_approved_snapshot(string library)
    {
        var asm = library switch
        {
            "SharpLM" => typeof(SharpLM.Models.LanguageModel).Assembly,
            "SharpLM.Tokenizers" => typeof(SharpLM.Tokenizers.Tokenizer).Assembly,
            _ => Assembly.Load(library),
        };
        string actual = Render(asm);
        var path = Path.Combine(TestPaths.TestData, "api", library + ".approved.txt");
        if (Environment.GetEnvironmentVariable("SHARPLM_UPDATE_SNAPSHOTS") == "1") File.WriteAllText(path, actual);
        Assert.True(File.Exists(path), $"{path} is missing: run the tests once with SHARPLM_UPDATE_SNAPSHOTS=1 and review it");
        string approved = File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal);
        if (approved == actual) return;
        var a = approved.Split('\n').ToHashSet(StringComparer.Ordinal);
        var b = actual.Split('\n').ToHashSet(StringComparer.Ordinal);
        Assert.Fail($"the public API of {library} changed.\nremoved:\n  {string.Join("\n  ", a.Except(b))}\nadded:\n  {string.Join("\n  ", b.Except(a))}\n" +
                    "If intended, rerun with SHARPLM_UPDATE_SNAPSHOTS=1 and review the diff of " + path);
    }

    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    internal static string Render(Assembly asm)
    {
        var lines = new List<string>();
        foreach (var t in asm.GetExportedTypes())
        {
            string kind = t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct" : t.IsAbstract && t.IsSealed ? "static class" : "class";
            string tn = Name(t);
            var bases = new List<string>();
            if (t.BaseType is { } bt && bt != typeof(object) && bt != typeof(ValueType) && bt != typeof(Enum)) bases.Add(Name(bt));
            bases.AddRange(t.GetInterfaces().Where(i => i.IsPublic || i.IsNestedPublic).Select(Name).Order(StringComparer.Ordinal));
            lines.Add($"{tn} : {kind}{(bases.Count > 0 ? " : " + string.Join(", ", bases) : "")}");
            if (t.IsEnum)
            {
                foreach (var n in Enum.GetNames(t)) lines.Add($"{tn} :: {n}");
                continue;
            }
            foreach (var m in t.GetMembers(Declared))
            {
                if (!Visible(m)) continue;
                if (m.Name.Contains('<', StringComparison.Ordinal)) continue; // compiler-generated (record <Clone>$)
                string? line = m switch
                {
                    ConstructorInfo c => $".ctor({Params(c)})",
                    MethodInfo mi when !mi.IsSpecialName => $"{(mi.IsStatic ? "static " : "")}{mi.Name}{Generic(mi)}({Params(mi)}) -> {Name(mi.ReturnType)}",
                    PropertyInfo p => $"{(p.GetMethod?.IsStatic ?? p.SetMethod?.IsStatic ?? false ? "static " : "")}{p.Name} {{{(p.GetMethod is { } g && (g.IsPublic || g.IsFamily) ? " get;" : "")}{(p.SetMethod is { } s && (s.IsPublic || s.IsFamily) ? (s.ReturnParameter.GetRequiredCustomModifiers().Any(x => x.Name == "IsExternalInit") ? " init;" : " set;") : "")} }} -> {Name(p.PropertyType)}",
                    FieldInfo f => $"{(f.IsStatic ? "static " : "")}{(f.IsLiteral ? "const " : f.IsInitOnly ? "readonly " : "")}{f.Name} -> {Name(f.FieldType)}",
                    EventInfo e => $"event {e.Name} -> {Name(e.EventHandlerType!)}",
                    _ => null,
                };
                if (line != null) lines.Add($"{tn} :: {line}");
            }
        }
        lines.Sort(StringComparer.Ordinal);
        var sb = new StringBuilder();
        foreach (var l in lines) sb.Append(l).Append('\n');
        return sb.ToString();
    }

    private static bool Visible(MemberInfo m) => m switch
    {
        MethodBase mb => mb.IsPublic || mb.IsFamily || mb.IsFamilyOrAssembly,
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        PropertyInfo p => (p.GetMethod is { } g && (g.IsPublic || g.IsFamily)) || (p.SetMethod is { } s && (s.IsPublic || s.IsFamily)),
        EventInfo e => e.AddMethod is { } a && (a.IsPublic || a.IsFamily),
        _ => false,
    };

    private static string Generic(MethodInfo m) => m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";

    private static string Params(MethodBase m) => string.Join(", ", m.GetParameters().Select(p =>
        $"{(p.IsOut ? "out " : p.ParameterType.IsByRef ? (p.IsIn ? "in " : "ref ") : "")}{Name(p.ParameterType)} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")}"));

    private static string Name(Type t)
    {
        if (t.IsByRef) return Name(t.GetElementType()!);
        if (t.IsArray) return Name(t.GetElementType()!) + "[]";
        if (t.IsPointer) return Name(t.GetElementType()!) + "*";
        if (Nullable.GetUnderlyingType(t) is { } u) return Name(u) + "?";
        string n = t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : (t.Namespace is { } ns ? ns + "." : "") + t.Name;
        if (t.IsGenericType)
        {
            n = n[..n.IndexOf('`', StringComparison.Ordinal)];
            n += "<" + string.Join(", ", t.GetGenericArguments().Select(Name)) + ">";
        }
        return n;
    }
}

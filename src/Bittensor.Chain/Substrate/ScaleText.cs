using System.Globalization;
using System.Numerics;
using System.Text;
using Bittensor.Core;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Substrate;

/// <summary>
/// Parses command-line text into a value of a registry type: integers, <c>true</c>/<c>false</c>, strings, SS58 or
/// 0x-hex for account ids, 0x-hex for byte arrays and vectors, <c>a,b,c</c> for vectors of simple values,
/// <c>none</c> or the inner value for an <c>Option</c>, an SS58 address for <c>MultiAddress</c> (the <c>Id</c> variant),
/// and a variant name for a unit enum variant. Errors are <see cref="FormatException"/> naming the type.
/// </summary>
public static class ScaleText
{
    /// <summary>Parses <paramref name="text"/> as a value of type <paramref name="type"/>.</summary>
    public static ScaleValue Parse(PortableRegistry types, uint type, string text) => Parse(types, type, text, 0);

    private static ScaleValue Parse(PortableRegistry types, uint type, string text, int depth)
    {
        ArgumentNullException.ThrowIfNull(types);
        ArgumentNullException.ThrowIfNull(text);
        if (depth > 16) throw new FormatException($"'{text}': type {types.Describe(type)} nests too deeply to write as text");
        var t = types[type];
        text = text.Trim();
        switch (t.Def)
        {
            case PrimitiveDef { Kind: PrimitiveKind.Bool }:
                return bool.TryParse(text, out var b) ? ScaleValue.Bool(b) : throw Bad(types, type, text);
            case PrimitiveDef { Kind: PrimitiveKind.Str }:
                return ScaleValue.Text(text);
            case PrimitiveDef { Kind: PrimitiveKind.Char }:
                return text.Length > 0 && Rune.TryGetRuneAt(text, 0, out var r) ? ScaleValue.Char((uint)r.Value) : throw Bad(types, type, text);
            case PrimitiveDef:
            case CompactDef:
                return ScaleValue.Int(Integer(types, type, text));
            case CompositeDef when t.PathText.EndsWith("AccountId32", StringComparison.Ordinal):
                try
                {
                    return ScaleValue.Account(AccountId.Parse(text));
                }
                catch (Exception e) when (e is FormatException or ArgumentException)
                {
                    throw new FormatException($"'{text}' is not an SS58 address or 0x-hex account id", e);
                }
            case CompositeDef { Fields.Length: 1 } c:
                return Parse(types, c.Fields[0].Type, text, depth + 1);
            case ArrayDef a when IsU8(types, a.Element):
            case SequenceDef s when IsU8(types, s.Element):
                return Hex.TryDecode(text, out var bytes) && text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                    ? ScaleValue.Bytes(bytes)
                    : throw Bad(types, type, text);
            case SequenceDef s:
                return ScaleValue.Seq(Split(text).Select(x => Parse(types, s.Element, x, depth + 1)));
            case ArrayDef a:
                return ScaleValue.Seq(Split(text).Select(x => Parse(types, a.Element, x, depth + 1)));
            case VariantDef v:
            {
                if (v.ByName("None") is not null && v.ByName("Some") is { Fields.Length: 1 } some)
                    return string.Equals(text, "none", StringComparison.OrdinalIgnoreCase)
                        ? ScaleValue.Enum("None")
                        : ScaleValue.Enum("Some", Parse(types, some.Fields[0].Type, text, depth + 1));
                if (v.ByName(text) is { Fields.Length: 0 } unit) return ScaleValue.Enum(unit.Name);
                if (v.ByName("Id") is { Fields.Length: 1 } id) return ScaleValue.Enum("Id", Parse(types, id.Fields[0].Type, text, depth + 1));
                throw new FormatException($"'{text}' is not a variant of {types.Describe(type)} ({string.Join(", ", v.Variants.Select(x => x.Name))})");
            }
            default:
                throw new FormatException($"values of type {types.Describe(type)} cannot be written as text");
        }
    }

    private static bool IsU8(PortableRegistry types, uint id) => types[id].Def is PrimitiveDef { Kind: PrimitiveKind.U8 };

    private static IEnumerable<string> Split(string text)
    {
        var inner = text.TrimStart('[').TrimEnd(']').Trim();
        return inner.Length == 0 ? [] : inner.Split(',');
    }

    private static BigInteger Integer(PortableRegistry types, uint type, string text) =>
        BigInteger.TryParse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw Bad(types, type, text);

    private static FormatException Bad(PortableRegistry types, uint type, string text) =>
        new($"'{text}' is not a valid {types.Describe(type)}");
}

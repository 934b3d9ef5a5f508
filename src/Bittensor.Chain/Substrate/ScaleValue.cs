using System.Collections.Immutable;
using System.Globalization;
using System.Numerics;
using System.Text;
using Bittensor.Core;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Substrate;

/// <summary>Bounds applied when decoding a value of a registry type from untrusted bytes.</summary>
/// <param name="MaxDepth">Deepest nesting of values (a recursive type such as a call that holds calls stops here).</param>
/// <param name="MaxValues">Most values (nodes) one decode may create, which bounds zero-sized elements such as <c>Vec&lt;()&gt;</c>.</param>
public sealed record ScaleLimits(int MaxDepth = 96, int MaxValues = 4_000_000)
{
    /// <summary>Depth 96, 4 million values.</summary>
    public static ScaleLimits Default { get; } = new();
}

/// <summary>
/// A SCALE value decoded from (or to be encoded as) a registry type, without a Rust type behind it.
/// Integers of every width and compacts are <see cref="Int"/>; <c>Vec&lt;u8&gt;</c> and <c>[u8; N]</c> are
/// <see cref="BytesValue"/>; structs and tuples are <see cref="CompositeValue"/>; enums are <see cref="VariantValue"/>.
/// Equality is structural.
/// </summary>
public abstract class ScaleValue : IEquatable<ScaleValue>
{
    private protected ScaleValue()
    {
    }

    /// <summary>An integer (any primitive width, or a compact).</summary>
    public static ScaleValue Int(BigInteger value) => new IntValue(value);

    /// <summary>A bool.</summary>
    public static ScaleValue Bool(bool value) => value ? BoolValue.True : BoolValue.False;

    /// <summary>A string.</summary>
    public static ScaleValue Text(string value) => new TextValue(value);

    /// <summary>A char (Unicode scalar value).</summary>
    public static ScaleValue Char(uint scalar) => new CharValue(scalar);

    /// <summary>Bytes (<c>Vec&lt;u8&gt;</c> or <c>[u8; N]</c>).</summary>
    public static ScaleValue Bytes(ReadOnlySpan<byte> value) => new BytesValue([.. value]);

    /// <summary>An account id as 32 bytes.</summary>
    public static ScaleValue Account(AccountId account) => new BytesValue([.. account.ToArray()]);

    /// <summary>A sequence or array of values.</summary>
    public static ScaleValue Seq(params ScaleValue[] items) => new SequenceValue([.. items]);

    /// <summary>A sequence or array of values.</summary>
    public static ScaleValue Seq(IEnumerable<ScaleValue> items) => new SequenceValue([.. items]);

    /// <summary>A struct with named fields.</summary>
    public static ScaleValue Record(params (string Name, ScaleValue Value)[] fields) =>
        new CompositeValue([.. fields.Select(f => (string?)f.Name)], [.. fields.Select(f => f.Value)]);

    /// <summary>A tuple or tuple struct (unnamed fields).</summary>
    public static ScaleValue Tuple(params ScaleValue[] items) => new CompositeValue([.. items.Select(_ => (string?)null)], [.. items]);

    /// <summary>An enum variant by name with unnamed fields (none for a unit variant).</summary>
    public static ScaleValue Enum(string name, params ScaleValue[] fields) => new VariantValue(name, null, (CompositeValue)Tuple(fields));

    /// <summary>An enum variant by name with named fields.</summary>
    public static ScaleValue EnumRecord(string name, params (string Name, ScaleValue Value)[] fields) =>
        new VariantValue(name, null, (CompositeValue)Record(fields));

    /// <summary>A bit sequence.</summary>
    public static ScaleValue BitSequence(IEnumerable<bool> bits) => new BitsValue([.. bits]);

    /// <summary>The unit value <c>()</c>.</summary>
    public static ScaleValue Unit { get; } = new CompositeValue([], []);

    /// <summary>Integer value; throws when this is not an integer.</summary>
    public BigInteger AsBigInteger() => Unwrapped() is IntValue i ? i.Value : throw Mismatch("an integer");

    /// <summary>Integer value as u64 (one-field wrappers such as <c>NetUid(u16)</c> are unwrapped).</summary>
    public ulong AsU64()
    {
        var v = AsBigInteger();
        return v >= 0 && v <= ulong.MaxValue ? (ulong)v : throw new InvalidCastException($"{v} does not fit in u64");
    }

    /// <summary>Integer value as u32.</summary>
    public uint AsU32() => checked((uint)AsU64());

    /// <summary>Integer value as u16.</summary>
    public ushort AsU16() => checked((ushort)AsU64());

    /// <summary>Integer value as u8.</summary>
    public byte AsU8() => checked((byte)AsU64());

    /// <summary>Integer value as u128.</summary>
    public UInt128 AsU128()
    {
        var v = AsBigInteger();
        return v >= 0 && v <= (BigInteger)UInt128.MaxValue ? (UInt128)v : throw new InvalidCastException($"{v} does not fit in u128");
    }

    /// <summary>Bool value.</summary>
    public bool AsBool() => Unwrapped() is BoolValue b ? b.Value : throw Mismatch("a bool");

    /// <summary>Text value (a <c>Vec&lt;u8&gt;</c> holding UTF-8 is accepted too).</summary>
    public string AsText() => Unwrapped() switch
    {
        TextValue t => t.Value,
        BytesValue b => Encoding.UTF8.GetString(b.Value.AsSpan()),
        _ => throw Mismatch("text"),
    };

    /// <summary>Bytes value (<c>Vec&lt;u8&gt;</c>, <c>[u8; N]</c>, or a one-field wrapper of one such as <c>AccountId32</c>).</summary>
    public ImmutableArray<byte> AsBytes() => Unwrapped() is BytesValue b ? b.Value : throw Mismatch("bytes");

    /// <summary>A 32-byte account id.</summary>
    public AccountId AsAccountId()
    {
        var b = AsBytes();
        return b.Length == AccountId.Size ? new AccountId(b.AsSpan()) : throw new InvalidCastException($"an account id has 32 bytes, got {b.Length}");
    }

    /// <summary>Items of a sequence, array or tuple.</summary>
    public ImmutableArray<ScaleValue> AsItems() => Unwrapped() switch
    {
        SequenceValue s => s.Items,
        CompositeValue c when c.Names.All(n => n is null) => c.Values,
        BytesValue b => [.. b.Value.Select(x => Int(x))],
        _ => throw Mismatch("a sequence"),
    };

    /// <summary>The named field of a struct; throws <see cref="InvalidCastException"/> naming the field when it is missing.</summary>
    public ScaleValue Field(string name) =>
        TryField(name) ?? throw new InvalidCastException($"{Describe()} has no field '{name}'");

    /// <summary>The named field of a struct, or null.</summary>
    public ScaleValue? TryField(string name)
    {
        var c = this switch
        {
            CompositeValue x => x,
            VariantValue v => v.Fields,
            _ => null,
        };
        if (c is null) return null;
        for (var i = 0; i < c.Names.Length; i++)
            if (string.Equals(c.Names[i], name, StringComparison.Ordinal)) return c.Values[i];
        return null;
    }

    /// <summary>The enum variant; throws when this is not an enum value.</summary>
    public VariantValue AsVariant() => this as VariantValue ?? throw Mismatch("an enum");

    /// <summary>The value inside an <c>Option</c>: null for <c>None</c>.</summary>
    public ScaleValue? AsOption()
    {
        var v = AsVariant();
        return v.Name switch
        {
            "None" => null,
            "Some" when v.Fields.Values.Length == 1 => v.Fields.Values[0],
            _ => throw Mismatch("an Option"),
        };
    }

    /// <summary>This value with one-field wrappers (newtypes like <c>AccountId32([u8; 32])</c>) removed.</summary>
    public ScaleValue Unwrapped()
    {
        var v = this;
        while (v is CompositeValue { Values.Length: 1 } c) v = c.Values[0];
        return v;
    }

    private InvalidCastException Mismatch(string wanted) => new($"expected {wanted}, got {Describe()}");

    /// <summary>A short description for error messages.</summary>
    public abstract string Describe();

    /// <inheritdoc />
    public abstract bool Equals(ScaleValue? other);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ScaleValue v && Equals(v);

    /// <inheritdoc />
    public abstract override int GetHashCode();

    /// <inheritdoc />
    public override string ToString() => Describe();
}

/// <summary>An integer of any width.</summary>
public sealed class IntValue(BigInteger value) : ScaleValue
{
    /// <summary>The value.</summary>
    public BigInteger Value { get; } = value;

    /// <inheritdoc />
    public override string Describe() => Value.ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) => other is IntValue i && i.Value == Value;

    /// <inheritdoc />
    public override int GetHashCode() => Value.GetHashCode();
}

/// <summary>A bool.</summary>
public sealed class BoolValue : ScaleValue
{
    internal static readonly BoolValue True = new(true);
    internal static readonly BoolValue False = new(false);

    private BoolValue(bool value) => Value = value;

    /// <summary>The value.</summary>
    public bool Value { get; }

    /// <inheritdoc />
    public override string Describe() => Value ? "true" : "false";

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) => other is BoolValue b && b.Value == Value;

    /// <inheritdoc />
    public override int GetHashCode() => Value.GetHashCode();
}

/// <summary>A string.</summary>
public sealed class TextValue(string value) : ScaleValue
{
    /// <summary>The value.</summary>
    public string Value { get; } = value ?? throw new ArgumentNullException(nameof(value));

    /// <inheritdoc />
    public override string Describe() => $"\"{Value}\"";

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) => other is TextValue t && string.Equals(t.Value, Value, StringComparison.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Value);
}

/// <summary>A char as a Unicode scalar value.</summary>
public sealed class CharValue(uint scalar) : ScaleValue
{
    /// <summary>The scalar value.</summary>
    public uint Scalar { get; } = scalar;

    /// <inheritdoc />
    public override string Describe() => string.Create(CultureInfo.InvariantCulture, $"char U+{Scalar:X4}");

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) => other is CharValue c && c.Scalar == Scalar;

    /// <inheritdoc />
    public override int GetHashCode() => Scalar.GetHashCode();
}

/// <summary>Bytes: a <c>Vec&lt;u8&gt;</c> or <c>[u8; N]</c>.</summary>
public sealed class BytesValue(ImmutableArray<byte> value) : ScaleValue
{
    /// <summary>The bytes.</summary>
    public ImmutableArray<byte> Value { get; } = value;

    /// <inheritdoc />
    public override string Describe() => Value.Length <= 64 ? Hex.Encode(Value.AsSpan()) : $"{Value.Length} bytes";

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) => other is BytesValue b && b.Value.AsSpan().SequenceEqual(Value.AsSpan());

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(Value.AsSpan());
        return h.ToHashCode();
    }
}

/// <summary>A sequence or array of values (other than bytes).</summary>
public sealed class SequenceValue(ImmutableArray<ScaleValue> items) : ScaleValue
{
    /// <summary>The items.</summary>
    public ImmutableArray<ScaleValue> Items { get; } = items;

    /// <inheritdoc />
    public override string Describe() => $"sequence of {Items.Length}";

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) => other is SequenceValue s && s.Items.SequenceEqual(Items);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Items.Length, Items.IsEmpty ? 0 : Items[0].GetHashCode());
}

/// <summary>A struct (named fields), tuple struct or tuple (unnamed fields).</summary>
public sealed class CompositeValue : ScaleValue
{
    /// <summary>Creates a composite; <paramref name="names"/> and <paramref name="values"/> have the same length.</summary>
    public CompositeValue(ImmutableArray<string?> names, ImmutableArray<ScaleValue> values)
    {
        if (names.Length != values.Length) throw new ArgumentException("one name (or null) per value", nameof(names));
        Names = names;
        Values = values;
    }

    /// <summary>Field names (null for unnamed).</summary>
    public ImmutableArray<string?> Names { get; }

    /// <summary>Field values.</summary>
    public ImmutableArray<ScaleValue> Values { get; }

    /// <inheritdoc />
    public override string Describe() =>
        Names.Any(n => n is not null) ? "{" + string.Join(", ", Names) + "}" : $"tuple of {Values.Length}";

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) =>
        other is CompositeValue c && c.Names.SequenceEqual(Names, StringComparer.Ordinal) && c.Values.SequenceEqual(Values);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Values.Length, Values.IsEmpty ? 0 : Values[0].GetHashCode());
}

/// <summary>An enum variant with its fields.</summary>
public sealed class VariantValue : ScaleValue
{
    /// <summary>Creates a variant value; <paramref name="index"/> is set by the decoder and optional when encoding.</summary>
    public VariantValue(string name, byte? index, CompositeValue fields)
    {
        Name = name ?? throw new ArgumentNullException(nameof(name));
        Index = index;
        Fields = fields ?? throw new ArgumentNullException(nameof(fields));
    }

    /// <summary>Variant name.</summary>
    public string Name { get; }

    /// <summary>Wire index (set when decoded).</summary>
    public byte? Index { get; }

    /// <summary>The variant's fields.</summary>
    public CompositeValue Fields { get; }

    /// <inheritdoc />
    public override string Describe() => $"{Name}{(Fields.Values.IsEmpty ? "" : "(" + Fields.Describe() + ")")}";

    /// <summary>Equal when name and fields are equal (the index is informational).</summary>
    public override bool Equals(ScaleValue? other) =>
        other is VariantValue v && string.Equals(v.Name, Name, StringComparison.Ordinal) && v.Fields.Equals(Fields);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(StringComparer.Ordinal.GetHashCode(Name), Fields.GetHashCode());
}

/// <summary>A bit sequence.</summary>
public sealed class BitsValue(ImmutableArray<bool> bits) : ScaleValue
{
    /// <summary>The bits in order.</summary>
    public ImmutableArray<bool> Bits { get; } = bits;

    /// <inheritdoc />
    public override string Describe() => $"{Bits.Length} bits";

    /// <inheritdoc />
    public override bool Equals(ScaleValue? other) => other is BitsValue b && b.Bits.SequenceEqual(Bits);

    /// <inheritdoc />
    public override int GetHashCode() => Bits.Length;
}

using System.Collections.Immutable;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary>A call decoded with metadata: pallet and call names and the named arguments.</summary>
public sealed record DecodedCall(string Pallet, byte PalletIndex, string Call, byte CallIndex, CompositeValue Args);

/// <summary>
/// Calls encoded and decoded from metadata: the pallet index and call index come from the runtime's own metadata,
/// and each argument is encoded as the type the metadata gives it, so the same code serves spec 148, 218 and later
/// runtimes where an argument changed type (e.g. <c>netuid</c> u16 → <c>NetUid</c>).
/// </summary>
public static class MetadataCalls
{
    /// <summary>
    /// Encodes <c>pallet.call(args…)</c>: pallet index, call index, then every argument in declaration order. Every
    /// argument must be given by name, and no other; the error lists the arguments the call takes.
    /// </summary>
    public static byte[] Encode(RuntimeMetadata metadata, string pallet, string call, params (string Name, ScaleValue Value)[] args)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(args);
        var p = metadata.Pallet(pallet);
        var variant = FindCall(metadata, p, call);
        var w = new ScaleWriter(64);
        w.U8(p.Index).U8(variant.Index);
        foreach (var a in args)
        {
            if (!variant.Fields.Any(f => string.Equals(f.Name, a.Name, StringComparison.Ordinal)))
                throw new ArgumentException($"{pallet}.{call} has no argument '{a.Name}'; it takes {Signature(metadata, variant)}", nameof(args));
        }
        foreach (var f in variant.Fields)
        {
            var given = args.Where(a => string.Equals(a.Name, f.Name, StringComparison.Ordinal)).ToArray();
            if (given.Length != 1)
                throw new ArgumentException($"{pallet}.{call} needs argument '{f.Name}' exactly once; it takes {Signature(metadata, variant)}", nameof(args));
            try
            {
                metadata.Types.Encode(f.Type, given[0].Value, w);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{pallet}.{call} argument '{f.Name}': {e.Message}", nameof(args), e);
            }
        }
        return w.ToArray();
    }

    /// <summary>The call variant of a pallet; throws <see cref="MetadataException"/> listing what exists when it is absent.</summary>
    public static TypeVariant FindCall(RuntimeMetadata metadata, PalletMetadata pallet, string call)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(pallet);
        if (pallet.CallType is not { } ct) throw new MetadataException($"pallet {pallet.Name} has no calls");
        return metadata.Types.Variants(ct).ByName(call)
            ?? throw new MetadataException($"pallet {pallet.Name} has no call '{call}' in this runtime");
    }

    /// <summary>Decodes one call (the input must hold exactly one); unknown pallet or call index → <see cref="ScaleException"/>.</summary>
    public static DecodedCall Decode(RuntimeMetadata metadata, ReadOnlySpan<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var r = new ScaleReader(bytes);
        var call = Decode(metadata, ref r);
        r.EnsureEnd();
        return call;
    }

    /// <summary>Decodes one call at the reader's position.</summary>
    public static DecodedCall Decode(RuntimeMetadata metadata, ref ScaleReader r)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var at = r.Position;
        var pi = r.U8();
        var p = metadata.FindPallet(pi) ?? throw new ScaleException($"no pallet with index {pi}", at);
        if (p.CallType is not { } ct) throw new ScaleException($"pallet {p.Name} has no calls", at);
        var value = (VariantValue)metadata.Types.Decode(ct, ref r);
        return new DecodedCall(p.Name, pi, value.Name, value.Index ?? 0, value.Fields);
    }

    /// <summary>The arguments a call takes, as <c>name: Type</c>, for messages.</summary>
    public static string Signature(RuntimeMetadata metadata, TypeVariant call)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(call);
        return call.Fields.IsEmpty
            ? "no arguments"
            : string.Join(", ", call.Fields.Select(f => $"{f.Name}: {f.TypeName ?? metadata.Types.Describe(f.Type)}"));
    }

    /// <summary>Arguments of a call in declaration order, for enumerating a pallet's calls.</summary>
    public static ImmutableArray<(string Name, uint Type)> Arguments(TypeVariant call)
    {
        ArgumentNullException.ThrowIfNull(call);
        return [.. call.Fields.Select(f => (f.Name ?? "_", f.Type))];
    }
}

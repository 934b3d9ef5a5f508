using System.Collections.Immutable;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary>One entry of <c>System.Events</c>, with names resolved from metadata.</summary>
/// <param name="ExtrinsicIndex">The extrinsic that emitted it (phase <c>ApplyExtrinsic(i)</c>), or null for initialization/finalization.</param>
/// <param name="Phase">Phase name: <c>ApplyExtrinsic</c>, <c>Finalization</c> or <c>Initialization</c>.</param>
/// <param name="Pallet">Pallet name, e.g. <c>System</c>.</param>
/// <param name="Name">Event name, e.g. <c>ExtrinsicFailed</c>.</param>
/// <param name="Fields">The event's fields.</param>
/// <param name="Topics">Topics (usually empty).</param>
public sealed record ChainEvent(uint? ExtrinsicIndex, string Phase, string Pallet, string Name, CompositeValue Fields, ImmutableArray<ImmutableArray<byte>> Topics);

/// <summary>A <c>DispatchError</c> with a module error resolved to its pallet and error names.</summary>
/// <param name="Kind">The DispatchError variant (<c>Module</c>, <c>BadOrigin</c>, <c>Token</c>, …).</param>
/// <param name="Pallet">For <c>Module</c>: the pallet name.</param>
/// <param name="Error">For <c>Module</c>: the error name (e.g. <c>HotKeyNotRegisteredInSubNet</c>); otherwise the inner variant name if any.</param>
/// <param name="Docs">The error's documentation, when metadata has it.</param>
public sealed record DispatchErrorInfo(string Kind, string? Pallet, string? Error, string Docs)
{
    /// <summary><c>Pallet.Error</c> for module errors, else <c>Kind</c> or <c>Kind.Inner</c>.</summary>
    public override string ToString() => Pallet is not null ? $"{Pallet}.{Error}" : Error is null ? Kind : $"{Kind}.{Error}";
}

/// <summary>Events and dispatch errors decoded by name from metadata.</summary>
public static class MetadataEvents
{
    /// <summary>Decodes the value of <c>System.Events</c> (a <c>Vec&lt;EventRecord&gt;</c>) at some block.</summary>
    public static ImmutableArray<ChainEvent> DecodeEvents(RuntimeMetadata metadata, ReadOnlySpan<byte> raw)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var value = StorageKeys.DecodeValue(metadata, "System", "Events", raw)
            ?? throw new ScaleException("System.Events has no value", 0);
        var records = value.AsItems();
        var result = ImmutableArray.CreateBuilder<ChainEvent>(records.Length);
        foreach (var rec in records) result.Add(ToEvent(rec));
        return result.MoveToImmutable();
    }

    private static ChainEvent ToEvent(ScaleValue record)
    {
        try
        {
            var phase = record.Field("phase").AsVariant();
            uint? index = string.Equals(phase.Name, "ApplyExtrinsic", StringComparison.Ordinal) ? phase.Fields.Values[0].AsU32() : null;
            var outer = record.Field("event").AsVariant();
            var inner = outer.Fields.Values.Length == 1 ? outer.Fields.Values[0].AsVariant() : throw new InvalidCastException("RuntimeEvent variant without one field");
            var topics = record.TryField("topics") is { } t ? t.AsItems().Select(x => x.AsBytes()).ToImmutableArray() : [];
            return new ChainEvent(index, phase.Name, outer.Name, inner.Name, inner.Fields, topics);
        }
        catch (InvalidCastException e)
        {
            throw new ScaleException($"System.Events entry does not have the EventRecord shape: {e.Message}", 0);
        }
    }

    /// <summary>
    /// Resolves a <c>DispatchError</c> value (e.g. the <c>dispatch_error</c> field of <c>System.ExtrinsicFailed</c>):
    /// <c>Module { index, error }</c> becomes the pallet's error name via its error enum (the first byte of
    /// <c>error</c> is the variant index; old runtimes have a single byte).
    /// </summary>
    public static DispatchErrorInfo ResolveDispatchError(RuntimeMetadata metadata, ScaleValue dispatchError)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(dispatchError);
        var v = dispatchError.AsVariant();
        if (!string.Equals(v.Name, "Module", StringComparison.Ordinal))
        {
            var inner = v.Fields.Values.Length == 1 && v.Fields.Values[0] is VariantValue iv ? iv.Name : null;
            return new DispatchErrorInfo(v.Name, null, inner, "");
        }
        var module = v.Fields.Values.Length == 1 ? v.Fields.Values[0] : v.Fields;
        var palletIndex = module.Field("index").AsU8();
        var errorField = module.Field("error");
        var errorIndex = errorField.Unwrapped() is BytesValue b ? (b.Value.IsEmpty ? (byte)0 : b.Value[0]) : errorField.AsU8();
        return ResolveModuleError(metadata, palletIndex, errorIndex);
    }

    /// <summary>The pallet and error names of a module error (pallet index, error variant index).</summary>
    public static DispatchErrorInfo ResolveModuleError(RuntimeMetadata metadata, byte palletIndex, byte errorIndex)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var pallet = metadata.FindPallet(palletIndex);
        if (pallet?.ErrorType is not { } et) return new DispatchErrorInfo("Module", pallet?.Name ?? $"pallet#{palletIndex}", $"error#{errorIndex}", "");
        var variant = metadata.Types.Variants(et).ByIndex(errorIndex);
        return variant is null
            ? new DispatchErrorInfo("Module", pallet.Name, $"error#{errorIndex}", "")
            : new DispatchErrorInfo("Module", pallet.Name, variant.Name, string.Join(' ', variant.Docs).Trim());
    }
}

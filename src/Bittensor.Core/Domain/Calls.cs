using System.Collections.Immutable;
using Bittensor.Core.Scale;

namespace Bittensor.Core.Domain;

/// <summary>Which key must sign a call, as subtensor's dispatchables expect.</summary>
public enum SignerRole
{
    /// <summary>The coldkey (register, stake, unstake, transfer, register_network).</summary>
    Coldkey,

    /// <summary>The hotkey (serve_axon, set_weights).</summary>
    Hotkey,
}

/// <summary>
/// A runtime call: pallet index, call index and SCALE arguments, laid out as subtensor's May-2024 runtime
/// (spec 148, commit da21fb6a) declares them. SubtensorModule is pallet 7, Balances pallet 5
/// (SUBSTRATE.md §5.1; indices verified against raonet metadata).
/// </summary>
public abstract record ChainCall
{
    /// <summary>Pallet index of SubtensorModule.</summary>
    public const byte SubtensorPallet = 7;

    /// <summary>Pallet index of Balances.</summary>
    public const byte BalancesPallet = 5;

    /// <summary>Upper bound on uids in one set_weights (uids are u16).</summary>
    public const int MaxWeightEntries = 65536;

    /// <summary>Pallet index.</summary>
    public abstract byte Pallet { get; }

    /// <summary>Call index within the pallet.</summary>
    public abstract byte Method { get; }

    /// <summary>Call name as in the runtime metadata, e.g. <c>set_weights</c>.</summary>
    public abstract string Name { get; }

    /// <summary>Which key signs this call.</summary>
    public abstract SignerRole Signer { get; }

    /// <summary>Writes the two index bytes and the arguments.</summary>
    public void Encode(ScaleWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.U8(Pallet).U8(Method);
        EncodeArgs(writer);
    }

    /// <summary>Writes the arguments only.</summary>
    protected abstract void EncodeArgs(ScaleWriter writer);

    /// <summary>The encoded call (index bytes and arguments).</summary>
    public byte[] ToBytes()
    {
        var w = new ScaleWriter(64);
        Encode(w);
        return w.ToArray();
    }

    /// <summary>
    /// Decodes one call; the input must hold exactly one call. Unknown pallets or calls, bad lengths and trailing
    /// bytes throw <see cref="ScaleException"/>.
    /// </summary>
    public static ChainCall Decode(ReadOnlySpan<byte> bytes)
    {
        var r = new ScaleReader(bytes);
        var pallet = r.U8();
        var method = r.U8();
        ChainCall call = (pallet, method) switch
        {
            (SubtensorPallet, SetWeights.Index) => SetWeights.DecodeArgs(ref r),
            (SubtensorPallet, AddStake.Index) => AddStake.DecodeArgs(ref r),
            (SubtensorPallet, RemoveStake.Index) => RemoveStake.DecodeArgs(ref r),
            (SubtensorPallet, ServeAxon.Index) => ServeAxon.DecodeArgs(ref r),
            (SubtensorPallet, BurnedRegister.Index) => BurnedRegister.DecodeArgs(ref r),
            (SubtensorPallet, RegisterNetwork.Index) => new RegisterNetwork(),
            (BalancesPallet, Transfer.Index) => Transfer.DecodeArgs(ref r, keepAlive: true),
            (BalancesPallet, Transfer.AllowDeathIndex) => Transfer.DecodeArgs(ref r, keepAlive: false),
            _ => throw new ScaleException($"unknown call {pallet}:{method}", 0),
        };
        r.EnsureEnd();
        return call;
    }
}

/// <summary>
/// <c>SubtensorModule.register_network()</c> (call 59): locks the network lock cost and creates a subnet. Coldkey-signed.
/// Later runtimes (dynamic TAO, e.g. spec 218) take <c>register_network(hotkey, mechid)</c>: a client encoding from
/// their metadata sends <see cref="Hotkey"/> and <see cref="Mechid"/>; the May-2024 encoding here has no arguments.
/// </summary>
public sealed record RegisterNetwork : ChainCall
{
    /// <summary>Call index.</summary>
    public const byte Index = 59;

    /// <summary>The subnet's hotkey, for runtimes whose <c>register_network</c> takes one (null: none known).</summary>
    public AccountId? Hotkey { get; init; }

    /// <summary>The subnet's mechanism id for runtimes that take one (1, as the bittensor SDK sends).</summary>
    public ushort Mechid { get; init; } = 1;

    /// <inheritdoc />
    public override byte Pallet => SubtensorPallet;

    /// <inheritdoc />
    public override byte Method => Index;

    /// <inheritdoc />
    public override string Name => "register_network";

    /// <inheritdoc />
    public override SignerRole Signer => SignerRole.Coldkey;

    /// <inheritdoc />
    protected override void EncodeArgs(ScaleWriter writer)
    {
        // No arguments in the May-2024 runtime (HEAD added a hotkey).
    }
}

/// <summary><c>SubtensorModule.burned_register(netuid u16, hotkey)</c> (call 7). Coldkey-signed; burns the subnet's burn cost.</summary>
public sealed record BurnedRegister(ushort Netuid, AccountId Hotkey) : ChainCall
{
    /// <summary>Call index.</summary>
    public const byte Index = 7;

    /// <inheritdoc />
    public override byte Pallet => SubtensorPallet;

    /// <inheritdoc />
    public override byte Method => Index;

    /// <inheritdoc />
    public override string Name => "burned_register";

    /// <inheritdoc />
    public override SignerRole Signer => SignerRole.Coldkey;

    /// <inheritdoc />
    protected override void EncodeArgs(ScaleWriter writer)
    {
        writer.U16(Netuid);
        Hotkey.Encode(writer);
    }

    internal static BurnedRegister DecodeArgs(ref ScaleReader r) => new(r.U16(), AccountId.Decode(ref r));
}

/// <summary>
/// <c>SubtensorModule.serve_axon(netuid u16, version u32, ip u128, port u16, ip_type u8, protocol u8,
/// placeholder1 u8, placeholder2 u8)</c> (call 4). Hotkey-signed.
/// </summary>
public sealed record ServeAxon(
    ushort Netuid,
    uint Version,
    UInt128 Ip,
    ushort Port,
    byte IpType,
    byte Protocol,
    byte Placeholder1 = 0,
    byte Placeholder2 = 0) : ChainCall
{
    /// <summary>Call index.</summary>
    public const byte Index = 4;

    /// <inheritdoc />
    public override byte Pallet => SubtensorPallet;

    /// <inheritdoc />
    public override byte Method => Index;

    /// <inheritdoc />
    public override string Name => "serve_axon";

    /// <inheritdoc />
    public override SignerRole Signer => SignerRole.Hotkey;

    /// <inheritdoc />
    protected override void EncodeArgs(ScaleWriter writer) =>
        writer.U16(Netuid).U32(Version).U128(Ip).U16(Port).U8(IpType).U8(Protocol).U8(Placeholder1).U8(Placeholder2);

    internal static ServeAxon DecodeArgs(ref ScaleReader r) =>
        new(r.U16(), r.U32(), r.U128(), r.U16(), r.U8(), r.U8(), r.U8(), r.U8());
}

/// <summary>
/// <c>SubtensorModule.add_stake(hotkey, amount_staked u64)</c> (call 2), coldkey-signed. The May-2024 runtime has
/// no netuid (one TAO stake per hotkey); with <see cref="Netuid"/> set the call is laid out as runtimes from
/// spec ~218 on expect (hotkey, netuid u16, amount u64) so the same record can target them. The localnet runs
/// spec-148 rules: its pool refuses the netuid layout (BadCall), and its backend's <c>ForRuntime</c> drops the netuid
/// before signing, as the metadata-driven encoder does for a spec-148 node.
/// </summary>
public sealed record AddStake(AccountId Hotkey, Balance Amount, ushort? Netuid = null) : ChainCall
{
    /// <summary>Call index.</summary>
    public const byte Index = 2;

    /// <inheritdoc />
    public override byte Pallet => SubtensorPallet;

    /// <inheritdoc />
    public override byte Method => Index;

    /// <inheritdoc />
    public override string Name => "add_stake";

    /// <inheritdoc />
    public override SignerRole Signer => SignerRole.Coldkey;

    /// <inheritdoc />
    protected override void EncodeArgs(ScaleWriter writer)
    {
        Hotkey.Encode(writer);
        if (Netuid is { } n) writer.U16(n);
        writer.U64(Amount.Rao);
    }

    internal static AddStake DecodeArgs(ref ScaleReader r)
    {
        var hotkey = AccountId.Decode(ref r);
        ushort? netuid = r.Remaining == 10 ? r.U16() : null;
        return new AddStake(hotkey, new Balance(r.U64()), netuid);
    }
}

/// <summary>
/// <c>SubtensorModule.remove_stake(hotkey, amount_unstaked u64)</c> (call 3), coldkey-signed; the optional
/// <see cref="Netuid"/> selects the later (hotkey, netuid, amount) layout, as for <see cref="AddStake"/>.
/// </summary>
public sealed record RemoveStake(AccountId Hotkey, Balance Amount, ushort? Netuid = null) : ChainCall
{
    /// <summary>Call index.</summary>
    public const byte Index = 3;

    /// <inheritdoc />
    public override byte Pallet => SubtensorPallet;

    /// <inheritdoc />
    public override byte Method => Index;

    /// <inheritdoc />
    public override string Name => "remove_stake";

    /// <inheritdoc />
    public override SignerRole Signer => SignerRole.Coldkey;

    /// <inheritdoc />
    protected override void EncodeArgs(ScaleWriter writer)
    {
        Hotkey.Encode(writer);
        if (Netuid is { } n) writer.U16(n);
        writer.U64(Amount.Rao);
    }

    internal static RemoveStake DecodeArgs(ref ScaleReader r)
    {
        var hotkey = AccountId.Decode(ref r);
        ushort? netuid = r.Remaining == 10 ? r.U16() : null;
        return new RemoveStake(hotkey, new Balance(r.U64()), netuid);
    }
}

/// <summary>
/// <c>Balances.transfer_keep_alive(dest MultiAddress, value Compact&lt;u64&gt;)</c> (pallet 5, call 3), or with
/// <paramref name="KeepAlive"/> false <c>Balances.transfer_allow_death</c> (call 0, named <c>transfer</c> in spec 148;
/// the sender may fall below the existential deposit and is then reaped). Only the <c>Id</c> address variant
/// (0x00 ‖ AccountId32) is supported. Signed by the sender's coldkey.
/// </summary>
public sealed record Transfer(AccountId Dest, Balance Value, bool KeepAlive = true) : ChainCall
{
    /// <summary>Call index of transfer_keep_alive.</summary>
    public const byte Index = 3;

    /// <summary>Call index of transfer_allow_death.</summary>
    public const byte AllowDeathIndex = 0;

    /// <inheritdoc />
    public override byte Pallet => BalancesPallet;

    /// <inheritdoc />
    public override byte Method => KeepAlive ? Index : AllowDeathIndex;

    /// <inheritdoc />
    public override string Name => KeepAlive ? "transfer_keep_alive" : "transfer_allow_death";

    /// <inheritdoc />
    public override SignerRole Signer => SignerRole.Coldkey;

    /// <inheritdoc />
    protected override void EncodeArgs(ScaleWriter writer)
    {
        writer.U8(0);
        Dest.Encode(writer);
        writer.Compact(Value.Rao);
    }

    internal static Transfer DecodeArgs(ref ScaleReader r, bool keepAlive)
    {
        var at = r.Position;
        var variant = r.U8();
        if (variant != 0) throw new ScaleException($"MultiAddress variant {variant} is not supported (only Id)", at);
        return new Transfer(AccountId.Decode(ref r), new Balance(r.CompactU64()), keepAlive);
    }
}

/// <summary>
/// <c>SubtensorModule.set_weights(netuid u16, dests Vec&lt;u16&gt;, weights Vec&lt;u16&gt;, version_key u64)</c>
/// (call 0). Hotkey-signed. The chain max-upscales the values (largest → 65535).
/// </summary>
public sealed record SetWeights(ushort Netuid, ImmutableArray<ushort> Dests, ImmutableArray<ushort> Weights, ulong VersionKey) : ChainCall
{
    /// <summary>Call index.</summary>
    public const byte Index = 0;

    /// <inheritdoc />
    public override byte Pallet => SubtensorPallet;

    /// <inheritdoc />
    public override byte Method => Index;

    /// <inheritdoc />
    public override string Name => "set_weights";

    /// <inheritdoc />
    public override SignerRole Signer => SignerRole.Hotkey;

    /// <inheritdoc />
    protected override void EncodeArgs(ScaleWriter writer)
    {
        writer.U16(Netuid);
        writer.VecU16(Dests.AsSpan());
        writer.VecU16(Weights.AsSpan());
        writer.U64(VersionKey);
    }

    internal static SetWeights DecodeArgs(ref ScaleReader r)
    {
        var netuid = r.U16();
        var dests = r.VecU16(MaxWeightEntries);
        var weights = r.VecU16(MaxWeightEntries);
        return new SetWeights(netuid, ImmutableArray.Create(dests), ImmutableArray.Create(weights), r.U64());
    }

    /// <summary>Value equality including the uid and weight contents.</summary>
    public bool Equals(SetWeights? other) =>
        other is not null && Netuid == other.Netuid && VersionKey == other.VersionKey
        && Dests.AsSpan().SequenceEqual(other.Dests.AsSpan()) && Weights.AsSpan().SequenceEqual(other.Weights.AsSpan());

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Netuid, VersionKey, Dests.Length, Weights.Length);
}

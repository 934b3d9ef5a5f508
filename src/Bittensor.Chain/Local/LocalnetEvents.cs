using Bittensor.Chain.Substrate;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Local;

/// <summary>
/// Builds a block's <c>System.Events</c> as subtensor's spec-148 runtime emits them for the calls the localnet
/// implements: per extrinsic <c>i</c> (phase <c>ApplyExtrinsic(i)</c>) the pallet's events on success
/// (<c>Balances.Transfer</c> with <c>System.NewAccount</c> and <c>Balances.Endowed</c> for a new account,
/// <c>SubtensorModule.NetworkAdded</c>, <c>NeuronRegistered</c>, <c>AxonServed</c>, <c>StakeAdded</c>,
/// <c>StakeRemoved</c>, <c>WeightsSet</c>) then <c>System.ExtrinsicSuccess</c>; or <c>System.ExtrinsicFailed</c>
/// with <c>DispatchError::Module</c> naming the pallet error. Encoded with the node's own metadata.
/// </summary>
internal sealed class LocalnetEvents(LocalnetMetadata metadata)
{
    private readonly List<ScaleValue> _records = [];

    private static readonly ScaleValue DispatchInfo = ScaleValue.Record(
        ("weight", ScaleValue.Record(("ref_time", ScaleValue.Int(0)), ("proof_size", ScaleValue.Int(0)))),
        ("class", ScaleValue.Enum("Normal")),
        ("pays_fee", ScaleValue.Enum("Yes")));

    /// <summary>What a call's events need from the state before it is applied.</summary>
    public object? Before(LocalnetState s, ChainCall call) => call switch
    {
        RegisterNetwork => s.Subnets.Keys.ToHashSet(),
        Transfer t => s.Free.ContainsKey(t.Dest),
        _ => null,
    };

    public void Succeeded(uint index, LocalnetState s, AccountId signer, ChainCall call, object? before)
    {
        void Subtensor(string name, params ScaleValue[] fields) => Add(index, "SubtensorModule", ScaleValue.Enum(name, fields));
        ScaleValue U(ulong v) => ScaleValue.Int(v);
        switch (call)
        {
            case SetWeights c when s.Subnets.TryGetValue(c.Netuid, out var net) && net.Uids.TryGetValue(signer, out var uid):
                Subtensor("WeightsSet", U(c.Netuid), U(uid));
                break;
            case ServeAxon c:
                Subtensor("AxonServed", U(c.Netuid), ScaleValue.Account(signer));
                break;
            case BurnedRegister c when s.Subnets.TryGetValue(c.Netuid, out var net) && net.Uids.TryGetValue(c.Hotkey, out var uid):
                Subtensor("NeuronRegistered", U(c.Netuid), U(uid), ScaleValue.Account(c.Hotkey));
                break;
            case AddStake c:
                Subtensor("StakeAdded", ScaleValue.Account(c.Hotkey), U(c.Amount.Rao));
                break;
            case RemoveStake c:
                Subtensor("StakeRemoved", ScaleValue.Account(c.Hotkey), U(c.Amount.Rao));
                break;
            case RegisterNetwork when before is HashSet<ushort> old:
                foreach (var netuid in s.Subnets.Keys.Where(k => !old.Contains(k))) Subtensor("NetworkAdded", U(netuid), U(0));
                break;
            case Transfer t when t.Value.Rao > 0 && t.Dest != signer:
                if (before is false)
                {
                    Add(index, "System", ScaleValue.EnumRecord("NewAccount", ("account", ScaleValue.Account(t.Dest))));
                    Add(index, "Balances", ScaleValue.EnumRecord("Endowed", ("account", ScaleValue.Account(t.Dest)), ("free_balance", U(t.Value.Rao))));
                }
                Add(index, "Balances", ScaleValue.EnumRecord("Transfer", ("from", ScaleValue.Account(signer)), ("to", ScaleValue.Account(t.Dest)), ("amount", U(t.Value.Rao))));
                break;
        }
        Add(index, "System", ScaleValue.EnumRecord("ExtrinsicSuccess", ("dispatch_info", DispatchInfo)));
    }

    public void Failed(uint index, ChainCall call, string error)
    {
        var pallet = call is Transfer ? LocalnetMetadata.BalancesIndex : LocalnetMetadata.SubtensorIndex;
        var names = call is Transfer ? LocalnetMetadata.BalancesErrors : LocalnetMetadata.SubtensorErrors;
        var at = names.IndexOf(error);
        if (at < 0 && LocalnetMetadata.SystemErrors.IndexOf(error) is var sys and >= 0)
        {
            pallet = LocalnetMetadata.SystemIndex;
            at = sys;
        }
        var dispatchError = at < 0
            ? ScaleValue.Enum("Other")
            : ScaleValue.Enum("Module", ScaleValue.Record(("index", ScaleValue.Int(pallet)), ("error", ScaleValue.Bytes([(byte)at, 0, 0, 0]))));
        Add(index, "System", ScaleValue.EnumRecord("ExtrinsicFailed", ("dispatch_error", dispatchError), ("dispatch_info", DispatchInfo)));
    }

    /// <summary>SCALE <c>Vec&lt;EventRecord&gt;</c>.</summary>
    public byte[] Encode() => metadata.Registry.Encode(metadata.EventsType, ScaleValue.Seq(_records));

    private void Add(uint index, string pallet, ScaleValue @event) =>
        _records.Add(ScaleValue.Record(
            ("phase", ScaleValue.Enum("ApplyExtrinsic", ScaleValue.Int(index))),
            ("event", ScaleValue.Enum(pallet, @event)),
            ("topics", ScaleValue.Seq())));
}

using System.Collections.Immutable;
using Bittensor.Chain.Substrate;
using Bittensor.Core;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Tests.Substrate;

/// <summary>
/// The same metadata-driven code against spec 148 (the localnet's rules, recorded from Tensora-org/subtensor_local in
/// chopsticks): V14 only, add_stake without a netuid, a different extension list.
/// </summary>
public sealed class Spec148Tests
{
    private static readonly AccountId Bob = AccountId.Parse("5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty");

    [Fact]
    public void Spec_148_metadata_decodes_and_its_calls_match_polkadot_js_and_the_localnet_encoders()
    {
        var md = Fixtures.Spec148;
        Assert.Equal(14, md.Version);
        Assert.Equal(148, Fixtures.Local148.GetProperty("runtime_version").GetProperty("specVersion").GetInt32());
        Assert.Equal(7, md.Pallet("SubtensorModule").Index);
        MetadataCodecTests.AssertCallsRoundTrip(md, Fixtures.Local148);
        string Recorded(string call) => Fixtures.Local148.GetProperty("calls").EnumerateArray()
            .Single(c => c.GetProperty("call").GetString() == call).GetProperty("hex").GetString()!;
        // add_stake has no netuid in spec 148: the metadata says so, and the encoder follows it.
        Assert.Equal(Recorded("add_stake"), Hex.Encode(MetadataCalls.Encode(md, "SubtensorModule", "add_stake",
            ("hotkey", ScaleValue.Account(Bob)), ("amount_staked", ScaleValue.Int(1_000_000_000)))));
        Assert.Throws<ArgumentException>(() => MetadataCalls.Encode(md, "SubtensorModule", "add_stake",
            ("hotkey", ScaleValue.Account(Bob)), ("netuid", ScaleValue.Int(1)), ("amount_staked", ScaleValue.Int(1))));
        // The hand-written spec-148 encoders the localnet uses agree with the runtime's own metadata.
        Assert.Equal(Recorded("add_stake"), Hex.Encode(new AddStake(Bob, new Balance(1_000_000_000)).ToBytes()));
        Assert.Equal(Recorded("burned_register"), Hex.Encode(new BurnedRegister(3, Bob).ToBytes()));
        Assert.Equal(Recorded("serve_axon"), Hex.Encode(new ServeAxon(3, 101, 2130706433, 8091, 4, 0).ToBytes()));
        Assert.Equal(Recorded("register_network"), Hex.Encode(new RegisterNetwork().ToBytes()));
        Assert.Equal(Recorded("set_weights"), Hex.Encode(new SetWeights(3, [0], [65535], 0).ToBytes()));
        Assert.Equal(Recorded("transfer_keep_alive"), Hex.Encode(new Transfer(Bob, new Balance(123_456_789)).ToBytes()));
    }

    [Fact]
    public void Spec_148_storage_keys_events_and_extensions_come_from_its_metadata()
    {
        var md = Fixtures.Spec148;
        MetadataCodecTests.AssertStorageKeys(md, Fixtures.Local148, 100);
        var events = MetadataCodecTests.AssertEvents(md, Fixtures.Local148);
        Assert.Contains(events, e => e.Name == "ExtrinsicFailed");
        var raw = Fixtures.HexOf(Fixtures.Local148, "alice_account_raw");
        var account = ChainRecords.ToAccountInfo(StorageKeys.DecodeValue(md, "System", "Account", raw)!);
        Assert.Equal(2u, account.Nonce);
        Assert.Equal(999_876_443_227UL, account.Free.Rao);
        // The extension list is read from metadata: spec 148 has no CheckMetadataHash, so its payload lacks the mode
        // byte and the trailing None that spec 218's carries (the localnet's SignedCall uses the 218 layout).
        var builder = new ExtrinsicBuilder(md);
        Assert.DoesNotContain("CheckMetadataHash", builder.ExtensionNames);
        Assert.Contains("SubtensorSignedExtension", builder.ExtensionNames);
        var genesis = Fixtures.HexOf(Fixtures.Local148, "genesis_hash");
        var call = new SetWeights(3, [0], [65535], 0).ToBytes();
        var payload = builder.SigningPayload(call, new TransactionParams(148, 1, genesis, 5, Era.Immortal, genesis));
        Assert.Equal(Hex.Encode(call) + "00" + "14" + "00" + "94000000" + "01000000" + Hex.Encode(genesis)[2..] + Hex.Encode(genesis)[2..], Hex.Encode(payload));
        var with218 = SignedCall.SigningPayload(call, 5, new ChainIdentity("local", genesis, 148, 1));
        Assert.Equal(payload.Length + 2, with218.Length);
    }
}

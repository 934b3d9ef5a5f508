using System.Globalization;
using System.Numerics;
using System.Text.Json;
using Bittensor.Chain.Substrate;
using Bittensor.Core;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Tests.Substrate;

/// <summary>Calls, storage keys, events and extrinsics built from metadata, against bytes polkadot-js produced.</summary>
public sealed class MetadataCodecTests
{
    private static readonly AccountId Alice = AccountId.Parse("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
    private static readonly AccountId Bob = AccountId.Parse("5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty");

    private static ScaleValue N(BigInteger v) => ScaleValue.Int(v);

    private static BigInteger Num(JsonElement e) =>
        BigInteger.Parse(e.GetString()!.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);

    private static ScaleValue Nums(JsonElement e) => ScaleValue.Seq(e.EnumerateArray().Select(x => N(Num(x))));

    private static string CallHex(string name) =>
        Fixtures.Chain.GetProperty("calls").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name).GetProperty("call_data").GetString()!;

    private static JsonElement CallArgs(string name) =>
        Fixtures.Chain.GetProperty("calls").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name).GetProperty("args");

    public static TheoryData<int> Versions => [14, 15];

    private static RuntimeMetadata Md(int v) => v == 14 ? Fixtures.V14 : Fixtures.V15;

    [Theory]
    [MemberData(nameof(Versions))]
    public void Calls_encoded_from_metadata_match_polkadot_js_byte_for_byte(int version)
    {
        var md = Md(version);
        var sw = CallArgs("set_weights");
        Assert.Equal(CallHex("set_weights"), Hex.Encode(MetadataCalls.Encode(md, "SubtensorModule", "set_weights",
            ("netuid", N(1)), ("dests", Nums(sw.GetProperty("dests"))), ("weights", Nums(sw.GetProperty("weights"))), ("version_key", N(0)))));
        var sa = CallArgs("serve_axon");
        Assert.Equal(CallHex("serve_axon"), Hex.Encode(MetadataCalls.Encode(md, "SubtensorModule", "serve_axon",
            ("netuid", N(1)), ("version", N(101)), ("ip", N(Num(sa.GetProperty("ip")))), ("port", N(8091)), ("ip_type", N(4)),
            ("protocol", N(0)), ("placeholder1", N(0)), ("placeholder2", N(0)))));
        Assert.Equal(CallHex("burned_register"), Hex.Encode(MetadataCalls.Encode(md, "SubtensorModule", "burned_register",
            ("hotkey", ScaleValue.Account(Bob)), ("netuid", N(1)))));
        Assert.Equal(CallHex("add_stake"), Hex.Encode(MetadataCalls.Encode(md, "SubtensorModule", "add_stake",
            ("hotkey", ScaleValue.Account(Bob)), ("netuid", N(1)), ("amount_staked", N(1_000_000_000)))));
        Assert.Equal(CallHex("remove_stake"), Hex.Encode(MetadataCalls.Encode(md, "SubtensorModule", "remove_stake",
            ("hotkey", ScaleValue.Account(Bob)), ("netuid", N(1)), ("amount_unstaked", N(5000)))));
        Assert.Equal(CallHex("transfer_keep_alive"), Hex.Encode(MetadataCalls.Encode(md, "Balances", "transfer_keep_alive",
            ("dest", ScaleValue.Enum("Id", ScaleValue.Account(Bob))), ("value", N(123_456_789)))));
        AssertCallsRoundTrip(md, Fixtures.Raonet);
        var sets = MetadataCalls.Decode(md, Hex.Decode(CallHex("set_weights")));
        Assert.Equal([0, 1, 5], sets.Args.Values[1].AsItems().Select(v => (int)v.AsU16()));
    }

    [Fact]
    public void A_wrong_argument_list_names_what_the_call_takes()
    {
        var md = Fixtures.V14;
        var missing = Assert.Throws<ArgumentException>(() => MetadataCalls.Encode(md, "SubtensorModule", "burned_register", ("netuid", N(1))));
        Assert.Contains("hotkey", missing.Message, StringComparison.Ordinal);
        var extra = Assert.Throws<ArgumentException>(() => MetadataCalls.Encode(md, "SubtensorModule", "burned_register",
            ("netuid", N(1)), ("hotkey", ScaleValue.Account(Bob)), ("amount", N(3))));
        Assert.Contains("no argument 'amount'", extra.Message, StringComparison.Ordinal);
        var overflow = Assert.Throws<ArgumentException>(() => MetadataCalls.Encode(md, "SubtensorModule", "burned_register",
            ("netuid", N(70_000)), ("hotkey", ScaleValue.Account(Bob))));
        Assert.Contains("netuid", overflow.Message, StringComparison.Ordinal);
        Assert.Throws<MetadataException>(() => MetadataCalls.Encode(md, "SubtensorModule", "no_such_call"));
        Assert.Throws<ScaleException>(() => MetadataCalls.Decode(md, [200, 0]));
        Assert.Throws<ScaleException>(() => MetadataCalls.Decode(md, [7, 250]));
        Assert.Throws<ScaleException>(() => MetadataCalls.Decode(md, Hex.Decode(CallHex("set_weights"))[..^1]));
    }

    [Fact]
    public void Storage_keys_match_polkadot_js_for_chain_json_items()
    {
        var md = Fixtures.V14;
        string Key(string p, string i, params ScaleValue[] k) => Hex.Encode(StorageKeys.Key(md, p, i, k));
        var expected = Fixtures.Chain.GetProperty("storage_keys").EnumerateArray()
            .ToDictionary(e => e.GetProperty("label").GetString()!, e => e.GetProperty("key").GetString()!, StringComparer.Ordinal);
        Assert.Equal(expected["System.Account(alice)"], Key("System", "Account", ScaleValue.Account(Alice)));
        Assert.Equal(expected["SubtensorModule.Uids(1, bob)"], Key("SubtensorModule", "Uids", N(1), ScaleValue.Account(Bob)));
        Assert.Equal(expected["SubtensorModule.Keys(1, 0)"], Key("SubtensorModule", "Keys", N(1), N(0)));
        Assert.Equal(expected["SubtensorModule.Axons(1, bob)"], Key("SubtensorModule", "Axons", N(1), ScaleValue.Account(Bob)));
        Assert.Equal(expected["SubtensorModule.SubnetworkN(1)"], Key("SubtensorModule", "SubnetworkN", N(1)));
        Assert.Equal(expected["SubtensorModule.Weights(1, 3)"], Key("SubtensorModule", "Weights", N(1), N(3)));
        Assert.Equal(expected["SubtensorModule.TotalNetworks"], Key("SubtensorModule", "TotalNetworks"));
        Assert.Equal(expected["prefix SubtensorModule"], Hex.Encode(StorageKeys.Prefix("SubtensorModule", "")));
        // A partial key of a double map is the prefix polkadot-js pages with.
        Assert.StartsWith(Key("SubtensorModule", "Keys", N(1)), expected["SubtensorModule.Keys(1, 0)"], StringComparison.Ordinal);
        Assert.Equal("0x26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9", Hex.Encode(StorageKeys.Prefix("System", "Account")));
        Assert.Throws<ArgumentException>(() => StorageKeys.Key(md, "SubtensorModule", "SubnetworkN", N(1), N(2)));
        Assert.Throws<MetadataException>(() => StorageKeys.Key(md, "SubtensorModule", "NoSuchItem"));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void Every_storage_key_polkadot_js_built_for_spec_218_is_reproduced_and_its_key_parts_decode_back(int version) =>
        AssertStorageKeys(Md(version), Fixtures.Raonet, 200);

    internal static void AssertStorageKeys(RuntimeMetadata md, JsonElement fixture, int atLeast)
    {
        var count = 0;
        foreach (var e in fixture.GetProperty("storage_keys").EnumerateArray())
        {
            var pallet = e.GetProperty("pallet").GetString()!;
            var item = e.GetProperty("item").GetString()!;
            var entry = md.Pallet(pallet).FindStorage(item) ?? throw new InvalidOperationException($"{pallet}.{item} missing");
            var parts = entry.Hashers.Length switch
            {
                0 => [],
                1 => new[] { entry.KeyType!.Value },
                _ => ((TupleDef)md.Types[entry.KeyType!.Value].Def).Elements.ToArray(),
            };
            var args = e.GetProperty("args").EnumerateArray().Select((a, i) => Fixtures.Arg(md.Types, parts[i], a)).ToArray();
            var key = StorageKeys.Key(md, pallet, item, args);
            Assert.Equal(e.GetProperty("key").GetString(), Hex.Encode(key));
            Assert.Equal(e.GetProperty("hashers").EnumerateArray().Select(h => h.GetString()), entry.Hashers.Select(h => h.ToString()));
            var back = StorageKeys.DecodeKey(md, pallet, item, key);
            for (var i = 0; i < args.Length; i++)
            {
                if (entry.Hashers[i] is StorageHasher.Identity or StorageHasher.Blake2_128Concat or StorageHasher.Twox64Concat)
                    Assert.Equal(md.Types.Encode(parts[i], args[i]), md.Types.Encode(parts[i], back[i]));
            }
            count++;
        }
        Assert.True(count >= atLeast, $"only {count} keys");
    }

    [Fact]
    public void Every_hasher_matches_polkadot_js_util_crypto()
    {
        foreach (var row in Fixtures.Hashers.EnumerateArray())
        {
            var data = Fixtures.HexOf(row, "data");
            Assert.Equal(row.GetProperty("Blake2_128").GetString(), Hex.Encode(StorageKeys.Hash(StorageHasher.Blake2_128, data)));
            Assert.Equal(row.GetProperty("Blake2_256").GetString(), Hex.Encode(StorageKeys.Hash(StorageHasher.Blake2_256, data)));
            Assert.Equal(row.GetProperty("Twox128").GetString(), Hex.Encode(StorageKeys.Hash(StorageHasher.Twox128, data)));
            Assert.Equal(row.GetProperty("Twox256").GetString(), Hex.Encode(StorageKeys.Hash(StorageHasher.Twox256, data)));
            Assert.Equal(row.GetProperty("Twox64").GetString() + Hex.Encode(data)[2..], Hex.Encode(StorageKeys.Hash(StorageHasher.Twox64Concat, data)));
            Assert.Equal(row.GetProperty("Blake2_128").GetString() + Hex.Encode(data)[2..], Hex.Encode(StorageKeys.Hash(StorageHasher.Blake2_128Concat, data)));
            Assert.Equal(Hex.Encode(data), Hex.Encode(StorageKeys.Hash(StorageHasher.Identity, data)));
        }
    }

    private static string Lower1(string s) => char.ToLowerInvariant(s[0]) + s[1..];

    /// <summary>Decodes the fixture's raw System.Events and checks names, phases and module errors against polkadot-js.</summary>
    internal static System.Collections.Immutable.ImmutableArray<ChainEvent> AssertEvents(RuntimeMetadata md, JsonElement fixture)
    {
        var events = MetadataEvents.DecodeEvents(md, Fixtures.HexOf(fixture, "events_raw"));
        var expected = fixture.GetProperty("events_decoded").EnumerateArray().ToArray();
        Assert.Equal(expected.Length, events.Length);
        for (var i = 0; i < events.Length; i++)
        {
            Assert.Equal(expected[i].GetProperty("pallet").GetString(), Lower1(events[i].Pallet));
            Assert.Equal(expected[i].GetProperty("name").GetString(), events[i].Name);
            Assert.Equal(expected[i].GetProperty("phase").GetString(), $"{{\"applyExtrinsic\":{events[i].ExtrinsicIndex}}}");
            if (expected[i].TryGetProperty("module_error", out var me))
                Assert.Equal(me.GetString(), Lower1(MetadataEvents.ResolveDispatchError(md, events[i].Fields.Field("dispatch_error")).ToString()));
        }
        return events;
    }

    /// <summary>Each recorded call decodes by name and re-encodes from its named arguments to the same bytes.</summary>
    internal static void AssertCallsRoundTrip(RuntimeMetadata md, JsonElement fixture)
    {
        foreach (var c in fixture.GetProperty("calls").EnumerateArray())
        {
            var bytes = Fixtures.HexOf(c, "hex");
            var decoded = MetadataCalls.Decode(md, bytes);
            Assert.Equal(c.GetProperty("pallet").GetString(), decoded.Pallet);
            Assert.Equal(c.GetProperty("call").GetString(), decoded.Call);
            var args = decoded.Args.Names.Select((n, i) => (n!, decoded.Args.Values[i])).ToArray();
            Assert.Equal(bytes, MetadataCalls.Encode(md, decoded.Pallet, decoded.Call, args));
        }
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public void System_events_recorded_on_spec_218_decode_by_name_with_the_module_error_resolved(int version)
    {
        var md = Md(version);
        var events = AssertEvents(md, Fixtures.Raonet);
        var transfer = events.Single(e => e.Pallet == "Balances" && e.Name == "Transfer");
        Assert.Equal(Alice, transfer.Fields.Field("from").AsAccountId());
        Assert.Equal(Bob, transfer.Fields.Field("to").AsAccountId());
        Assert.Equal(123_456_789UL, transfer.Fields.Field("amount").AsU64());
        var failed = events.Single(e => e.Name == "ExtrinsicFailed");
        var error = MetadataEvents.ResolveDispatchError(md, failed.Fields.Field("dispatch_error"));
        Assert.Equal("subtensorModule.HotKeyNotRegisteredInSubNet", Lower1(error.ToString()));
        Assert.Equal("SubtensorModule", error.Pallet);
        Assert.Equal("Module", error.Kind);
        Assert.Equal(2u, failed.ExtrinsicIndex);
    }

    [Fact]
    public void Account_info_and_runtime_api_structs_map_onto_typed_records()
    {
        var md = Fixtures.V14;
        var raw = Fixtures.HexOf(Fixtures.Raonet, "alice_account_raw");
        var account = ChainRecords.ToAccountInfo(StorageKeys.DecodeValue(md, "System", "Account", raw)!);
        var want = Fixtures.Raonet.GetProperty("alice_account_decoded");
        Assert.Equal(uint.Parse(want.GetProperty("nonce").GetString()!, CultureInfo.InvariantCulture), account.Nonce);
        Assert.Equal(ulong.Parse(want.GetProperty("free").GetString()!, CultureInfo.InvariantCulture), account.Free.Rao);
        Assert.Equal(uint.Parse(want.GetProperty("providers").GetString()!, CultureInfo.InvariantCulture), account.Providers);
        var absent = ChainRecords.ToAccountInfo(StorageKeys.DecodeValue(md, "System", "Account", [], present: false)!);
        Assert.Equal(0UL, absent.Free.Rao);
        Assert.Null(StorageKeys.DecodeValue(md, "SubtensorModule", "Axons", [], present: false));

        var legacy = LegacySubtensorTypes.Instance;
        var hotkey = new AccountId(Fixtures.HexOf(Fixtures.Raonet, "keys_1_0"));
        var lite = legacy.DecodeWrapped(legacy.NeuronsLite, Fixtures.HexOf(Fixtures.Raonet, "neurons_lite_1"))!.AsItems().Select(ChainRecords.ToNeuronInfoLite).Single();
        Assert.Equal(hotkey, lite.Hotkey);
        Assert.Equal((ushort)0, lite.Uid);
        Assert.Equal((ushort)1, lite.Netuid);
        Assert.False(lite.Axon.IsServing);
        var full = ChainRecords.ToNeuronInfo(legacy.DecodeWrapped(legacy.NeuronInfo, Fixtures.HexOf(Fixtures.Raonet, "neuron_1_0"))!, 0);
        Assert.Equal(lite.Hotkey, full.Hotkey);
        Assert.Equal(lite.Coldkey, full.Coldkey);
        // Recorded values: spec 218's get_neurons_lite reported no stake entries where get_neuron reported one of 65535 rao.
        Assert.Equal(0UL, lite.Stake.Rao);
        Assert.Equal(65_535UL, full.Stake.Rao);
        Assert.Equal(lite.Emission, full.Emission);
        Assert.Equal(lite.PruningScore, full.PruningScore);
        var subnet = ChainRecords.ToSubnetInfo(legacy.DecodeWrapped(legacy.SubnetInfo, Fixtures.HexOf(Fixtures.Raonet, "subnet_info_1"))!);
        Assert.Equal((ushort)1, subnet.Netuid);
        Assert.Equal((ushort)100, subnet.Tempo);
        Assert.Equal((ushort)1, subnet.SubnetworkN);
        Assert.Equal(1_000_000_000UL, subnet.Burn.Rao);
        Assert.Null(legacy.DecodeWrapped(legacy.SubnetInfo, [0]));
        var missing = Assert.Throws<InvalidCastException>(() => ChainRecords.ToNeuronInfoLite(ScaleValue.Record(("hotkey", ScaleValue.Account(Alice)))));
        Assert.Contains("coldkey", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Signing_payloads_and_extrinsics_from_the_metadata_extension_list_match_polkadot_js_and_the_chain()
    {
        var md = Fixtures.V14;
        var builder = new ExtrinsicBuilder(md);
        var genesis = Fixtures.HexOf(Fixtures.Chain, "genesis_hash");
        foreach (var v in Fixtures.Chain.GetProperty("signing_payloads").EnumerateArray())
        {
            var call = Hex.Decode(CallHex(v.GetProperty("call").GetString()!));
            var p = new TransactionParams(218, 1, genesis, (uint)v.GetProperty("nonce").GetInt32(), Era.Immortal, genesis);
            Assert.Equal(v.GetProperty("payload").GetString(), Hex.Encode(builder.SigningPayload(call, p)));
            var example = Fixtures.HexOf(v, "signed_extrinsic_example");
            var r = new ScaleReader(example);
            var body = r.Bytes();
            var signature = body.AsSpan(1 + 1 + 32 + 1, 64);
            Assert.Equal(example, builder.Signed(call, Alice, signature, p));
        }

        // SUBSTRATE.md §4.5 worked vector: accepted on chain (mortal(64, current 1), nonce 0).
        var era = Era.Mortal(64, 1);
        Assert.Equal([0x15, 0x00], era.Encode());
        var birth = Hex.Decode("0x7cc21112bc40d84c09be1031b84c5ff7dec34dedc409652aef06fa88e1c4befb");
        var tp = new TransactionParams(218, 1, genesis, 0, era, birth);
        var transfer = MetadataCalls.Encode(md, "Balances", "transfer_keep_alive", ("dest", ScaleValue.Enum("Id", ScaleValue.Account(Bob))), ("value", N(123_456_789)));
        Assert.Equal(
            "0x0503008eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a4856346f1d1500000000da0000000100000045454545454545454545454545454545454545454545454545454545454545457cc21112bc40d84c09be1031b84c5ff7dec34dedc409652aef06fa88e1c4befb00",
            Hex.Encode(builder.SigningPayload(transfer, tp)));
        var sig = Hex.Decode("0x927856fb045a88582bcb4cface96910b3293699dbad52b8b5df8066db6208517be041eddb408c83621af9e6e780b518259119d4b7f86ed18ab916e7def27a088");
        Assert.Equal(
            "0x3d028400d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d01927856fb045a88582bcb4cface96910b3293699dbad52b8b5df8066db6208517be041eddb408c83621af9e6e780b518259119d4b7f86ed18ab916e7def27a08815000000000503008eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a4856346f1d",
            Hex.Encode(builder.Signed(transfer, Alice, sig, tp)));
        Assert.Equal([0xa5, 0x02], Era.Mortal(64, 42).Encode());
        Assert.Equal([0x4e, 0x9c], Era.Mortal(32768, 20000).Encode());
        Assert.Equal(1UL, era.BirthBlock(1));
        Assert.Equal([0x10, 0x04, 0x0c, 7, 0], ExtrinsicBuilder.Unsigned([0x0c, 7, 0]));
    }
}

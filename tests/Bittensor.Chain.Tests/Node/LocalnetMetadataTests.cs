using System.Collections.Immutable;
using Bittensor.Chain.Local;
using Bittensor.Chain.Substrate;
using Bittensor.Chain.Tests.Localnet;
using Bittensor.Chain.Tests.Substrate;
using Bittensor.Core;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Tests.Node;

/// <summary>The metadata encoder and the localnet's own metadata (issue 9 part B).</summary>
public sealed class LocalnetMetadataTests
{
    private static readonly LocalnetMetadata Md = LocalnetMetadata.For(new LocalnetOptions());

    private static MetadataDescription Describe(RuntimeMetadata md, uint extra = 0, uint outerEvent = 0, uint outerError = 0) =>
        new(md.Types, md.Pallets, md.Extrinsic, extra, md.RuntimeType, md.Apis, md.OuterEventType ?? outerEvent, md.OuterErrorType ?? outerError);

    [Fact]
    public void The_encoder_is_the_inverse_of_the_decoder_on_our_metadata_and_on_real_runtimes()
    {
        // Ours: decode → encode gives the served bytes back, for V14 and V15.
        Assert.Equal(Hex.Encode(Md.V14), Hex.Encode(MetadataEncoder.EncodeV14(Describe(Md.Metadata))));
        Assert.Equal(Hex.Encode(Md.V15), Hex.Encode(MetadataEncoder.EncodeV15(Describe(Md.MetadataV15, Md.Description.ExtraType))));
        // Real runtimes (spec 148 V14, spec 218 V14): decode → encode → decode keeps every type, pallet and extension
        // (docs are not kept by the decoder, so the bytes are shorter).
        foreach (var real in new[] { Fixtures.Spec148, Fixtures.V14 })
        {
            var again = RuntimeMetadata.Decode(MetadataEncoder.EncodeV14(Describe(real)));
            Assert.Equal(real.Types.Count, again.Types.Count);
            for (uint i = 0; i < real.Types.Count; i++)
            {
                Assert.Equal(real.Types[i].PathText, again.Types[i].PathText);
                Assert.Equal(real.Types.Describe(i), again.Types.Describe(i));
                Assert.Equal(real.Types[i].Def.GetType(), again.Types[i].Def.GetType());
            }
            Assert.Equal(real.Pallets.Select(p => (p.Name, p.Index, p.Storage.Length, p.Constants.Length)), again.Pallets.Select(p => (p.Name, p.Index, p.Storage.Length, p.Constants.Length)));
            Assert.Equal(real.Extrinsic.SignedExtensions.ToArray(), again.Extrinsic.SignedExtensions.ToArray());
            foreach (var p in real.Pallets)
            foreach (var s in p.Storage)
                Assert.Equal(s.Default.AsSpan().ToArray(), again.Pallet(p.Name).FindStorage(s.Name)!.Default.AsSpan().ToArray());
        }
        // V15 of spec 218 too (runtime APIs and outer enums).
        var v15 = Fixtures.V15;
        var extra = v15.Types.Types.First(t => t.Def is TupleDef td && td.Elements.Length == v15.Extrinsic.SignedExtensions.Length
            && td.Elements.SequenceEqual(v15.Extrinsic.SignedExtensions.Select(x => x.Type))).Id;
        var back = RuntimeMetadata.Decode(MetadataEncoder.EncodeV15(Describe(v15, extra)));
        Assert.Equal(v15.Apis.Select(a => (a.Name, a.Methods.Length)), back.Apis.Select(a => (a.Name, a.Methods.Length)));
        Assert.Equal((v15.OuterEventType, v15.OuterErrorType), (back.OuterEventType, back.OuterErrorType));
    }

    [Fact]
    public void Our_calls_storage_events_and_errors_have_spec_148s_names_indices_hashers_and_types()
    {
        var ours = Md.Metadata;
        var real = Fixtures.Spec148;
        foreach (var name in new[] { "System", "Timestamp", "Balances", "SubtensorModule" })
        {
            var o = ours.Pallet(name);
            var r = real.Pallet(name);
            Assert.Equal(r.Index, o.Index);
            Assert.Equal(r.StoragePrefix, o.StoragePrefix);
            foreach (var s in o.Storage)
            {
                var rs = r.FindStorage(s.Name);
                Assert.True(rs is not null, $"{name}.{s.Name} is not a spec-148 storage item");
                Assert.Equal(rs!.Hashers.ToArray(), s.Hashers.ToArray());
                Assert.Equal(rs.Modifier, s.Modifier);
                Assert.Equal(Key(real, rs), Key(ours, s));
                Assert.Equal(real.Types.Describe(rs.ValueType), ours.Types.Describe(s.ValueType));
                Assert.Equal(real.Types.MinEncodedSize(rs.ValueType), ours.Types.MinEncodedSize(s.ValueType));
            }
            foreach (var (list, rlist, what) in new[] { (ours.Events(o), real.Events(r), "event"), (ours.Errors(o), real.Errors(r), "error") })
            foreach (var v in list)
            {
                var rv = rlist.SingleOrDefault(x => x.Name == v.Name);
                Assert.True(rv is not null, $"{name} {what} {v.Name} is not in spec 148");
                Assert.Equal(rv!.Index, v.Index);
                Assert.Equal(rv.Fields.Select(f => (f.Name, real.Types.Describe(f.Type))), v.Fields.Select(f => (f.Name, ours.Types.Describe(f.Type))));
            }
            foreach (var c in ours.Calls(o))
            {
                // transfer_allow_death is spec 148's `transfer` under its later name (same index and arguments).
                var rc = real.Calls(r).Single(x => x.Index == c.Index);
                Assert.Equal(c.Name == "transfer_allow_death" ? "transfer" : c.Name, rc.Name);
                Assert.Equal(rc.Fields.Select(f => (f.Name, real.Types.Describe(f.Type))), c.Fields.Select(f => (f.Name, ours.Types.Describe(f.Type))));
            }
        }
        Assert.Equal(real.Errors(real.Pallet("SubtensorModule")).Select(e => e.Name), LocalnetMetadata.SubtensorErrors);
        // The six SubtensorModule calls and two Balances calls the localnet applies, nothing else.
        Assert.Equal(["set_weights", "add_stake", "remove_stake", "serve_axon", "burned_register", "register_network"], ours.Calls(ours.Pallet("SubtensorModule")).Select(c => c.Name));
        Assert.Equal(["transfer_allow_death", "transfer_keep_alive"], ours.Calls(ours.Pallet("Balances")).Select(c => c.Name));
    }

    private static string Key(RuntimeMetadata md, StorageEntryMetadata s) => s.KeyType is { } k ? md.Types.Describe(k) : "";

    [Fact]
    public void The_listed_extensions_are_exactly_what_SignedCall_signs_and_the_encoders_agree_with_the_metadata()
    {
        var builder = new ExtrinsicBuilder(Md.Metadata);
        Assert.Equal(["CheckNonZeroSender", "CheckSpecVersion", "CheckTxVersion", "CheckGenesis", "CheckMortality", "CheckNonce",
            "CheckWeight", "ChargeTransactionPayment", "CheckMetadataHash"], builder.ExtensionNames);
        var genesis = Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray();
        var identity = new ChainIdentity("local", genesis, 148, 1);
        ChainCall[] calls =
        [
            new SetWeights(3, [0, 1], [65535, 7], 0), new AddStake(DevAccounts.Bob, new Balance(5)), new RemoveStake(DevAccounts.Bob, new Balance(5)),
            new ServeAxon(1, 2, 0x01020304, 8091, 4, 0), new BurnedRegister(1, DevAccounts.Bob), new RegisterNetwork(),
            new Transfer(DevAccounts.Bob, new Balance(123)), new Transfer(DevAccounts.Bob, new Balance(123), KeepAlive: false),
        ];
        foreach (var call in calls)
        {
            var bytes = call.ToBytes();
            var expected = builder.SigningPayload(bytes, new TransactionParams(148, 1, genesis, 9, Era.Immortal, genesis));
            Assert.Equal(Hex.Encode(expected), Hex.Encode(SignedCall.SigningPayload(bytes, 9, identity)));
            var decoded = MetadataCalls.Decode(Md.Metadata, bytes);
            Assert.Equal(call.Name, decoded.Call);
        }
        var key = TestChain.Key("//Alice");
        var signed = CallSigner.Sign(calls[6], key, 9, identity);
        Assert.Equal(Hex.Encode(builder.Signed(signed.Call.Span, DevAccounts.Alice, signed.Signature.Span, new TransactionParams(148, 1, genesis, 9, Era.Immortal, genesis))),
            Hex.Encode(signed.ToExtrinsic()));
    }

    [Fact]
    public void Runtime_version_names_the_apis_by_their_blake2_ids_and_the_constants_decode()
    {
        Assert.Equal("0xdf6acb689907609b", Hex.Encode(LocalnetMetadata.ApiId("Core")));
        Assert.Equal("0x37e397fc7c91f5e4", Hex.Encode(LocalnetMetadata.ApiId("Metadata")));
        Assert.Equal("0xbc9d89904f5b923f", Hex.Encode(LocalnetMetadata.ApiId("AccountNonceApi")));
        var system = Md.Metadata.Pallet("System");
        var version = Md.Metadata.Types.Decode(system.FindConstant("Version")!.Type, system.FindConstant("Version")!.Value.AsSpan());
        Assert.Equal(148UL, version.Field("spec_version").AsU64());
        Assert.Equal("node-subtensor", version.Field("spec_name").AsText());
        Assert.Equal(LocalnetMetadata.BlockHashCount, Md.Metadata.Types.Decode(system.FindConstant("BlockHashCount")!.Type, system.FindConstant("BlockHashCount")!.Value.AsSpan()).AsU32());
        Assert.Equal(["Core", "Metadata", "AccountNonceApi", "TransactionPaymentApi", "NeuronInfoRuntimeApi", "SubnetInfoRuntimeApi"], Md.MetadataV15.Apis.Select(a => a.Name));
        Assert.Equal(LocalnetMetadata.ApiVersions.Select(a => a.Name), Md.MetadataV15.Apis.Select(a => a.Name));
    }

    [Fact]
    public async Task Blocks_are_substrate_headers_chained_by_hash_and_their_events_decode_by_name()
    {
        await using var t = TestChain.Create();
        var genesis = t.Chain.FindBlock(0)!;
        Assert.Equal(Hex.Encode(t.Chain.Identity.GenesisHash.Span), Hex.Encode(genesis.Hash.Span));
        Assert.Equal(Hex.Encode(Blake2b.Hash256(genesis.Header.Span)), Hex.Encode(genesis.Hash.Span));
        var ok = t.Chain.SubmitAsync(await t.Sign("//Alice", new Transfer(TestChain.Id("//fresh"), Balance.FromTao(2))));
        var bad = t.Chain.SubmitAsync(await t.Sign("//Bob", new BurnedRegister(42, DevAccounts.Bob)));
        var info = await t.Chain.ProduceBlockAsync();
        Assert.IsType<CallResult.InBlock>(await ok);
        Assert.Equal("NetworkDoesNotExist", Assert.IsType<CallResult.Failed>(await bad).Error);
        var block = t.Chain.FindBlock(info.Number)!;
        Assert.Equal(Hex.Encode(info.Hash.Span), Hex.Encode(block.Hash.Span));
        Assert.Equal(Hex.Encode(Blake2b.Hash256(block.Header.Span)), Hex.Encode(block.Hash.Span));
        Assert.Equal(Hex.Encode(genesis.Hash.Span), Hex.Encode(block.ParentHash.Span));
        Assert.Equal(2, block.Extrinsics!.Count);
        var events = MetadataEvents.DecodeEvents(Md.Metadata, block.Events);
        Assert.Equal(["System.NewAccount", "Balances.Endowed", "Balances.Transfer", "System.ExtrinsicSuccess", "System.ExtrinsicFailed"],
            events.Select(e => $"{e.Pallet}.{e.Name}"));
        Assert.Equal([0u, 0, 0, 0, 1], events.Select(e => e.ExtrinsicIndex ?? 99));
        var failed = MetadataEvents.ResolveDispatchError(Md.Metadata, events[^1].Fields.Field("dispatch_error"));
        Assert.Equal("SubtensorModule.NetworkDoesNotExist", $"{failed.Pallet}.{failed.Error}");
    }

    [Fact]
    public async Task Mortal_extrinsics_are_checked_against_known_block_hashes_and_the_genesis()
    {
        await using var t = TestChain.Create();
        for (var i = 0; i < 5; i++) await t.Chain.ProduceBlockAsync();
        var builder = new ExtrinsicBuilder(t.Chain.Metadata.Metadata);
        var id = t.Chain.Identity;
        var call = new Transfer(DevAccounts.Bob, Balance.FromTao(1)).ToBytes();
        var era = Era.Mortal(64, 4);
        var birth = t.Chain.BlockHashOf(era.BirthBlock(4))!;
        var good = builder.Sign(call, TestChain.Key("//Alice"), new TransactionParams(148, 1, id.GenesisHash, 0, era, birth));
        var wrongBirth = builder.Sign(call, TestChain.Key("//Alice"), new TransactionParams(148, 1, id.GenesisHash, 0, era, t.Chain.BlockHashOf(3)!));
        var otherGenesis = builder.Sign(call, TestChain.Key("//Alice"), new TransactionParams(148, 1, new byte[32], 0, Era.Immortal, new byte[32]));
        Assert.Equal("BadSignature", t.Chain.Submit(wrongBirth).Rejected!.Error);
        Assert.Equal("BadSignature", t.Chain.Submit(otherGenesis).Rejected!.Error);
        var s = t.Chain.Submit(good);
        Assert.Null(s.Rejected);
        Assert.Equal("AlreadyImported", t.Chain.Submit(good).Rejected!.Error);
        await t.Chain.ProduceBlockAsync();
        Assert.IsType<CallResult.InBlock>(await s.Included!);
        Assert.Equal("Stale", t.Chain.Submit(good).Rejected!.Error);
        // An era born before the kept history (256 blocks): 300 blocks later, period 512 from block 4 is born at block 4.
        for (var i = 0; i < 300; i++) await t.Chain.ProduceBlockAsync();
        var ancient = builder.Sign(call, TestChain.Key("//Alice"), new TransactionParams(148, 1, id.GenesisHash, 1, Era.Mortal(512, 4), id.GenesisHash));
        Assert.Equal("AncientBirthBlock", t.Chain.Submit(ancient).Rejected!.Error);
        Assert.Equal("BadFormat", t.Chain.Submit([1, 2, 3]).Rejected!.Error);
        Assert.Equal("Unsigned", t.Chain.Submit(ExtrinsicBuilder.Unsigned(call)).Rejected!.Error);
    }
}

/// <summary>The localnet's state as Substrate storage.</summary>
public sealed class LocalnetStorageTests
{
    [Fact]
    public async Task Every_storage_entry_has_a_key_and_value_our_metadata_describes_and_the_values_are_the_chains()
    {
        await using var t = TestChain.Create();
        var md = t.Chain.Metadata.Metadata;
        Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new RegisterNetwork()));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new BurnedRegister(1, TestChain.Id("//hot0"))));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//hot0", new ServeAxon(1, 1, 0x0a000001, 8091, 4, 0)));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new AddStake(TestChain.Id("//hot0"), Balance.FromTao(10))));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//hot0", new SetWeights(1, [0], [65535], 0)));
        for (var i = 0; i < 12; i++) await t.Chain.ProduceBlockAsync();
        var storage = t.Chain.BuildStorage();
        var items = md.Pallets.SelectMany(p => p.Storage.Select(s => (Pallet: p.Name, Item: s, Prefix: Hex.Encode(StorageKeys.Prefix(p.Name, s.Name))))).ToList();
        var seen = new HashSet<string>();
        foreach (var key in storage.KeysPaged([], int.MaxValue, []))
        {
            var prefix = Hex.Encode(key.AsSpan(0, 32));
            var (pallet, item, _) = items.Single(i => i.Prefix == prefix);
            seen.Add($"{pallet}.{item.Name}");
            var parts = StorageKeys.DecodeKey(md, pallet, item.Name, key);
            Assert.Equal(Hex.Encode(key), Hex.Encode(StorageKeys.Key(md, pallet, item.Name, [.. parts])));
            var value = storage.Get(key)!;
            Assert.Equal(Hex.Encode(value), Hex.Encode(md.Types.Encode(item.ValueType, md.Types.Decode(item.ValueType, value))));
        }
        foreach (var must in new[] { "System.Account", "System.Events", "System.BlockHash", "SubtensorModule.Axons", "SubtensorModule.Weights", "SubtensorModule.Uids", "SubtensorModule.Keys", "SubtensorModule.Stake" })
            Assert.Contains(must, seen);
        var alice = ChainRecords.ToAccountInfo(StorageKeys.DecodeValue(md, "System", "Account", storage.Get(StorageKeys.Key(md, "System", "Account", ScaleValue.Account(DevAccounts.Alice)))!)!);
        Assert.Equal((await t.Chain.GetBalanceAsync(DevAccounts.Alice)).Rao, alice.Free.Rao);
        Assert.Equal(await t.Chain.GetNonceAsync(DevAccounts.Alice), alice.Nonce);
        var axon = ChainRecords.ToAxonInfo(StorageKeys.DecodeValue(md, "SubtensorModule", "Axons", storage.Get(StorageKeys.Key(md, "SubtensorModule", "Axons", ScaleValue.Int(1), ScaleValue.Account(TestChain.Id("//hot0"))))!)!);
        Assert.Equal((ushort)8091, axon.Port);
        Assert.Equal(t.Chain.BlockNumber, StorageKeys.DecodeValue(md, "System", "Number", storage.Get(StorageKeys.Prefix("System", "Number"))!)!.AsU64());
        // Paging: two keys at a time walk the same keys in order.
        var all = storage.KeysPaged(StorageKeys.Prefix("System", "Account"), int.MaxValue, []);
        var paged = new List<byte[]>();
        byte[] start = [];
        while (true)
        {
            var page = storage.KeysPaged(StorageKeys.Prefix("System", "Account"), 2, start);
            if (page.Count == 0) break;
            paged.AddRange(page);
            start = page[^1];
        }
        Assert.Equal(all.Select(k => Hex.Encode(k)), paged.Select(k => Hex.Encode(k)));
        Assert.True(all.Count >= 7);
    }
}

/// <summary>subtensor's runtime APIs answered from the node's storage, in the spec-148/218 (<c>Vec&lt;u8&gt;</c>-wrapped) layouts.</summary>
public sealed class LocalnetRuntimeApiTests
{
    [Fact]
    public async Task Neuron_and_subnet_runtime_apis_decode_with_the_legacy_layouts_to_what_the_chain_reports()
    {
        await using var t = TestChain.Create();
        Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new RegisterNetwork()));
        for (var i = 0; i < 3; i++) Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new BurnedRegister(1, TestChain.Id($"//hot{i}"))));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//hot1", new ServeAxon(1, 7, 0x0a000002, 8092, 4, 0)));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new AddStake(TestChain.Id("//hot0"), Balance.FromTao(100))));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//hot0", new SetWeights(1, [0, 1, 2], [10, 65535, 300], 0)));
        for (var i = 0; i < 25; i++) await t.Chain.ProduceBlockAsync(); // epochs (tempo 9): ranks, bonds, emission
        var storage = t.Chain.BuildStorage();
        var legacy = LegacySubtensorTypes.Instance;
        byte[] Args(params ushort[] v) => [.. v.SelectMany(x => BitConverter.GetBytes(x))];
        var expected = await t.Chain.GetNeuronsAsync(1);
        var full = legacy.DecodeWrapped(legacy.Neurons, LocalnetRuntimeApi.Call(storage, "NeuronInfoRuntimeApi_get_neurons", Args(1))!)!.AsItems();
        var lite = legacy.DecodeWrapped(legacy.NeuronsLite, LocalnetRuntimeApi.Call(storage, "NeuronInfoRuntimeApi_get_neurons_lite", Args(1))!)!.AsItems();
        Assert.Equal(3, full.Length);
        for (var i = 0; i < 3; i++)
        {
            var e = expected[i];
            var got = ChainRecords.ToNeuronInfo(full[i], e.BlockAtRegistration);
            Assert.Equal(e with { Weights = [], Bonds = [] }, got with { Weights = [], Bonds = [] });
            Assert.Equal(e.Weights.ToArray(), got.Weights.ToArray());
            Assert.Equal(e.Bonds.ToArray(), got.Bonds.ToArray());
            var l = ChainRecords.ToNeuronInfoLite(lite[i]);
            Assert.Equal((e.Hotkey, e.Stake, e.Emission, e.Incentive, e.PruningScore, e.Axon), (l.Hotkey, l.Stake, l.Emission, l.Incentive, l.PruningScore, l.Axon));
            var one = ChainRecords.ToNeuronInfoLite(legacy.DecodeWrapped(legacy.NeuronInfoLite, LocalnetRuntimeApi.Call(storage, "NeuronInfoRuntimeApi_get_neuron_lite", Args(1, (ushort)i))!)!);
            Assert.Equal(l, one);
        }
        Assert.Contains(expected, n => n.Rank > 0); // the epochs ran, so the comparison above saw real values
        Assert.Contains(expected, n => n.Bonds.Length > 0);
        Assert.Null(legacy.DecodeWrapped(legacy.NeuronInfo, LocalnetRuntimeApi.Call(storage, "NeuronInfoRuntimeApi_get_neuron", Args(1, 3))!));
        Assert.Empty(legacy.DecodeWrapped(legacy.Neurons, LocalnetRuntimeApi.Call(storage, "NeuronInfoRuntimeApi_get_neurons", Args(9))!)!.AsItems()); // an empty Vec, as the runtime encodes it

        var subnet = ChainRecords.ToSubnetInfo(legacy.DecodeWrapped(legacy.SubnetInfo, LocalnetRuntimeApi.Call(storage, "SubnetInfoRuntimeApi_get_subnet_info", Args(1))!)!);
        var info = (await t.Chain.GetSubnetAsync(1))!;
        Assert.Equal((info.Netuid, info.N, info.Hyperparameters.Tempo, info.Hyperparameters.Burn, info.Owner, info.EmissionPerBlock.Rao, info.Hyperparameters.MaxAllowedUids, info.Hyperparameters.Kappa),
            (subnet.Netuid, subnet.SubnetworkN, subnet.Tempo, subnet.Burn.Rao, subnet.Owner, subnet.EmissionValue.Rao, subnet.MaxAllowedUids, subnet.Kappa));
        Assert.Equal("00", Convert.ToHexString(LocalnetRuntimeApi.Call(storage, "SubnetInfoRuntimeApi_get_subnet_info", Args(9))!));
        var all = new Bittensor.Core.Scale.ScaleReader(LocalnetRuntimeApi.Call(storage, "SubnetInfoRuntimeApi_get_subnets_info", [])!).Bytes();
        var r = new Bittensor.Core.Scale.ScaleReader(all);
        Assert.Equal(1, r.Length(1));
        Assert.Equal(1, r.U8()); // Some
        Assert.Equal(subnet, ChainRecords.ToSubnetInfo(legacy.Registry.Decode(legacy.SubnetInfo, ref r)));
        r.EnsureEnd();
        Assert.Null(LocalnetRuntimeApi.Call(storage, "NoSuchApi_method", []));
        Assert.Throws<Bittensor.Core.Scale.ScaleException>(() => LocalnetRuntimeApi.Call(storage, "NeuronInfoRuntimeApi_get_neurons", [1]));
    }

}

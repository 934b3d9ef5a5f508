using System.Collections.Immutable;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Tests.Substrate;

public sealed class MetadataTests
{
    [Fact]
    public void The_spec_218_metadata_decodes_as_V14_with_every_pallet_call_event_and_error_by_name()
    {
        var md = Fixtures.V14;
        Assert.Equal(14, md.Version);
        Assert.Equal(436, md.Types.Count);
        Assert.Equal(26, md.Pallets.Length);
        Assert.Equal(0, md.Pallet("System").Index);
        Assert.Equal(5, md.Pallet("Balances").Index);
        Assert.Equal(7, md.Pallet("SubtensorModule").Index);
        foreach (var p in md.Pallets)
        {
            Assert.Same(p, md.FindPallet(p.Index));
            Assert.Same(p, md.FindPallet(p.Name));
            foreach (var group in new[] { md.Calls(p), md.Events(p), md.Errors(p) })
            {
                Assert.Equal(group.Length, group.Select(v => v.Name).Distinct(StringComparer.Ordinal).Count());
                Assert.Equal(group.Length, group.Select(v => v.Index).Distinct().Count());
            }
            Assert.Equal(p.Storage.Length, p.Storage.Select(s => s.Name).Distinct(StringComparer.Ordinal).Count());
        }
        var subtensor = md.Pallet("SubtensorModule");
        var calls = md.Calls(subtensor).ToDictionary(c => c.Name, c => c.Index, StringComparer.Ordinal);
        Assert.Equal(0, calls["set_weights"]);
        Assert.Equal(2, calls["add_stake"]);
        Assert.Equal(3, calls["remove_stake"]);
        Assert.Equal(4, calls["serve_axon"]);
        Assert.Equal(6, calls["register"]);
        Assert.Equal(7, calls["burned_register"]);
        Assert.Equal(0x60, calls["commit_weights"]);
        Assert.Equal(0x61, calls["reveal_weights"]);
        Assert.Equal(3, md.Calls(md.Pallet("Balances")).Single(c => c.Name == "transfer_keep_alive").Index);
        Assert.Contains(md.Events(md.Pallet("System")), e => e.Name == "ExtrinsicFailed");
        Assert.Contains(md.Errors(subtensor), e => e.Name == "HotKeyNotRegisteredInSubNet");
        Assert.Equal(
            ["CheckNonZeroSender", "CheckSpecVersion", "CheckTxVersion", "CheckGenesis", "CheckMortality", "CheckNonce", "CheckWeight",
             "ChargeTransactionPayment", "SubtensorSignedExtension", "CommitmentsSignedExtension", "CheckMetadataHash"],
            md.Extrinsic.SignedExtensions.Select(x => x.Identifier));
        Assert.Equal(
            Fixtures.Chain.GetProperty("signed_extensions").EnumerateArray().Select(e => e.GetString()),
            md.Extrinsic.SignedExtensions.Select(x => x.Identifier));
        for (var id = 0u; id < md.Types.Count; id++)
        {
            Assert.True(md.Types.MinEncodedSize(id) >= 0);
            Assert.False(string.IsNullOrEmpty(md.Types.Describe(id)));
        }
    }

    [Fact]
    public void V15_from_metadata_at_version_has_the_same_pallets_and_lists_the_runtime_apis()
    {
        var v15 = Fixtures.V15;
        Assert.Equal(15, v15.Version);
        Assert.Equal(Fixtures.V14.Pallets.Select(p => (p.Name, p.Index)), v15.Pallets.Select(p => (p.Name, p.Index)));
        Assert.Equal(Fixtures.V14.Extrinsic.SignedExtensions.Select(x => x.Identifier), v15.Extrinsic.SignedExtensions.Select(x => x.Identifier));
        Assert.Equal(19, v15.Apis.Length);
        var lite = v15.FindApi("NeuronInfoRuntimeApi")!.FindMethod("get_neurons_lite")!;
        Assert.Equal("netuid", Assert.Single(lite.Inputs).Name);
        Assert.Equal("u16", v15.Types.Describe(lite.Inputs[0].Type));
        Assert.Equal("Vec<u8>", v15.Types.Describe(lite.Output)); // the spec-218 "version trap": structs are Vec<u8>-wrapped
        Assert.NotNull(v15.FindApi("Metadata")!.FindMethod("metadata_at_version"));
        var outerEvents = v15.Types.Variants(v15.OuterEventType!.Value).Variants.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(v15.Pallets.Where(p => p.EventType is not null).Select(p => p.Name).ToHashSet(StringComparer.Ordinal), outerEvents);
        var versions = new ScaleReader(Fixtures.HexOf(Fixtures.Raonet, "metadata_versions"));
        Assert.Equal([14u, 15u], versions.Vec((ref ScaleReader r) => r.U32(), 4));
    }

    [Fact]
    public void Prefixed_option_wrapped_and_vec_wrapped_metadata_decode_alike_and_none_is_a_clear_error()
    {
        var wrapped = Fixtures.MetadataV15Wrapped;
        Assert.Equal(1, wrapped[0]);
        var r = new ScaleReader(wrapped.AsSpan(1));
        var bare = r.Bytes();
        var vecWrapped = new ScaleWriter().Bytes(bare).ToArray();
        foreach (var form in new[] { wrapped, bare, vecWrapped })
        {
            var md = RuntimeMetadata.Decode(form);
            Assert.Equal(15, md.Version);
            Assert.Equal(Fixtures.V15.Types.Count, md.Types.Count);
        }
        var none = Fixtures.HexOf(Fixtures.Raonet, "metadata_at_version_99");
        Assert.Equal([0], none);
        Assert.Contains("None", Assert.Throws<MetadataException>(() => RuntimeMetadata.Decode(none)).Message, StringComparison.Ordinal);
        Assert.Throws<ScaleException>(() => RuntimeMetadata.Decode([1, 2, 3, 4, 5]));
        var v13 = (byte[])Fixtures.MetadataV14Bytes.Clone();
        v13[4] = 13;
        Assert.Contains("version 13", Assert.Throws<MetadataException>(() => RuntimeMetadata.Decode(v13)).Message, StringComparison.Ordinal);
    }

    public static TheoryData<int> Versions => [14, 15];

    [Theory]
    [MemberData(nameof(Versions))]
    public void Every_storage_default_and_constant_decodes_with_its_type_and_re_encodes_to_the_same_bytes(int version)
    {
        var md = version == 14 ? Fixtures.V14 : Fixtures.V15;
        var count = 0;
        foreach (var p in md.Pallets)
        {
            foreach (var s in p.Storage)
            {
                if (s.Modifier == StorageModifier.Optional)
                {
                    Assert.Equal([0], s.Default.ToArray()); // the default of an OptionQuery item is None
                    continue;
                }
                var v = md.Types.Decode(s.ValueType, s.Default.AsSpan());
                Assert.Equal(s.Default.ToArray(), md.Types.Encode(s.ValueType, v));
                count++;
            }
            foreach (var k in p.Constants)
            {
                var v = md.Types.Decode(k.Type, k.Value.AsSpan());
                Assert.Equal(k.Value.ToArray(), md.Types.Encode(k.Type, v));
                count++;
            }
        }
        Assert.True(count > 250, $"only {count} items");
        var existential = md.Types.Decode(md.Pallet("Balances").FindConstant("ExistentialDeposit")!.Type, md.Pallet("Balances").FindConstant("ExistentialDeposit")!.Value.AsSpan());
        Assert.Equal(500UL, existential.AsU64());
        var blockHashCount = md.Pallet("System").FindConstant("BlockHashCount")!;
        Assert.Equal(2400U, md.Types.Decode(blockHashCount.Type, blockHashCount.Value.AsSpan()).AsU32());
    }

    [Fact]
    public void Decoding_a_type_id_outside_the_registry_is_a_metadata_error()
    {
        Assert.Throws<MetadataException>(() => Fixtures.V14.Types.Decode(100_000, [0]));
        Assert.Throws<MetadataException>(() => Fixtures.V14.Pallet("NoSuchPallet"));
    }
}

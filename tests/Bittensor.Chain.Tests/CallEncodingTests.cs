using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using Bittensor.Core;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Tests;

public sealed class CallEncodingTests
{
    internal static readonly AccountId Alice = new(Hex.Decode("0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"));
    internal static readonly AccountId Bob = new(Hex.Decode("0x8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"));

    private static readonly JsonElement Vectors =
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "chain.json"))).RootElement;

    private static JsonElement CallVector(string name) =>
        Vectors.GetProperty("calls").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private static ulong Num(JsonElement args, string field) =>
        ulong.Parse(args.GetProperty(field).GetString()!.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);

    private static void AssertBytes(string name, ChainCall call)
    {
        var expected = CallVector(name).GetProperty("call_data").GetString();
        Assert.Equal(expected, Hex.Encode(call.ToBytes()));
        var decoded = ChainCall.Decode(Hex.Decode(expected!));
        Assert.Equal(expected, Hex.Encode(decoded.ToBytes()));
        Assert.Equal(call.GetType(), decoded.GetType());
    }

    [Fact]
    public void Set_weights_call_bytes_match_the_runtime()
    {
        var a = CallVector("set_weights").GetProperty("args");
        var dests = a.GetProperty("dests").EnumerateArray().Select(e => ushort.Parse(e.GetString()!, CultureInfo.InvariantCulture)).ToImmutableArray();
        var weights = a.GetProperty("weights").EnumerateArray()
            .Select(e => ushort.Parse(e.GetString()!.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture)).ToImmutableArray();
        var call = new SetWeights((ushort)Num(a, "netuid"), dests, weights, Num(a, "version_key"));
        AssertBytes("set_weights", call);
        Assert.Equal(call, ChainCall.Decode(call.ToBytes()));
    }

    [Fact]
    public void Serve_axon_call_bytes_match_the_runtime()
    {
        var a = CallVector("serve_axon").GetProperty("args");
        var call = new ServeAxon((ushort)Num(a, "netuid"), (uint)Num(a, "version"), Num(a, "ip"), (ushort)Num(a, "port"),
            (byte)Num(a, "ip_type"), (byte)Num(a, "protocol"), (byte)Num(a, "placeholder1"), (byte)Num(a, "placeholder2"));
        AssertBytes("serve_axon", call);
    }

    [Fact]
    public void Burned_register_call_bytes_match_the_runtime()
    {
        AssertBytes("burned_register", new BurnedRegister(1, Bob));
    }

    [Fact]
    public void Add_stake_with_a_netuid_matches_the_spec_218_runtime()
    {
        var a = CallVector("add_stake").GetProperty("args");
        AssertBytes("add_stake", new AddStake(Bob, new Balance(Num(a, "amount_staked")), (ushort)Num(a, "netuid")));
    }

    [Fact]
    public void Remove_stake_with_a_netuid_matches_the_spec_218_runtime()
    {
        var a = CallVector("remove_stake").GetProperty("args");
        AssertBytes("remove_stake", new RemoveStake(Bob, new Balance(Num(a, "amount_unstaked")), (ushort)Num(a, "netuid")));
    }

    [Fact]
    public void Add_stake_without_a_netuid_uses_the_may_2024_layout()
    {
        var call = new AddStake(Bob, new Balance(1_000_000_000));
        Assert.Equal("0x0702" + Bob.ToHex()[2..] + "00ca9a3b00000000", Hex.Encode(call.ToBytes()));
        var back = Assert.IsType<AddStake>(ChainCall.Decode(call.ToBytes()));
        Assert.Null(back.Netuid);
        Assert.Equal(call, back);
    }

    [Fact]
    public void Transfer_keep_alive_call_bytes_match_the_runtime()
    {
        AssertBytes("transfer_keep_alive", new Transfer(Bob, new Balance(123_456_789)));
    }

    [Fact]
    public void Register_network_is_call_59_with_no_arguments()
    {
        Assert.Equal("0x073b", Hex.Encode(new RegisterNetwork().ToBytes()));
        Assert.IsType<RegisterNetwork>(ChainCall.Decode(Hex.Decode("0x073b")));
    }

    [Theory]
    [InlineData("0x0799")] // unknown call
    [InlineData("0x0900")] // unknown pallet
    [InlineData("0x07")] // truncated
    [InlineData("0x073b00")] // trailing byte
    [InlineData("0x05030100")] // MultiAddress::Index is not supported
    [InlineData("0x070001000cffff")] // dests claims 3 entries, 2 bytes left
    public void Malformed_calls_fail_with_ScaleException(string hex)
    {
        Assert.Throws<ScaleException>(() => ChainCall.Decode(Hex.Decode(hex)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Signing_payloads_match_the_runtime(int index)
    {
        var v = Vectors.GetProperty("signing_payloads")[index];
        var call = CallVector(v.GetProperty("call").GetString()!).GetProperty("call_data").GetString()!;
        var chain = new ChainIdentity("raonet", Hex.Decode(Vectors.GetProperty("genesis_hash").GetString()!),
            Vectors.GetProperty("spec_version").GetUInt32(), Vectors.GetProperty("transaction_version").GetUInt32());
        var payload = SignedCall.SigningPayload(Hex.Decode(call), v.GetProperty("nonce").GetUInt32(), chain);
        Assert.Equal(v.GetProperty("payload").GetString(), Hex.Encode(payload));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Signed_extrinsics_have_the_runtime_layout(int index)
    {
        var v = Vectors.GetProperty("signing_payloads")[index];
        var example = Hex.Decode(v.GetProperty("signed_extrinsic_example").GetString()!);
        var call = Hex.Decode(CallVector(v.GetProperty("call").GetString()!).GetProperty("call_data").GetString()!);
        // Skip compact length (2 bytes here), 0x84, 0x00, 32-byte signer, 0x01: the signature follows.
        var signature = example.AsSpan(2 + 1 + 1 + 32 + 1, 64).ToArray();
        var signed = new SignedCall(call, Alice, v.GetProperty("nonce").GetUInt32(), signature);
        Assert.Equal(Hex.Encode(example), Hex.Encode(signed.ToExtrinsic()));
    }
}

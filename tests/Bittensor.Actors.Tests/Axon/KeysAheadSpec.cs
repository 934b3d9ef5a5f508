using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Metagraph;
using Bittensor.Actors.Tests.Chain;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Actors.Tests.Axon;

/// <summary>
/// Session 23 (h1-firstsec): the axon builds the verifying keys' tables of its stake snapshot's hotkeys ahead of their first
/// calls (<see cref="KeysAhead"/>), after <see cref="AxonActor.UpdateStakes"/> and after each metagraph snapshot; driven by
/// asking <see cref="AxonActor.AwaitKeysPrepared"/>, which answers once the preparation is done. Fresh keys per test
/// (the prepared-key cache is the process's).
/// </summary>
public sealed class KeysAheadSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 16;

    private static Sr25519KeyPair[] FreshKeys(int n)
    {
        var run = Guid.NewGuid().ToString("N");
        return Enumerable.Range(0, n).Select(i => SecretUri.ToSr25519($"//keys-ahead/{run}/{i}")).ToArray();
    }

    // A prepared-ahead key's tables refuse a tampered signature (a hex digit of the signature flipped) as UNAUTHENTICATED.
    private async Task AssertTamperedCallRefused(WireClient client, Sr25519KeyPair key)
    {
        var signed = await Signed(key);
        var signature = signed.GetValue(AuthHeaders.SignatureName)!;
        var flipped = signature[..^3] + (signature[^3] == '0' ? '1' : '0') + signature[^2..];
        var bad = new Metadata
        {
            { AuthHeaders.AuthName, AuthHeaders.AuthValue },
            { AuthHeaders.SignatureName, flipped },
            { AuthHeaders.VersionName, signed.GetValue(AuthHeaders.VersionName)! },
        };
        var error = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(Tokens(key), bad, DateTime.UtcNow.AddSeconds(20)).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    [Fact]
    public async Task The_stake_tables_hotkeys_are_prepared_once_and_their_calls_are_answered()
    {
        var (axon, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var keys = FreshKeys(3);
        var stakes = keys.Select((k, i) => KeyValuePair.Create(k.ToSs58(), (double)(i + 1))).ToDictionary();
        stakes["not an address"] = 100; // skipped

        axon.Tell(new AxonActor.UpdateStakes(stakes));
        Assert.Equal(3, await axon.Ask<int>(AxonActor.AwaitKeysPrepared.Instance, Wait));

        axon.Tell(new AxonActor.UpdateStakes(stakes)); // the same keys again: already prepared, nothing built
        Assert.Equal(0, await axon.Ask<int>(AxonActor.AwaitKeysPrepared.Instance, Wait));

        var client = RawClient(port);
        var good = await Forward(client, keys[2], TextRequest(keys[2], [1, 2], [5, 6]));
        Assert.Equal(ReturnCode.Success, good.ReturnCode);
        await AssertTamperedCallRefused(client, keys[0]);
    }

    [Fact]
    public async Task A_metagraph_snapshots_hotkeys_are_prepared_after_the_sync()
    {
        var (axon, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var keys = FreshKeys(4);
        var neurons = keys.Select((k, i) => TestNeurons.Make((ushort)i, stakeRao: (ulong)(i + 1) * 1_000_000_000) with { Hotkey = new AccountId(k.PublicKey.ToArray()) })
            .ToList();
        axon.Tell(new MetagraphUpdated(MetagraphSnapshot.FromNeurons("local", 1, 9, neurons)));
        Assert.Equal(4, await axon.Ask<int>(AxonActor.AwaitKeysPrepared.Instance, Wait));

        var client = RawClient(port);
        var good = await Forward(client, keys[1], TextRequest(keys[1], [1, 2], [5, 6]));
        Assert.Equal(ReturnCode.Success, good.ReturnCode);
        await AssertTamperedCallRefused(client, keys[3]);
    }

    [Fact]
    public async Task Without_signature_verification_nothing_is_prepared()
    {
        var (axon, _) = await StartAxon(Loopback(networkDim: Dim) with { DisableSignatureVerification = true }, DemoModels.Echo(Dim));
        var keys = FreshKeys(2);
        axon.Tell(new AxonActor.UpdateStakes(keys.ToDictionary(k => k.ToSs58(), _ => 1.0)));
        Assert.Equal(0, await axon.Ask<int>(AxonActor.AwaitKeysPrepared.Instance, Wait));
    }
}

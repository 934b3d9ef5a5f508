using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class ServingRuleTests
{
    private static ServeAxon Serve(ushort netuid, string ip = "10.0.0.7", ushort port = 8091)
    {
        var (addr, type) = AxonInfo.ParseIp(ip);
        return new ServeAxon(netuid, 1_002_003, addr, port, type, 4);
    }

    [Fact]
    public async Task Serving_stores_the_axon_with_the_block_and_address()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        var uid = await t.Register(netuid, "//hot0");
        AssertOk(await t.Submit("//hot0", Serve(netuid, "2001:db8::1", 9000)));
        var axon = (await t.Chain.GetNeuronAsync(netuid, uid))!.Axon;
        Assert.Equal(t.Chain.BlockNumber, axon.Block);
        Assert.Equal("[2001:db8::1]:9000", axon.Endpoint);
        Assert.Equal(1_002_003u, axon.Version);
        Assert.Equal(6, axon.IpType);
    }

    [Fact]
    public async Task Serving_signed_by_the_coldkey_fails_with_NotRegistered()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertFails("NotRegistered", await t.Submit("//Alice", Serve(netuid)));
    }

    [Fact]
    public async Task An_ip_type_other_than_4_or_6_fails_with_InvalidIpType()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertFails("InvalidIpType", await t.Submit("//hot0", Serve(netuid) with { IpType = 5 }));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    [InlineData("::1")]
    public async Task Loopback_zero_and_broadcast_addresses_fail_with_InvalidIpAddress(string ip)
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertFails("InvalidIpAddress", await t.Submit("//hot0", Serve(netuid, ip)));
    }

    [Fact]
    public async Task Port_zero_fails_with_InvalidPort()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertFails("InvalidPort", await t.Submit("//hot0", Serve(netuid, port: 0)));
    }

    [Fact]
    public async Task Serving_again_within_the_rate_limit_fails_with_ServingRateLimitExceeded()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        t.Chain.SetHyperparameters(netuid, h => h with { ServingRateLimit = 5 });
        AssertOk(await t.Submit("//hot0", Serve(netuid)));
        AssertFails("ServingRateLimitExceeded", await t.Submit("//hot0", Serve(netuid, port: 9001)));
        await t.Blocks(3);
        AssertOk(await t.Submit("//hot0", Serve(netuid, port: 9001)));
    }
}

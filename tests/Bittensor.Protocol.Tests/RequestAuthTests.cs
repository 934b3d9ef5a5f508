using System.Text;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol.Tests;

public sealed class RequestAuthTests
{
    private const string Alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    private static readonly DateTimeOffset Start = new(2021, 10, 14, 9, 30, 15, TimeSpan.Zero);

    [Fact]
    public void A_nonce_is_month_day_year_hour_minute_second_then_six_digits_of_microseconds()
    {
        var t = new DateTime(2021, 10, 4, 17, 5, 9).AddTicks(1234567);
        // Python: datetime(2021, 10, 4, 17, 5, 9, 123456).strftime('%m%d%Y%H%M%S%f')
        Assert.Equal("10042021170509123456", RequestNonce.Format(t));
        Assert.True(RequestNonce.TryParse(RequestNonce.Format(t), out var back));
        Assert.Equal(t.Ticks / 10 * 10, back.Ticks);
    }

    [Theory]
    [InlineData("13042021170509123456")]
    [InlineData("1004202117050912345")]
    [InlineData("1004202117050912345x")]
    [InlineData("1004202117050912345600")]
    [InlineData("")]
    public void Malformed_nonces_do_not_parse(string nonce) => Assert.False(RequestNonce.TryParse(nonce, out _));

    [Fact]
    public async Task The_three_headers_come_in_protocol_order_with_a_signature_over_nonce_and_ss58()
    {
        var clock = new ManualClock(Start);
        var auth = new RequestAuth(FakeSignatures.Signer(Alice), clock);
        var headers = await auth.CreateHeadersAsync();

        Assert.Equal(["rpc-auth-header", "bittensor-signature", "bittensor-version"], headers.Select(h => h.Key).ToArray());
        Assert.Equal("Bittensor", headers[0].Value);
        Assert.Equal("150", headers[2].Value);
        var parts = headers[1].Value.Split("bitxx");
        Assert.Equal("10142021093015000000", parts[0]);
        Assert.Equal(Alice, parts[1]);
        Assert.StartsWith("0x", parts[2], StringComparison.Ordinal);
        Assert.Equal(130, parts[2].Length);
        Assert.Equal(parts[2][2..], parts[2][2..].ToLowerInvariant());
        var expected = FakeSignatures.Sign(Alice, Encoding.UTF8.GetBytes(parts[0] + Alice));
        Assert.Equal(Convert.ToHexStringLower(expected), parts[2][2..]);
    }

    [Fact]
    public async Task Nonces_from_one_sender_are_at_least_a_millisecond_apart_even_within_one_clock_tick()
    {
        var auth = new RequestAuth(FakeSignatures.Signer(Alice), new ManualClock(Start));
        var a = await auth.CreateSignatureHeaderAsync();
        var b = await auth.CreateSignatureHeaderAsync();
        Assert.True(RequestNonce.TryParse(a.AsSpan(0, 20), out var ta));
        Assert.True(RequestNonce.TryParse(b.AsSpan(0, 20), out var tb));
        Assert.Equal(TimeSpan.FromMilliseconds(1), tb - ta);
    }

    [Fact]
    public async Task A_signer_returning_a_wrong_length_signature_is_an_error()
    {
        var auth = new RequestAuth(new DelegateRequestSigner(Alice, (_, _) => ValueTask.FromResult(new byte[63])));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await auth.CreateHeadersAsync());
    }

    [Fact]
    public void Version_rule_accepts_callers_at_most_ten_behind()
    {
        Assert.True(ProtocolVersion.IsCallerCompatible(150, 140));
        Assert.False(ProtocolVersion.IsCallerCompatible(150, 139));
        Assert.True(ProtocolVersion.IsCallerCompatible(150, 999));
        Assert.True(ProtocolVersion.IsCallerCompatible(int.MaxValue, int.MaxValue));
    }

    internal static Metadata Headers(string nonce, string ss58, string? version = "150", string? signatureHex = null)
    {
        signatureHex ??= Convert.ToHexStringLower(FakeSignatures.Sign(ss58, Encoding.UTF8.GetBytes(nonce + ss58)));
        var m = new Metadata { { "rpc-auth-header", "Bittensor" }, { "bittensor-signature", $"{nonce}bitxx{ss58}bitxx0x{signatureHex}" } };
        if (version is not null) m.Add("bittensor-version", version);
        return m;
    }

    internal static string NonceAt(DateTimeOffset t) => RequestNonce.Format(t.DateTime);

    [Fact]
    public async Task Headers_built_by_the_sender_pass_the_verifier()
    {
        var clock = new ManualClock(Start);
        var auth = new RequestAuth(FakeSignatures.Signer(Alice), clock);
        using var verifier = new RequestVerifier(signatures: new FakeSignatures(), clock: clock);
        var result = verifier.Verify(await auth.CreateHeadersAsync());
        Assert.True(result.IsAccepted, result.Reason);
        Assert.Equal(Alice, result.Hotkey);
        Assert.Equal(ReturnCode.Success, result.Code);
    }
}

using Bittensor.Core.Domain;
using FsCheck.Xunit;

namespace Bittensor.Core.Tests.Domain;

public sealed class DomainRecordTests
{
    [Theory]
    [InlineData(0UL, "τ0.000000000")]
    [InlineData(1UL, "τ0.000000001")]
    [InlineData(1_000_000_000UL, "τ1.000000000")]
    [InlineData(123_456_789_012UL, "τ123.456789012")]
    [InlineData(ulong.MaxValue, "τ18446744073.709551615")]
    public void Balances_format_as_tau_with_nine_decimals(ulong rao, string text)
    {
        Assert.Equal(text, new Balance(rao).ToString());
        Assert.Equal(new Balance(rao), Balance.Parse(text));
    }

    [Theory]
    [InlineData("1.5", 1_500_000_000UL)]
    [InlineData("1.5 TAO", 1_500_000_000UL)]
    [InlineData("0.000000001", 1UL)]
    public void Balances_parse_tao_amounts(string text, ulong rao) => Assert.Equal(new Balance(rao), Balance.Parse(text));

    [Theory]
    [InlineData("0.0000000001")]
    [InlineData("-1")]
    [InlineData("abc")]
    [InlineData("18446744074")]
    public void Amounts_that_are_not_rao_are_rejected(string text) => Assert.Throws<FormatException>(() => Balance.Parse(text));

    [Fact]
    public void Balance_arithmetic_is_checked()
    {
        Assert.Throws<OverflowException>(() => new Balance(1) - new Balance(2));
        Assert.Throws<OverflowException>(() => new Balance(ulong.MaxValue) + new Balance(1));
        Assert.Equal(new Balance(3), new Balance(1) + new Balance(2));
    }

    [Property(MaxTest = 300)]
    public bool Any_balance_round_trips_through_its_text(ulong rao) => Balance.Parse(new Balance(rao).ToString()) == new Balance(rao);

    [Theory]
    [InlineData("1.2.3.4", "16909060", 4)]
    [InlineData("127.0.0.1", "2130706433", 4)]
    [InlineData("::1", "1", 6)]
    [InlineData("2001:db8::ff00:42:8329", "42540766411282592856904265327123268393", 6)]
    public void Ip_addresses_convert_to_the_chain_integer(string ip, string value, byte type)
    {
        var (parsed, parsedType) = AxonInfo.ParseIp(ip);
        Assert.Equal(UInt128.Parse(value, System.Globalization.CultureInfo.InvariantCulture), parsed);
        Assert.Equal(type, parsedType);
        Assert.Equal(ip, AxonInfo.FormatIp(parsed, type));
    }

    [Fact]
    public void Axon_endpoints_format_with_brackets_for_ipv6()
    {
        var (v6, _) = AxonInfo.ParseIp("2001:db8::1");
        Assert.Equal("[2001:db8::1]:8091", new AxonInfo(1, 0, v6, 8091, 6, 4).Endpoint);
        Assert.Equal("10.0.0.1:9000", new AxonInfo(1, 0, 0x0a000001, 9000, 4, 4).Endpoint);
        Assert.False(AxonInfo.Empty.IsServing);
        Assert.Throws<FormatException>(() => AxonInfo.ParseIp("300.1.1.1"));
    }

    [Fact]
    public void Axon_info_encodes_as_the_fixed_width_storage_layout()
    {
        var w = new Bittensor.Core.Scale.ScaleWriter();
        var axon = new AxonInfo(5, 101, 0x7f000001, 8091, 4, 0);
        axon.Encode(w);
        Assert.Equal(AxonInfo.EncodedSize, w.Length);
        Assert.Equal("0x0500000000000000650000000100007f0000000000000000000000009b1f04000000", Hex.Encode(w.WrittenSpan));
        var r = new Bittensor.Core.Scale.ScaleReader(w.WrittenSpan);
        Assert.Equal(axon, AxonInfo.Decode(ref r));
    }

    [Fact]
    public void Account_ids_compare_by_bytes_and_reject_other_lengths()
    {
        var a = new AccountId(new byte[32]);
        var bytes = new byte[32];
        bytes[31] = 1;
        var b = new AccountId(bytes);
        Assert.NotEqual(a, b);
        Assert.True(a < b);
        Assert.Equal(b, new AccountId(b.ToArray()));
        Assert.Equal("0x" + new string('0', 62) + "01", b.ToHex());
        Assert.Throws<ArgumentException>(() => new AccountId(new byte[31]));
    }

    [Fact]
    public void May_2024_defaults_match_subtensor_da21fb6a()
    {
        var h = SubnetHyperparameters.Default;
        Assert.Equal((ushort)360, h.Tempo);
        Assert.Equal((ushort)32_767, h.Kappa);
        Assert.Equal((ushort)5000, h.ImmunityPeriod);
        Assert.Equal((ushort)256, h.MaxAllowedUids);
        Assert.Equal((ushort)64, h.MaxAllowedValidators);
        Assert.Equal(900_000UL, h.BondsMovingAverage);
        Assert.Equal(1_000_000_000UL, h.Burn);
        Assert.Equal(50UL, h.ServingRateLimit);
        Assert.Equal(100UL, h.WeightsRateLimit);
    }
}

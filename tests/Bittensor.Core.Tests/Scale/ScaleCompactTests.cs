using System.Numerics;
using Bittensor.Core;
using Bittensor.Core.Scale;

namespace Bittensor.Core.Tests.Scale;

public sealed class ScaleCompactTests
{
    [Theory]
    [InlineData(0UL, "0x00")]
    [InlineData(1UL, "0x04")]
    [InlineData(63UL, "0xfc")]
    [InlineData(64UL, "0x0101")]
    [InlineData(16383UL, "0xfdff")]
    [InlineData(16384UL, "0x02000100")]
    [InlineData(1073741823UL, "0xfeffffff")]
    [InlineData(1073741824UL, "0x0300000040")]
    [InlineData(4294967295UL, "0x03ffffffff")]
    [InlineData(4294967296UL, "0x070000000001")]
    [InlineData(18446744073709551615UL, "0x13ffffffffffffffff")]
    public void Compact_boundaries_encode_as_substrate_does_and_decode_back(ulong value, string hex)
    {
        var bytes = new ScaleWriter().Compact(value).ToArray();
        Assert.Equal(hex, Hex.Encode(bytes));
        var r = new ScaleReader(bytes);
        Assert.Equal(value, r.CompactU64());
        r.EnsureEnd();
    }

    [Fact]
    public void Compact_u128_max_uses_sixteen_bytes_in_big_integer_mode()
    {
        var bytes = new ScaleWriter().Compact(UInt128.MaxValue).ToArray();
        Assert.Equal(17, bytes.Length);
        Assert.Equal((16 - 4) << 2 | 3, bytes[0]);
        var r = new ScaleReader(bytes);
        Assert.Equal(UInt128.MaxValue, r.CompactU128());
    }

    [Fact]
    public void Compact_big_integers_up_to_67_bytes_round_trip()
    {
        var big = BigInteger.Pow(2, 536) - 1;
        var bytes = new ScaleWriter().Compact(big).ToArray();
        Assert.Equal(68, bytes.Length);
        Assert.Equal(0xff, bytes[0]);
        var r = new ScaleReader(bytes);
        Assert.Equal(big, r.CompactBig());
    }

    [Fact]
    public void A_compact_too_large_for_u64_is_rejected_with_a_position()
    {
        var bytes = new ScaleWriter().U8(0).Compact((UInt128)ulong.MaxValue + 1).ToArray();
        var ex = Assert.Throws<ScaleException>(() =>
        {
            var r = new ScaleReader(bytes);
            r.U8();
            r.CompactU64();
        });
        Assert.Equal(1, ex.Position);
    }

    [Theory]
    [InlineData("0x0100")] // 0 in two-byte mode
    [InlineData("0x02000000")] // 0 in four-byte mode
    [InlineData("0x0300000000")] // 0 in big-integer mode
    [InlineData("0x070000000000")] // leading zero byte
    public void Non_canonical_compacts_are_rejected(string hex)
    {
        Assert.Throws<ScaleException>(() =>
        {
            var r = new ScaleReader(Hex.Decode(hex));
            r.CompactU64();
        });
    }
}

using Bittensor.Core;
using Bittensor.Core.Scale;

namespace Bittensor.Core.Tests.Scale;

public sealed class ScaleReaderTests
{
    [Fact]
    public void Fixed_width_integers_are_little_endian()
    {
        var bytes = new ScaleWriter().U16(0x0102).U32(0x03040506).U64(0x0708090a0b0c0d0e).U128(UInt128.MaxValue - 1).Bool(true).ToArray();
        Assert.Equal("0x0201060504030e0d0c0b0a090807feffffffffffffffffffffffffffffff01", Hex.Encode(bytes));
        var r = new ScaleReader(bytes);
        Assert.Equal(0x0102, r.U16());
        Assert.Equal(0x03040506u, r.U32());
        Assert.Equal(0x0708090a0b0c0d0eUL, r.U64());
        Assert.Equal(UInt128.MaxValue - 1, r.U128());
        Assert.True(r.Bool());
        r.EnsureEnd();
    }

    [Fact]
    public void A_length_prefix_larger_than_the_input_is_refused_before_allocating()
    {
        // Compact(2^30) elements of u16 with 3 bytes left: must not try to allocate 2 GiB.
        var bytes = new ScaleWriter().Compact(1UL << 30).U8(1).U8(2).U8(3).ToArray();
        var ex = Assert.Throws<ScaleException>(() => new ScaleReader(bytes).VecU16());
        Assert.Equal(0, ex.Position);
        Assert.Contains("exceeds", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_byte_vector_over_its_limit_is_refused()
    {
        var bytes = new ScaleWriter().Bytes(new byte[100]).ToArray();
        Assert.Throws<ScaleException>(() => new ScaleReader(bytes).Bytes(maxLength: 99));
        Assert.Equal(100, new ScaleReader(bytes).Bytes(maxLength: 100).Length);
    }

    [Fact]
    public void Strings_round_trip_and_invalid_utf8_is_an_error()
    {
        var bytes = new ScaleWriter().String("τao ✓").ToArray();
        Assert.Equal("τao ✓", new ScaleReader(bytes).String());
        var bad = new byte[] { 2 << 2, 0xc3, 0x28 };
        Assert.Throws<ScaleException>(() => new ScaleReader(bad).String());
    }

    [Fact]
    public void Bool_and_option_tags_other_than_zero_or_one_are_errors()
    {
        Assert.Throws<ScaleException>(() => new ScaleReader([2]).Bool());
        Assert.Throws<ScaleException>(() => new ScaleReader([7]).OptionTag());
        Assert.False(new ScaleReader([0]).OptionTag());
    }

    [Fact]
    public void Options_round_trip()
    {
        var bytes = new ScaleWriter().OptionValue<ushort>(null, (w, v) => w.U16(v)).OptionValue<ushort>(5, (w, v) => w.U16(v)).ToArray();
        Assert.Equal("0x00010500", Hex.Encode(bytes));
        var r = new ScaleReader(bytes);
        Assert.False(r.OptionTag());
        Assert.True(r.OptionTag());
        Assert.Equal(5, r.U16());
    }

    [Fact]
    public void Trailing_bytes_are_reported_at_their_position()
    {
        var ex = Assert.Throws<ScaleException>(() =>
        {
            var r = new ScaleReader([1, 2, 3]);
            r.U16();
            r.EnsureEnd();
        });
        Assert.Equal(2, ex.Position);
    }

    [Fact]
    public void Generic_vectors_read_each_element()
    {
        var bytes = new ScaleWriter().Vec(new[] { (1, 2), (3, 4) }, (w, t) => w.Compact((ulong)t.Item1).Compact((ulong)t.Item2)).ToArray();
        var r = new ScaleReader(bytes);
        var v = r.Vec((ref ScaleReader x) => (x.CompactU16(), x.CompactU16()), minElementSize: 2);
        Assert.Equal([((ushort)1, (ushort)2), ((ushort)3, (ushort)4)], v);
    }
}

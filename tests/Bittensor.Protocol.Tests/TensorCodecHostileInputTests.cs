using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol.Tests;

public sealed class TensorCodecHostileInputTests
{
    private static TensorDecodeResult Decode(byte[] bytes) => TensorCodec.DecodeBuffer(bytes);

    [Fact]
    public void Str_keys_and_any_key_order_are_accepted_as_python_looks_keys_up_by_name()
    {
        var r = Decode(MsgPackBuilder.Tensor(strKeys: true));
        Assert.True(r.IsSuccess, r.Message);

        var reordered = new MsgPackBuilder().Map(5)
            .Key("data").Bin(new byte[8]).Key("shape").Array(1).Int(1).Key("kind").Bin([])
            .Key("type").Str("<i8").Key("nd").Raw(0xc3).ToArray();
        var r2 = Decode(reordered);
        Assert.True(r2.IsSuccess, r2.Message);
        Assert.Equal(DataType.Int64, r2.Tensor.DataType);
    }

    [Theory]
    [InlineData(">f4")]
    [InlineData("<f2")]
    [InlineData("|u1")]
    [InlineData("<U3")]
    [InlineData("float32")]
    public void Unsupported_numpy_types_are_rejected_with_the_type_in_the_message(string type)
    {
        var r = Decode(MsgPackBuilder.Tensor(type: type));
        Assert.Equal(TensorDecodeError.UnsupportedDataType, r.Error);
        Assert.Contains(type, r.Message, StringComparison.Ordinal);
        Assert.Equal(ReturnCode.RequestDeserializationException, r.RequestCode);
    }

    [Fact]
    public void A_negative_dimension_is_a_shape_error()
    {
        var r = Decode(MsgPackBuilder.Tensor(shape: [-2, -1], data: new byte[8]));
        Assert.Equal(TensorDecodeError.InvalidShape, r.Error);
        Assert.Equal(ReturnCode.RequestShapeException, r.RequestCode);
    }

    [Fact]
    public void Rank_above_eight_is_rejected_before_reading_the_dimensions()
    {
        var r = Decode(MsgPackBuilder.Tensor(shape: [1, 1, 1, 1, 1, 1, 1, 1, 2], data: new byte[8]));
        Assert.Equal(TensorDecodeError.InvalidShape, r.Error);
        var huge = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("kind").Bin([])
            .Key("shape").Raw(0xdd, 0xff, 0xff, 0xff, 0xff).ToArray();
        Assert.Equal(TensorDecodeError.InvalidShape, Decode(huge).Error);
    }

    [Fact]
    public void A_shape_whose_product_overflows_is_rejected_without_allocating()
    {
        var r = Decode(MsgPackBuilder.Tensor(shape: [1L << 40, 1L << 40, 1L << 40], data: new byte[8]));
        Assert.Equal(TensorDecodeError.DataLengthMismatch, r.Error);
        var wrapToEight = Decode(MsgPackBuilder.Tensor(shape: [1L << 62, 8], data: new byte[32]));
        Assert.False(wrapToEight.IsSuccess);
        var u64 = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("kind").Bin([])
            .Key("shape").Array(1).UInt64(ulong.MaxValue).Key("data").Bin(new byte[4]).ToArray();
        Assert.Equal(TensorDecodeError.InvalidShape, Decode(u64).Error);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(9)]
    [InlineData(0)]
    public void Data_not_exactly_shape_times_itemsize_is_rejected(int dataBytes)
    {
        var r = Decode(MsgPackBuilder.Tensor(shape: [2], data: new byte[dataBytes]));
        Assert.Equal(TensorDecodeError.DataLengthMismatch, r.Error);
        Assert.Equal(ReturnCode.RequestDeserializationException, r.RequestCode);
    }

    [Fact]
    public void A_bin32_length_beyond_the_buffer_is_malformed_not_an_allocation()
    {
        var bytes = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("kind").Bin([])
            .Key("shape").Array(1).Int(1 << 28).Key("data").Raw(0xc6, 0x40, 0, 0, 0, 1, 2, 3).ToArray();
        Assert.Equal(TensorDecodeError.Malformed, Decode(bytes).Error);
    }

    [Fact]
    public void Unknown_duplicate_and_missing_keys_are_malformed()
    {
        var unknown = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("evil").Bin([])
            .Key("shape").Array(1).Int(1).Key("data").Bin(new byte[4]).ToArray();
        Assert.Equal(TensorDecodeError.Malformed, Decode(unknown).Error);
        var duplicate = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("nd").Raw(0xc3)
            .Key("shape").Array(1).Int(1).Key("data").Bin(new byte[4]).ToArray();
        Assert.Equal(TensorDecodeError.Malformed, Decode(duplicate).Error);
        var missingData = new MsgPackBuilder().Map(4).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("kind").Bin([])
            .Key("shape").Array(1).Int(1).ToArray();
        Assert.Equal(TensorDecodeError.Malformed, Decode(missingData).Error);
    }

    [Fact]
    public void Nested_garbage_in_place_of_values_is_malformed()
    {
        var nested = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Map(1).Map(1).Map(1).ToArray();
        Assert.Equal(TensorDecodeError.Malformed, Decode(nested).Error);
        var shapeOfMaps = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("kind").Bin([])
            .Key("shape").Array(2).Map(0).Array(0).Key("data").Bin([]).ToArray();
        Assert.Equal(TensorDecodeError.Malformed, Decode(shapeOfMaps).Error);
        Assert.Equal(TensorDecodeError.Malformed, Decode([0x92, 0x01, 0x02]).Error);
    }

    [Fact]
    public void A_numpy_scalar_or_structured_array_is_not_a_tensor()
    {
        var scalar = new MsgPackBuilder().Map(4).Key("nd").Raw(0xc2).Key("type").Str("<f4").Key("kind").Bin([])
            .Key("data").Bin(new byte[4]).ToArray();
        Assert.Equal(TensorDecodeError.UnsupportedDataType, Decode(scalar).Error);
        var structured = new MsgPackBuilder().Map(5).Key("nd").Raw(0xc3).Key("type").Str("<f4").Key("kind").Bin("V"u8.ToArray())
            .Key("shape").Array(1).Int(1).Key("data").Bin(new byte[4]).ToArray();
        Assert.Equal(TensorDecodeError.UnsupportedDataType, Decode(structured).Error);
    }

    [Fact]
    public void Trailing_bytes_after_the_map_are_malformed()
    {
        var bytes = TensorCodec.EncodeToArray([1f, 2f], [2]);
        Assert.Equal(TensorDecodeError.Malformed, Decode([.. bytes, 0xc0]).Error);
    }

    [Fact]
    public void Every_proper_prefix_of_a_valid_buffer_fails_cleanly()
    {
        var bytes = TensorCodec.EncodeToArray([1L, 2L, 3L], [3, 1]);
        for (var n = 0; n < bytes.Length; n++)
        {
            var r = Decode(bytes[..n]);
            Assert.False(r.IsSuccess, $"prefix of {n} bytes decoded");
            Assert.NotEmpty(r.Message);
        }
    }

    [Fact]
    public void Messages_quote_peer_bytes_only_as_short_printable_ascii()
    {
        var r = Decode(MsgPackBuilder.Tensor(type: "<\u0001\u0002" + new string('x', 25)));
        Assert.Equal(TensorDecodeError.UnsupportedDataType, r.Error);
        Assert.DoesNotContain('\u0001', r.Message);
        Assert.DoesNotContain(new string('x', 20), r.Message, StringComparison.Ordinal);
    }
}

using Google.Protobuf;
using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol.Tests;

public sealed class TensorCodecGoldenTests
{
    private const string Int64Example =
        "85c4026e64c3c40474797065a33c6938c4046b696e64c400c4057368617065920102c40464617461c41001000000000000000200000000000000";

    private const string Float32ZerosPrefix =
        "85c4026e64c3c40474797065a33c6634c4046b696e64c400c405736861706593010203c40464617461c418";

    [Fact]
    public void Int64_one_by_two_encodes_to_the_protocol_example_byte_for_byte()
    {
        var bytes = TensorCodec.EncodeToArray([1L, 2L], [1, 2]);
        Assert.Equal(Int64Example, Convert.ToHexStringLower(bytes));
        Assert.Equal(bytes.Length, TensorCodec.GetEncodedLength(DataType.Int64, [1, 2]));
    }

    [Fact]
    public void Float32_zeros_one_by_two_by_three_encodes_to_the_protocol_example_byte_for_byte()
    {
        var bytes = TensorCodec.EncodeToArray(new float[6], [1, 2, 3]);
        Assert.Equal(Float32ZerosPrefix + new string('0', 48), Convert.ToHexStringLower(bytes));
    }

    [Fact]
    public void The_protocol_examples_decode_to_their_values()
    {
        var ints = TensorCodec.DecodeBuffer(Convert.FromHexString(Int64Example));
        Assert.True(ints.IsSuccess, ints.Message);
        Assert.Equal(DataType.Int64, ints.Tensor.DataType);
        Assert.Equal([1L, 2L], ints.Tensor.ShapeToArray());
        Assert.Equal([1L, 2L], ints.Tensor.ToInt64Array());

        var zeros = TensorCodec.DecodeBuffer(Convert.FromHexString(Float32ZerosPrefix + new string('0', 48)));
        Assert.True(zeros.IsSuccess, zeros.Message);
        Assert.Equal([1L, 2L, 3L], zeros.Tensor.ShapeToArray());
        Assert.Equal(new float[6], zeros.Tensor.ToFloat32Array());
    }

    [Theory]
    [InlineData(127L, "7f")]
    [InlineData(128L, "cc80")]
    [InlineData(255L, "ccff")]
    [InlineData(256L, "cd0100")]
    [InlineData(65535L, "cdffff")]
    [InlineData(65536L, "ce00010000")]
    public void Shape_dimensions_use_the_smallest_msgpack_uint_like_python(long dim, string expectedHex)
    {
        var bytes = TensorCodec.EncodeToArray(new int[0], [0, dim]);
        var hex = Convert.ToHexStringLower(bytes);
        // shape key, fixarray of 2, positive fixint 0, then the dimension.
        Assert.Contains("73686170659200" + expectedHex + "c40464617461c400", hex, StringComparison.Ordinal);
    }

    [Fact]
    public void Data_uses_bin16_then_bin32_as_python_does()
    {
        var bin16 = TensorCodec.EncodeToArray(new float[64], [64]); // 256 bytes
        Assert.Contains("c40464617461c50100", Convert.ToHexStringLower(bin16), StringComparison.Ordinal);
        var bin32 = TensorCodec.EncodeToArray(new float[16384], [16384]); // 65536 bytes
        Assert.Contains("c40464617461c600010000", Convert.ToHexStringLower(bin32.AsSpan(0, 60)), StringComparison.Ordinal);
        Assert.True(TensorCodec.DecodeBuffer(bin32).IsSuccess);
    }

    [Fact]
    public void A_proto_tensor_carries_version_150_msgpack_torch_and_the_shape()
    {
        var t = TensorCodec.ToTensor(new float[10 * 20 * 1024], [10, 20, 1024], Modality.Tensor, requiresGrad: true);
        Assert.Equal(150, t.Version);
        Assert.Equal(Serializer.Msgpack, t.Serializer);
        Assert.Equal(TensorType.Torch, t.TensorType);
        Assert.Equal(DataType.Float32, t.Dtype);
        Assert.Equal(Modality.Tensor, t.Modality);
        Assert.True(t.RequiresGrad);
        Assert.Equal([10L, 20L, 1024L], t.Shape);
        Assert.Equal(TensorCodec.GetEncodedLength(DataType.Float32, [10, 20, 1024]), t.Buffer.Length);
        var back = TensorCodec.Decode(t);
        Assert.True(back.IsSuccess, back.Message);
        Assert.Equal(10 * 20 * 1024, back.Tensor.ElementCount);
    }

    [Fact]
    public void Decoding_gives_a_view_into_the_buffer_not_a_copy()
    {
        var bytes = TensorCodec.EncodeToArray([1.5f, -2f], [2]);
        var result = TensorCodec.DecodeBuffer(bytes);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(result.Tensor.Data, out var segment));
        Assert.Same(bytes, segment.Array);
        Assert.Equal(bytes.Length - 8, segment.Offset);
        Assert.Equal([1.5f, -2f], result.Tensor.ToFloat32Array());
    }

    [Fact]
    public void Encoding_into_a_pooled_buffer_writer_matches_the_array_form()
    {
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        var values = new[] { 1f, 2f, 3f, 4f };
        var written = TensorCodec.Encode(values, [2, 2], writer);
        Assert.Equal(TensorCodec.EncodeToArray(values, [2, 2]), writer.WrittenSpan.ToArray());
        Assert.Equal(written, writer.WrittenCount);
    }

    [Fact]
    public void Encoding_rejects_a_shape_that_does_not_match_the_values()
    {
        Assert.Throws<ArgumentException>(() => TensorCodec.EncodeToArray(new float[5], [2, 3]));
        Assert.Throws<ArgumentException>(() => TensorCodec.EncodeToArray(new float[0], [-1, 0]));
        Assert.Throws<ArgumentException>(() => TensorCodec.EncodeToArray(new float[1], [1, 1, 1, 1, 1, 1, 1, 1, 1]));
    }

    [Fact]
    public void A_proto_dtype_that_disagrees_with_the_buffer_is_a_deserialization_error()
    {
        var t = TensorCodec.ToTensor([1L, 2L], [1, 2], Modality.Text);
        t.Dtype = DataType.Float32;
        var r = TensorCodec.Decode(t);
        Assert.Equal(TensorDecodeError.DataTypeMismatch, r.Error);
        Assert.Equal(ReturnCode.RequestDeserializationException, r.RequestCode);
        Assert.Equal(ReturnCode.ResponseDeserializationException, r.ResponseCode);
    }

    [Fact]
    public void A_proto_shape_that_disagrees_with_the_buffer_is_a_shape_error()
    {
        var t = TensorCodec.ToTensor([1L, 2L], [1, 2], Modality.Text);
        t.Shape[1] = 3;
        var r = TensorCodec.Decode(t);
        Assert.Equal(TensorDecodeError.ShapeMismatch, r.Error);
        Assert.Equal(ReturnCode.RequestShapeException, r.RequestCode);
        Assert.Contains("[1, 3]", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_tensor_is_an_empty_request()
    {
        Assert.Equal(ReturnCode.EmptyRequest, TensorCodec.Decode(new Tensor()).RequestCode);
        Assert.Equal(ReturnCode.EmptyResponse, TensorCodec.Decode(null).ResponseCode);
    }

    [Fact]
    public void Copying_to_the_wrong_element_type_is_refused()
    {
        var r = TensorCodec.DecodeBuffer(TensorCodec.EncodeToArray([1L], [1]));
        Assert.Throws<InvalidOperationException>(() => r.Tensor.ToFloat32Array());
        Assert.Throws<ArgumentException>(() => r.Tensor.CopyTo(new long[0]));
    }

    [Fact]
    public void A_pooled_tensor_carries_the_same_bytes_as_an_allocated_one_and_survives_double_dispose()
    {
        var values = Enumerable.Range(0, 2 * 3 * 1024).Select(i => i * 0.25f).ToArray();
        var plain = TensorCodec.ToTensor(values, [2, 3, 1024], Modality.Tensor);
        var pooled = TensorCodec.ToPooledTensor(values, [2, 3, 1024], Modality.Tensor);
        Assert.Equal(plain, pooled.Tensor);
        Assert.Equal(plain.ToByteArray(), pooled.Tensor.ToByteArray());
        pooled.Dispose();
        pooled.Dispose();

        using var tokens = TensorCodec.ToPooledTensor([1L, 2L], [1, 2], Modality.Text);
        Assert.Equal(Int64Example, Convert.ToHexStringLower(tokens.Tensor.Buffer.Span));
    }

    [Fact]
    public void A_tensor_rented_empty_and_filled_in_place_carries_the_same_bytes_as_one_encoded_from_values()
    {
        var values = Enumerable.Range(0, 2 * 3 * 1024).Select(i => (i * 0.25f) - 7f).ToArray();
        var plain = TensorCodec.ToTensor(values, [2, 3, 1024], Modality.Tensor);
        var rented = TensorCodec.RentFloat32([2, 3, 1024], Modality.Tensor);
        Assert.Equal(values.Length * 4, rented.Elements.Length);
        values.AsSpan().CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(rented.Elements.Span));
        Assert.Equal(plain, rented.Tensor);
        Assert.Equal(plain.ToByteArray(), rented.Tensor.ToByteArray());
        var decoded = TensorCodec.Decode(rented.Tensor);
        Assert.True(decoded.IsSuccess, decoded.Message);
        Assert.Equal(values, decoded.Tensor.ToFloat32Array());
        rented.Dispose();

        // Tensors encoded from values have no element span to fill.
        using var pooled = TensorCodec.ToPooledTensor(values, [2, 3, 1024], Modality.Tensor);
        Assert.True(pooled.Elements.IsEmpty);
        Assert.Throws<ArgumentException>(() => TensorCodec.RentFloat32([1, -1], Modality.Tensor));
    }
}

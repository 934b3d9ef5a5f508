using BenchmarkDotNet.Attributes;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Benchmarks.Protocol;

/// <summary>
/// Tensor codec throughput for the forward answer, float32 [10, 20, 1024] (819,200 data bytes), against a
/// plain copy of the same bytes. GB/s = 819,200 B / mean time. Goal: codec at least 50% of the copy.
/// </summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private static readonly long[] Shape = [10, 20, 1024];
    private float[] _values = [];
    private byte[] _copySource = [];
    private byte[] _copyTarget = [];
    private byte[] _encodeTarget = [];
    private byte[] _encoded = [];
    private float[] _decodeTarget = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _values = new float[10 * 20 * 1024];
        for (var i = 0; i < _values.Length; i++) _values[i] = (float)rng.NextDouble();
        _copySource = new byte[_values.Length * sizeof(float)];
        rng.NextBytes(_copySource);
        _copyTarget = new byte[_copySource.Length];
        _encodeTarget = new byte[TensorCodec.GetEncodedLength(DataType.Float32, Shape)];
        _encoded = TensorCodec.EncodeToArray(_values, Shape);
        _decodeTarget = new float[_values.Length];
    }

    /// <summary>The anchor: Span.CopyTo of 819,200 bytes into a preallocated buffer.</summary>
    [Benchmark(Baseline = true)]
    public void Memcpy() => _copySource.AsSpan().CopyTo(_copyTarget);

    /// <summary>Encode into a preallocated buffer (the pooled-buffer path).</summary>
    [Benchmark]
    public int EncodeIntoBuffer() => TensorCodec.Encode(_values, Shape, _encodeTarget);

    /// <summary>Encode into a new exactly sized array (what ToTensor does before wrapping it).</summary>
    [Benchmark]
    public byte[] EncodeToArray() => TensorCodec.EncodeToArray(_values, Shape);

    /// <summary>A full proto tensor ready to send (array + UnsafeWrap + fields).</summary>
    [Benchmark]
    public Tensor ToTensor() => TensorCodec.ToTensor(_values, Shape, Modality.Tensor);

    /// <summary>A proto tensor over a pooled buffer, returned to the pool after use.</summary>
    [Benchmark]
    public int ToPooledTensor()
    {
        using var pooled = TensorCodec.ToPooledTensor(_values, Shape, Modality.Tensor);
        return pooled.Tensor.Buffer.Length;
    }

    /// <summary>Validate and copy the values into a preallocated float[].</summary>
    [Benchmark]
    public float DecodeIntoBuffer()
    {
        var r = TensorCodec.DecodeBuffer(_encoded);
        r.Tensor.CopyTo(_decodeTarget);
        return _decodeTarget[0];
    }

    /// <summary>Validate and copy the values into a new float[].</summary>
    [Benchmark]
    public float[] DecodeToArray() => TensorCodec.DecodeBuffer(_encoded).Tensor.ToFloat32Array();

    /// <summary>Validate only and return the view (no copy of the values).</summary>
    [Benchmark]
    public int DecodeView() => TensorCodec.DecodeBuffer(_encoded).Tensor.ElementCount;
}

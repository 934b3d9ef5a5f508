using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using Bittensor.Actors.Cluster;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>The cluster's two serializers: round trips, exact sizes, and refusal of malformed bytes.</summary>
public sealed class ClusterSerializerSpec : Akka.TestKit.Xunit2.TestKit
{
    public ClusterSerializerSpec() : base(BittensorCluster.SerializationConfig)
    {
    }

    private Akka.Serialization.Serializer For(object message) => Sys.Serialization.FindSerializerFor(message);

    private T RoundTrip<T>(T message) where T : notnull
    {
        var s = (SerializerWithStringManifest)For(message);
        return (T)s.FromBinary(s.ToBinary(message), s.Manifest(message));
    }

    [Fact]
    public void Tensor_messages_use_the_tensor_serializer_and_round_trip_with_their_elements()
    {
        var inputs = DenseTensor.Int64([2, 3], [1, 2, 3, 4, 5, long.MaxValue]);
        var grads = DenseTensor.Float32([2, 3, 2], [.. Enumerable.Range(0, 12).Select(i => i * 0.5f - 1)]);
        var deadline = new DateTime(2026, 12, 4, 13, 0, 0, DateTimeKind.Utc);
        var call = new WorkerCall(42, true, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", 12.5, Modality.Text, inputs, grads, 3, deadline);
        Assert.IsType<ClusterTensorSerializer>(For(call));
        var back = RoundTrip(call);
        Assert.Equal((42L, true, call.CallerHotkey, 12.5, Modality.Text, 3, deadline), (back.RequestId, back.IsBackward, back.CallerHotkey, back.CallerStake, back.Modality, back.Priority, back.DeadlineUtc));
        Assert.Equal(inputs.Longs, back.Inputs.Longs);
        Assert.Equal(inputs.Shape, back.Inputs.Shape);
        Assert.Equal(grads.Floats, back.Grads!.Floats);
        Assert.Equal(grads.Shape, back.Grads.Shape);

        var outputs = DenseTensor.Float32([1, 2, 3], [float.NaN, -0f, float.Epsilon, 1e30f, -1, 2]);
        var reply = RoundTrip(new WorkerReply(7, ReturnCode.Success, "ok ✓", outputs));
        Assert.Equal((7L, ReturnCode.Success, "ok ✓"), (reply.RequestId, reply.Code, reply.Message));
        Assert.Equal(outputs.Floats!.Select(BitConverter.SingleToInt32Bits), reply.Outputs!.Floats!.Select(BitConverter.SingleToInt32Bits));
        Assert.Null(RoundTrip(new WorkerReply(8, ReturnCode.NucleusFull, "full", null)).Outputs);
    }

    [Fact]
    public void A_float_answer_costs_its_raw_bytes_plus_a_small_header()
    {
        var outputs = DenseTensor.Float32([4, 20, 1024], new float[4 * 20 * 1024]);
        var bytes = ((SerializerWithStringManifest)For(new WorkerReply(1, ReturnCode.Success, "", outputs))).ToBinary(new WorkerReply(1, ReturnCode.Success, "", outputs));
        Assert.Equal((4 * 20 * 1024 * 4) + 1 + 8 + 4 + 4 + 1 + 1 + 1 + (3 * 8), bytes.Length);
    }

    [Fact]
    public void Control_messages_use_protobuf_and_round_trip()
    {
        var register = new RegisterWorker(20, true, "akka.tcp://bittensor@10.0.0.2:4053");
        Assert.IsType<ClusterControlSerializer>(For(register));
        Assert.Equal(register, RoundTrip(register));
        Assert.Equal(new WorkerRegistered(3), RoundTrip(new WorkerRegistered(3)));
        Assert.Same(WorkerDraining.Instance, RoundTrip(WorkerDraining.Instance));
        Assert.Same(DrainAck.Instance, RoundTrip(DrainAck.Instance));
        var withParameters = new RegisterWorker(4, false, "w", 1 << 20);
        Assert.Equal(withParameters, RoundTrip(withParameters));
        Assert.Equal(new CollectParameters(9), RoundTrip(new CollectParameters(9)));
        var applied = new RegisterWorker(4, false, "w", 1 << 20, AveragedRound: 12);
        Assert.Equal(applied, RoundTrip(applied));
        Assert.Equal(new SendCheckpoint(12), RoundTrip(new SendCheckpoint(12)));
        var control = (SerializerWithStringManifest)For(new SendCheckpoint(1));
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => control.FromBinary(control.ToBinary(new SendCheckpoint(0)), "SC"));
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => control.FromBinary(control.ToBinary(new RegisterWorker(4, false, "w", 1, -1)), "RW"));
    }

    [Fact]
    public void Parameters_cross_as_raw_floats_and_malformed_ones_are_refused()
    {
        float[] values = [1.5f, float.NaN, -0f, 3e38f, 0];
        var sent = new ReplicaParameters(3, values);
        Assert.IsType<ClusterTensorSerializer>(For(sent));
        var s = (SerializerWithStringManifest)For(sent);
        var bytes = s.ToBinary(sent);
        Assert.Equal(1 + 8 + 4 + 4 + 4 + (4 * values.Length), bytes.Length);
        var back = (ReplicaParameters)s.FromBinary(bytes, ClusterTensorSerializer.ParametersManifest);
        Assert.Equal((3L, 0, values.Length), (back.Round, back.Offset, back.Total));
        Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), back.Values.ToArray().Select(BitConverter.SingleToInt32Bits));
        var average = RoundTrip(new AveragedParameters(4, true, 2, values));
        Assert.Equal((4L, true, 2), (average.Round, average.Exact, average.Replicas));
        Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), average.Values.ToArray().Select(BitConverter.SingleToInt32Bits));

        // A chunk: elements [2, 4) of 10, a slice of a bigger array written without the rest.
        var chunk = RoundTrip(new AveragedParameters(5, false, 3, 2, 10, new ReadOnlyMemory<float>(values, 1, 2)));
        Assert.Equal((5L, 2, 10), (chunk.Round, chunk.Offset, chunk.Total));
        Assert.Equal(2, chunk.Values.Length);
        Assert.True(float.IsNaN(chunk.Values.Span[0]));

        for (var n = 0; n < bytes.Length; n++) Assert.Throws<SerializationException>(() => s.FromBinary(bytes[..n], ClusterTensorSerializer.ParametersManifest));
        // round, offset, total, count: each out of range is refused.
        foreach (var (at, value) in new (int, long)[] { (1, 0L), (9, -1), (9, values.Length), (13, 0), (13, 1L << 29), (13, 4), (17, int.MaxValue), (17, 0) })
        {
            var bad = (byte[])bytes.Clone();
            if (at == 1) BitConverter.GetBytes(value).CopyTo(bad, at);
            else BitConverter.GetBytes((int)value).CopyTo(bad, at);
            Assert.Throws<SerializationException>(() => s.FromBinary(bad, ClusterTensorSerializer.ParametersManifest));
        }
        // A version-1 (whole vector, no offset) message from an older node is refused, not misread.
        var old = (byte[])bytes.Clone();
        old[0] = 1;
        Assert.Throws<SerializationException>(() => s.FromBinary(old, ClusterTensorSerializer.ParametersManifest));
    }

    [Fact]
    public void Malformed_tensor_messages_are_refused_with_a_serialization_exception_never_a_crash_or_a_huge_allocation()
    {
        var s = (SerializerWithStringManifest)For(new WorkerReply(1, ReturnCode.Success, "", null));
        var good = s.ToBinary(new WorkerCall(1, false, "k", 0, Modality.Text, DenseTensor.Int64([1, 2], [1, 2]), null, 0, DateTime.UtcNow));
        // Every truncation, every single-byte corruption of the header, and a claimed shape far beyond the bytes.
        for (var n = 0; n < good.Length; n++) Assert.Throws<SerializationException>(() => s.FromBinary(good[..n], ClusterTensorSerializer.CallManifest));
        var random = new Random(5);
        for (var i = 0; i < 2000; i++)
        {
            var bytes = (byte[])good.Clone();
            bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            try
            {
                _ = s.FromBinary(bytes, ClusterTensorSerializer.CallManifest);
            }
            catch (SerializationException)
            {
            }
        }
        var huge = (byte[])good.Clone();
        // The inputs' first dimension (after version, id, flags, priority, deadline, stake, hotkey "k", modality, dtype, rank).
        var dimAt = 1 + 8 + 1 + 4 + 8 + 8 + 4 + 1 + 1 + 1 + 1;
        BitConverter.GetBytes((long)int.MaxValue).CopyTo(huge, dimAt);
        Assert.Throws<SerializationException>(() => s.FromBinary(huge, ClusterTensorSerializer.CallManifest));
        Assert.Throws<SerializationException>(() => s.FromBinary(good, "XX"));
        Assert.Throws<SerializationException>(() => ((SerializerWithStringManifest)For(DrainAck.Instance)).FromBinary([0xFF, 0xFF], "RW"));
    }
}

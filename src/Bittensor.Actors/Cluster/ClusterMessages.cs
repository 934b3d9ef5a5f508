using Akka.Actor;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Cluster;

/// <summary>Messages that carry tensors between nodes; serialized by <see cref="ClusterTensorSerializer"/> (raw float/int64 bytes, one copy).</summary>
public interface IClusterTensorMessage
{
}

/// <summary>Control messages between nodes; serialized by <see cref="ClusterControlSerializer"/> (protobuf, cluster.proto).</summary>
public interface IClusterControlMessage
{
}

/// <summary>
/// front → worker: one verified, decoded axon call for the worker's model host. The worker answers the sender with
/// exactly one <see cref="WorkerReply"/> carrying <paramref name="RequestId"/> (the front's id, not the axon's).
/// </summary>
/// <param name="RequestId">The front's id of this call.</param>
/// <param name="IsBackward">A backward (inputs + grads) rather than a forward.</param>
/// <param name="CallerHotkey">The caller's SS58 (verified at the front).</param>
/// <param name="CallerStake">The caller's stake as the front knows it.</param>
/// <param name="Modality">Modality of <paramref name="Inputs"/>.</param>
/// <param name="Inputs">The inputs.</param>
/// <param name="Grads">Backward only: gradients w.r.t. the outputs.</param>
/// <param name="Priority">Stake priority (lower first) at the worker's model host.</param>
/// <param name="DeadlineUtc">The call's one deadline (UTC); nodes' clocks are assumed synchronised (NTP) to well under a call timeout.</param>
public sealed record WorkerCall(long RequestId, bool IsBackward, string CallerHotkey, double CallerStake, Modality Modality, DenseTensor Inputs,
    DenseTensor? Grads, int Priority, DateTime DeadlineUtc) : IClusterTensorMessage;

/// <summary>worker → front: the answer to one <see cref="WorkerCall"/>: outputs on success, else a code and a message.</summary>
public sealed record WorkerReply(long RequestId, ReturnCode Code, string Message, DenseTensor? Outputs) : IClusterTensorMessage;

/// <summary>worker → front: "route to me, at most <paramref name="Capacity"/> at a time". Repeated until <see cref="WorkerRegistered"/>.</summary>
/// <param name="Capacity">Requests the worker takes at once.</param>
/// <param name="Draining">The worker is leaving: route nothing new to it.</param>
/// <param name="Replica">A name for logs and status (the worker node's address).</param>
/// <param name="ParameterCount">Parameters of its model replica taking part in averaging (0 = none).</param>
/// <param name="AveragedRound">The last averaging round whose average the replica applied (0 = none yet: a fresh replica).
/// A front that took over learns from it where the rounds stand and which worker holds the latest checkpoint.</param>
/// <param name="DataPort">The TCP port of the worker's data plane on its node's hostname (0 = none: calls travel over
/// Akka.Remote). A front with the data plane on connects there and acknowledges the worker once connected.</param>
public sealed record RegisterWorker(int Capacity, bool Draining, string Replica, int ParameterCount = 0, long AveragedRound = 0, int DataPort = 0)
    : IClusterControlMessage;

/// <summary>
/// front → worker: send the last average you applied (its round is at least <paramref name="Round"/>) back as
/// <see cref="AveragedParameters"/>. A front that took over pulls the latest averaged checkpoint so from a replica
/// (docs/cluster.md "Parameter averaging", "Front take-over").
/// </summary>
public sealed record SendCheckpoint(long Round) : IClusterControlMessage;

/// <summary>front → worker: send your replica's parameters for averaging round <paramref name="Round"/> (answered with <see cref="ReplicaParameters"/>).</summary>
public sealed record CollectParameters(long Round) : IClusterControlMessage;

/// <summary>
/// worker → front: one chunk of a copy of the replica's parameters for round <paramref name="Round"/> (raw floats,
/// <see cref="ClusterTensorSerializer"/>): elements [<paramref name="Offset"/>, Offset + Values.Length) of
/// <paramref name="Total"/>. A worker sends its copy as consecutive chunks of at most
/// <see cref="BittensorCluster.ParameterChunkFloats"/> floats, in order (docs/cluster.md "Parameter averaging").
/// </summary>
public sealed record ReplicaParameters(long Round, int Offset, int Total, ReadOnlyMemory<float> Values) : IClusterTensorMessage
{
    /// <summary>A whole (single-chunk) copy.</summary>
    public ReplicaParameters(long round, float[] values) : this(round, 0, values.Length, values)
    {
    }
}

/// <summary>
/// front → worker: one chunk of the average of round <paramref name="Round"/> over <paramref name="Replicas"/> replicas
/// (elements [<paramref name="Offset"/>, Offset + Values.Length) of <paramref name="Total"/>; chunks are sent in
/// order). A worker applies nothing before it holds every chunk: then, if it sent its parameters for this round, it
/// applies θ ← θ + (average − what it sent) (its steps since then are kept); with <paramref name="Exact"/> (a joining
/// worker, or one that missed the round) it takes the average as it is. Also worker → front, as the answer to
/// <see cref="SendCheckpoint"/>: the last average the worker applied.
/// </summary>
public sealed record AveragedParameters(long Round, bool Exact, int Replicas, int Offset, int Total, ReadOnlyMemory<float> Values) : IClusterTensorMessage
{
    /// <summary>A whole (single-chunk) average.</summary>
    public AveragedParameters(long round, bool exact, int replicas, float[] values) : this(round, exact, replicas, 0, values.Length, values)
    {
    }
}

/// <summary>
/// receiver → sender: the chunk of round <paramref name="Round"/> at <paramref name="Offset"/> (a <see cref="ReplicaParameters"/>
/// or <see cref="AveragedParameters"/>) arrived. Every chunk is acknowledged, whatever the receiver does with it; the
/// sender keeps at most <see cref="ClusterSettings.ChunksInFlight"/> chunks unacknowledged per receiver (docs/cluster.md
/// "Pacing"), so calls on the same node-to-node connection wait behind at most that many.
/// </summary>
public sealed record ParameterChunkAck(long Round, int Offset) : IClusterControlMessage;

/// <summary>Splitting a parameter vector into the chunks that cross the cluster (each at most <see cref="BittensorCluster.ParameterChunkFloats"/> floats).</summary>
public static class ParameterChunks
{
    /// <summary>The (offset, slice) chunks of <paramref name="values"/>, in order; slices of the same array, nothing copied.</summary>
    public static IEnumerable<(int Offset, ReadOnlyMemory<float> Values)> Of(float[] values, int chunkFloats = BittensorCluster.ParameterChunkFloats)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkFloats, 1);
        for (var at = 0; at < values.Length; at += chunkFloats)
            yield return (at, new ReadOnlyMemory<float>(values, at, Math.Min(chunkFloats, values.Length - at)));
    }
}

/// <summary>
/// Reassembles one parameter vector from its chunks (<see cref="ReplicaParameters"/> / <see cref="AveragedParameters"/>),
/// which arrive in order from one sender. Nothing is usable before the last chunk: a chunk out of order, of another
/// round or of another size makes <see cref="Add"/> answer a reason and the vector is dropped whole.
/// </summary>
internal sealed class ParameterAssembly(long round, int total)
{
    private float[]? _values;
    private int _next;

    public long Round { get; } = round;
    public int Total { get; } = total;
    public int Received => _next;
    public bool Complete => _next == Total;

    /// <summary>The whole vector once <see cref="Complete"/>.</summary>
    public float[] Values => Complete ? _values! : throw new InvalidOperationException("the parameters are not complete");

    /// <summary>Adds the next chunk; null when it fits, else why it does not (the caller drops this assembly).</summary>
    public string? Add(long round, int offset, int total, ReadOnlyMemory<float> values)
    {
        if (round != Round) return $"a chunk of round {round} arrived during round {Round}";
        if (total != Total) return $"a chunk of {total} parameters arrived for {Total}";
        if (offset != _next) return $"the chunk at {offset} arrived where {_next} was expected (a chunk was lost)";
        if (values.Length == 0 || values.Length > Total - offset) return $"a chunk of {values.Length} floats at {offset} does not fit {Total}";
        // A vector in one chunk is used as it arrived (no copy) when it is a whole array.
        if (offset == 0 && values.Length == Total && System.Runtime.InteropServices.MemoryMarshal.TryGetArray(values, out var segment)
            && segment.Offset == 0 && segment.Count == segment.Array!.Length)
        {
            _values = segment.Array;
        }
        else
        {
            _values ??= GC.AllocateUninitializedArray<float>(Total);
            values.Span.CopyTo(_values.AsSpan(offset));
        }
        _next += values.Length;
        return null;
    }
}

/// <summary>Asks the front's router to run an averaging round now (local only); answered with <see cref="AveragingResult"/> when it ends.</summary>
public sealed record AverageNow : INoSerializationVerificationNeeded
{
    /// <summary>The only instance.</summary>
    public static AverageNow Instance { get; } = new();
    private AverageNow() { }
}

/// <summary>The end of an averaging round: its number and how many replicas were averaged, or why it did not run (<paramref name="Skipped"/>).</summary>
public sealed record AveragingResult(long Round, int Replicas, string? Skipped) : INoSerializationVerificationNeeded;

/// <summary>Published on a worker node's event stream when it applied averaged parameters (local only).</summary>
/// <param name="Round">The averaging round.</param>
/// <param name="Exact">True when it took the average as it is (joining, or it missed the round).</param>
/// <param name="Replicas">Replicas the average is over.</param>
public sealed record ReplicaParametersApplied(long Round, bool Exact, int Replicas) : INoSerializationVerificationNeeded;

/// <summary>Changes a replica's parameters in place (called with no step of the model in progress).</summary>
public delegate void ReplicaUpdate(Span<float> parameters);

/// <summary>
/// The trainable parameters of a worker's model replica, as one flat float vector, for parameter averaging across
/// workers (docs/cluster.md "Parameter averaging"). Implementations make <see cref="Snapshot"/> and
/// <see cref="Update"/> atomic with respect to the model's own steps (e.g. the same lock).
/// </summary>
public interface IReplicaParameters
{
    /// <summary>Number of parameters (fixed for the model's life).</summary>
    int Count { get; }

    /// <summary>A consistent copy of the parameters.</summary>
    float[] Snapshot();

    /// <summary>Changes the parameters in place, with no step of the model running meanwhile.</summary>
    void Update(ReplicaUpdate change);
}

/// <summary>front → worker: registration seen; <paramref name="Workers"/> workers are known to the front now.</summary>
public sealed record WorkerRegistered(int Workers) : IClusterControlMessage;

/// <summary>
/// Published on a worker node's event stream each time the worker registered with a front (at start, and again after
/// a front take-over), local only: a host prints it (<c>btcli axon worker</c>, <c>btcli run server --cluster.role worker</c>).
/// </summary>
/// <param name="Front">The address of the front's node.</param>
/// <param name="Workers">Workers known to that front now, this one included.</param>
public sealed record ClusterWorkerJoinedFront(string Front, int Workers) : INoSerializationVerificationNeeded;

/// <summary>
/// Published on a worker node's event stream when the worker answered its first call (local only): a host prints it
/// (<c>btcli run server --cluster.role worker</c>, <c>btcli axon worker</c>), so a restarted worker shows it takes traffic again.
/// </summary>
/// <param name="Front">The address of the front's node the call came from.</param>
public sealed record ClusterWorkerFirstCall(string Front) : INoSerializationVerificationNeeded;

/// <summary>
/// Published on a worker node's event stream once the worker drained as its node leaves (its calls answered and the
/// front's acknowledgement in, or <see cref="ClusterSettings.DrainTimeout"/> passed), local only, with what it served in
/// that node: a host prints it as it exits (<c>btcli axon worker</c>, <c>btcli run server --cluster.role worker</c>). The
/// counts are final then (the front routes nothing new to a draining worker); a host that asked for them at the end of the
/// node's shutdown instead could run out of that phase's time on a starved machine and print no counts.
/// </summary>
/// <param name="Served">Calls the worker served in this node.</param>
/// <param name="ServedOnDataPlane">How many of them came on a front's data connection.</param>
/// <param name="TimedOut">The drain ended at drain_timeout with calls still in flight.</param>
public sealed record ClusterWorkerDrained(long Served, long ServedOnDataPlane, bool TimedOut) : INoSerializationVerificationNeeded;

/// <summary>worker → front: the worker leaves; the front answers <see cref="DrainAck"/> and routes nothing new to it.</summary>
public sealed record WorkerDraining : IClusterControlMessage
{
    /// <summary>The only instance.</summary>
    public static WorkerDraining Instance { get; } = new();
    private WorkerDraining() { }
}

/// <summary>front → worker: nothing will follow (messages between two nodes keep their order, so every call sent before this is already there).</summary>
public sealed record DrainAck : IClusterControlMessage
{
    /// <summary>The only instance.</summary>
    public static DrainAck Instance { get; } = new();
    private DrainAck() { }
}

/// <summary>Asks a <see cref="ClusterFrontActor"/> for its <see cref="ClusterFrontStatus"/> (local only).</summary>
public sealed record GetClusterFrontStatus : INoSerializationVerificationNeeded
{
    /// <summary>The only instance.</summary>
    public static GetClusterFrontStatus Instance { get; } = new();
    private GetClusterFrontStatus() { }
}

/// <summary>One worker as the front sees it.</summary>
/// <param name="Replica">The worker's name (its node address).</param>
/// <param name="Worker">Its actor.</param>
/// <param name="Capacity">Requests it takes at once.</param>
/// <param name="InFlight">Requests sent to it and not answered yet.</param>
/// <param name="Reachable">False while the failure detector marks its node unreachable.</param>
/// <param name="Draining">True once it announced it leaves.</param>
/// <param name="Served">Answers received from it.</param>
/// <param name="DataPlane">The worker's data connection (host:port) the calls travel on; null: over Akka.Remote.</param>
/// <param name="Held">A fresh replica held until the front knows the cluster's averaged checkpoint (no calls yet).</param>
/// <param name="Receiving">The averaged checkpoint is on its way to it (no calls until its last chunk is acknowledged).</param>
public sealed record ClusterWorkerStatus(string Replica, IActorRef Worker, int Capacity, int InFlight, bool Reachable, bool Draining, long Served,
    string? DataPlane = null, bool Held = false, bool Receiving = false);

/// <summary>The front's routing table and counters.</summary>
/// <param name="Workers">Known workers.</param>
/// <param name="Pending">Calls sent to workers and not answered yet.</param>
/// <param name="Rerouted">Calls re-sent to another worker after theirs became unreachable or left.</param>
/// <param name="RefusedFull">Calls answered NucleusFull at once because every worker was full.</param>
/// <param name="AffinityHits">Backward calls routed to the replica that served their forward.</param>
/// <param name="AveragingRounds">Averaging rounds completed by this front.</param>
/// <param name="CheckpointRound">Round of the latest averaged checkpoint (0 = none yet).</param>
/// <param name="RoundDeferred">Replicas the averaging round in progress asks for their parameters only once the average or
/// checkpoint on its way to them is whole (a joiner whose checkpoint is arriving); 0 when no round runs.</param>
/// <param name="Connecting">Workers that registered and are not acknowledged yet: the front is connecting to their data
/// plane (not in <paramref name="Workers"/> until connected).</param>
public sealed record ClusterFrontStatus(IReadOnlyList<ClusterWorkerStatus> Workers, int Pending, long Rerouted, long RefusedFull, long AffinityHits,
    long AveragingRounds = 0, long CheckpointRound = 0, int RoundDeferred = 0, IReadOnlyList<string>? Connecting = null) : INoSerializationVerificationNeeded;

/// <summary>Asks a <see cref="ClusterWorkerActor"/> to drain: announce it leaves, wait for in-flight calls; answered with <see cref="Akka.Done"/>.</summary>
public sealed record DrainWorker : INoSerializationVerificationNeeded
{
    /// <summary>The only instance.</summary>
    public static DrainWorker Instance { get; } = new();
    private DrainWorker() { }
}

/// <summary>Asks a <see cref="ClusterWorkerActor"/> for its <see cref="ClusterWorkerState"/> (local only).</summary>
public sealed record GetClusterWorkerState : INoSerializationVerificationNeeded
{
    /// <summary>The only instance.</summary>
    public static GetClusterWorkerState Instance { get; } = new();
    private GetClusterWorkerState() { }
}

/// <summary>
/// A worker's view: fronts that acknowledged it, calls at its model host, calls served, the last averaging round applied,
/// how many of the calls served came on a front's data connection (docs/cluster.md "Data plane"; the rest over Akka.Remote), and the
/// node address of the front it is registered with (null: none).
/// </summary>
public sealed record ClusterWorkerState(int RegisteredFronts, int InFlight, long Served, bool Draining, long AveragedRound = 0, long ServedOnDataPlane = 0,
    string? Front = null)
    : INoSerializationVerificationNeeded;

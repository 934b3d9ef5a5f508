using Akka.Actor;
using Akka.Event;
using Bittensor.Actors.Axon;
using Bittensor.Actors.ModelHost;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// A worker node's actor: it owns the node's model host (a <see cref="ModelHostActor"/> — a hosted text model or
/// delegates, with its queue, batching, deadlines and supervision), warms it (the host answers one local forward,
/// <see cref="WarmModel"/>, so the first routed call does not pay the model's first use), registers with the active front (the cluster
/// singleton <c>/user/cluster-front/front</c> on the oldest node of role front, reached through a singleton proxy),
/// and serves its <see cref="WorkerCall"/>s: each is handed to the host as an <see cref="AxonModelCall"/> and its
/// answer goes back as one <see cref="WorkerReply"/>.
/// </summary>
/// <remarks>
/// <para>Front take-over: the worker watches the router that acknowledged it; when that router stops (its node died
/// and was downed, or it handed over) the worker registers again, and the proxy delivers the registration to the
/// new front once it runs. Calls in flight from the old front are answered to it (and lost with it).</para>
/// <para>Leaving (<see cref="DrainWorker"/>, sent by the CoordinatedShutdown task <see cref="BittensorCluster.StartWorker"/>
/// adds before the cluster-leave phase): the worker tells the front it drains, waits until the front acknowledged
/// (after that no call can arrive) and every call at its host is answered, then answers <see cref="Akka.Done"/>;
/// at most drain_timeout. If the model host stops, every call at it answers NotServingNucleus and the worker stops
/// (the front then routes around it).</para>
/// </remarks>
public sealed class ClusterWorkerActor : ReceiveActor, IWithTimers
{
    private sealed record RegisterTick : INoSerializationVerificationNeeded
    {
        public static RegisterTick Instance { get; } = new();
    }

    private sealed record DrainTimedOut : INoSerializationVerificationNeeded
    {
        public static DrainTimedOut Instance { get; } = new();
    }

    private sealed record AverageTimedOut(long Round) : INoSerializationVerificationNeeded
    {
        public const string Key = "average-chunks";
    }

    /// <summary>A call that arrived on a data connection from a front.</summary>
    internal sealed record DataCall(DataPlaneConnection Connection, WorkerCall Call) : INoSerializationVerificationNeeded;

    /// <summary>A chunk of averaged parameters that arrived on a front's data connection (in order with its calls).</summary>
    internal sealed record DataAveraged(DataPlaneConnection Connection, AveragedParameters Chunk) : INoSerializationVerificationNeeded;

    /// <summary>A front's <see cref="DrainAck"/> that arrived on its data connection (after every call it sent there).</summary>
    internal sealed record DataDrainAck(DataPlaneConnection Connection) : INoSerializationVerificationNeeded;

    private readonly ClusterSettings _settings;
    private readonly Props _hostProps;
    private readonly int _capacity;
    private readonly IReplicaParameters? _parameters;
    private readonly bool _hosted;
    // Parameters taking part in averaging: known at once for an IReplicaParameters, from the host's model for a hosted
    // one (-1 until it answered; the worker registers after that, so the front knows the size from the start).
    private int _parameterCount;
    private (long Round, IActorRef Front)? _collecting;
    private readonly Dictionary<long, (bool Exact, int Replicas, float[] Values)> _applying = [];
    // The last average applied (kept for a front that takes over and pulls it as its checkpoint).
    private (long Round, int Replicas, float[] Values)? _lastAverage;
    private (long Round, float[] Sent)? _sent;
    // The average arriving in chunks (one at a time; applied only once whole).
    private (ParameterAssembly Chunks, bool Exact, int Replicas)? _incoming;
    private long _averagedRound;
    private readonly ClusterWorkerMemory? _memory;
    // Parameter chunks to the front, paced by its acknowledgements (bittensor.cluster.averaging.chunks_in_flight).
    private ChunkPacer _pacer = null!;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IActorRef _proxy = ActorRefs.Nobody;
    private IActorRef? _front;
    private bool _drainAcknowledged;
    // Where each call's answer goes: the front's data connection, or (no data plane) the front's router over Akka.
    private readonly Dictionary<long, (IActorRef? Front, DataPlaneConnection? Data, long Id)> _calls = [];
    private readonly int _dataPort;
    private IActorRef _host = ActorRefs.Nobody;
    private string _replica = "";
    private long _nextId;
    private long _served;
    // Of those, the calls that came (and were answered) on a front's data connection rather than over Akka.Remote.
    private long _servedOnDataPlane;
    private bool _draining;
    private IActorRef? _drainReplyTo;
    // Set once the host answered the warm-up forward (WarmModel); the worker registers only then.
    private bool _warm;
    private long _warmSince;

    private ClusterWorkerActor(ClusterSettings settings, Props hostProps, int capacity, IReplicaParameters? parameters, bool hosted, int dataPort,
        ClusterWorkerMemory? memory)
    {
        // A replica whose node was downed and replaced (ClusterWorkerNode): its parameters are the same object, so the
        // average it applied last (and its round) still describe them.
        _memory = memory;
        if (memory?.LastAverage is { } last)
        {
            _lastAverage = last;
            _averagedRound = last.Round;
        }
        _settings = settings;
        _dataPort = dataPort;
        _hostProps = hostProps;
        _capacity = capacity;
        _parameters = parameters;
        _hosted = hosted && parameters is null;
        _parameterCount = parameters?.Count ?? (_hosted ? -1 : 0);
        Receive<CollectParameters>(c =>
        {
            if (_parameters is not null)
            {
                var snapshot = _parameters.Snapshot();
                _sent = (c.Round, snapshot);
                SendParameters(Sender, c.Round, snapshot);
            }
            else if (_hosted && _parameterCount > 0)
            {
                // The copy is taken on the model's thread between two jobs (the host's queue), never beside a batch.
                _collecting = (c.Round, Sender);
                _host.Tell(new GetModelParameters(c.Round), Self);
            }
        });
        Receive<ModelParameters>(m =>
        {
            if (_collecting is not { } c || c.Round != m.Tag) return;
            _collecting = null;
            if (m.Values.Length != _parameterCount)
            {
                _log.Error("cluster worker: the model sent {0} parameters for round {1}, {2} were announced; not contributed", m.Values.Length, m.Tag, _parameterCount);
                return;
            }
            _sent = (c.Round, m.Values);
            SendParameters(c.Front, c.Round, m.Values);
        });
        Receive<ModelParameterCount>(OnParameterCount);
        Receive<ModelParametersUpdated>(u =>
        {
            if (!_applying.Remove(u.Tag, out var a)) return;
            if (u.Applied) Applied(u.Tag, a.Exact, a.Replicas, a.Values);
            else _log.Error("cluster worker: the average of round {0} was not applied: {1}", u.Tag, u.Message);
        });
        Receive<AveragedParameters>(a =>
        {
            Sender.Tell(new ParameterChunkAck(a.Round, a.Offset), Self); // every chunk, whatever becomes of it: the sender's pacing
            OnAveragedChunk(a);
        });
        Receive<ParameterChunkAck>(_ => _pacer.Acked(Sender, Self));
        Receive<ChunkPacer.AckTimedOut>(t =>
        {
            if (_pacer.TimedOut(t) is var dropped and >= 0)
                _log.Warning("cluster worker: no acknowledgement of parameter chunks from {0} for {1}; {2} waiting chunks dropped",
                    t.To.Path.Address, _settings.AveragingTimeout, dropped);
        });
        Receive<AverageTimedOut>(t =>
        {
            if (_incoming is not { } i || i.Chunks.Round != t.Round) return;
            _log.Warning("cluster worker: the average of round {0} stopped arriving ({1} of {2} parameters); dropped, nothing applied",
                t.Round, i.Chunks.Received, i.Chunks.Total);
            _incoming = null;
        });
        Receive<SendCheckpoint>(s =>
        {
            if (_lastAverage is { } c && c.Round >= s.Round)
            {
                _pacer.Send(Sender, ParameterChunks.Of(c.Values).Select(x =>
                    (object)new AveragedParameters(c.Round, true, c.Replicas, x.Offset, c.Values.Length, x.Values)), Self);
            }
            else _log.Warning("cluster worker: the front asked for the checkpoint of round {0}; this replica has {1}", s.Round, _lastAverage?.Round ?? 0);
        });
        Receive<WorkerCall>(c => OnCall(c, Sender, null));
        Receive<DataCall>(c => OnCall(c.Call, null, c.Connection));
        Receive<DataAveraged>(d =>
        {
            // A chunk on a front's data connection: acknowledged to that front's router (its pacing) over Akka.
            Context.ActorSelection($"{d.Connection.Peer}/user/{ClusterSettings.FrontName}/{ClusterSettings.FrontSingletonName}/router")
                .Tell(new ParameterChunkAck(d.Chunk.Round, d.Chunk.Offset), Self);
            OnAveragedChunk(d.Chunk);
        });
        Receive<DataDrainAck>(a =>
        {
            if (_front is not null && a.Connection.Peer == _front.Path.Address.ToString()) _drainAcknowledged = true;
            CheckDrained();
        });
        Receive<AxonModelReply>(OnHostReply);
        Receive<ModelWarmed>(OnWarmed);
        Receive<RegisterTick>(_ =>
        {
            if (_parameterCount < 0) _host.Tell(GetModelParameterCount.Instance, Self); // lost if the model restarted: ask again
            else if (_warm && _front is null) SendRegister();
        });
        Receive<WorkerRegistered>(r =>
        {
            if (Sender.Equals(_front)) return;
            if (_front is not null) Context.Unwatch(_front);
            _front = Sender;
            _drainAcknowledged = false;
            Context.Watch(_front);
            _log.Info("cluster worker: registered with the front at {0} ({1} workers there)", Sender.Path.Address, r.Workers);
            Context.System.EventStream.Publish(new ClusterWorkerJoinedFront(Sender.Path.Address.ToString(), r.Workers));
            if (_draining) Sender.Tell(WorkerDraining.Instance);
        });
        Receive<DrainWorker>(_ =>
        {
            _drainReplyTo = Sender;
            if (_draining) return;
            _draining = true;
            _log.Info("cluster worker: draining ({0} calls in flight)", _calls.Count);
            _front?.Tell(WorkerDraining.Instance);
            Timers.StartSingleTimer(DrainTimedOut.Instance, DrainTimedOut.Instance, _settings.DrainTimeout);
            CheckDrained();
        });
        Receive<DrainAck>(_ =>
        {
            if (Sender.Equals(_front)) _drainAcknowledged = true;
            CheckDrained();
        });
        Receive<DrainTimedOut>(_ =>
        {
            _log.Warning("cluster worker: drain_timeout passed with {0} calls in flight; leaving anyway", _calls.Count);
            if (_drainReplyTo is null) return;
            Context.System.EventStream.Publish(new ClusterWorkerDrained(_served, _servedOnDataPlane, TimedOut: true));
            _drainReplyTo.Tell(Akka.Done.Instance);
            _drainReplyTo = null;
        });
        Receive<GetClusterWorkerState>(_ => Sender.Tell(new ClusterWorkerState(_front is null ? 0 : 1, _calls.Count, _served, _draining, _averagedRound, _servedOnDataPlane,
            _front?.Path.Address.ToString())));
        Receive<Terminated>(t =>
        {
            if (t.ActorRef.Equals(_host))
            {
                _log.Warning("cluster worker: the model host stopped; this worker stops");
                Context.Stop(Self);
            }
            else if (t.ActorRef.Equals(_front))
            {
                _log.Info("cluster worker: the front at {0} is gone; registering with the next one", t.ActorRef.Path.Address);
                _pacer.Drop(t.ActorRef);
                _front = null;
                _drainAcknowledged = false;
                if (_warm) SendRegister();
                CheckDrained();
            }
        });
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// Props of a worker whose model host is built from <paramref name="hostProps"/> (started as its child <c>model</c>),
    /// taking at most <paramref name="capacity"/> calls at once.
    /// </summary>
    /// <param name="settings">The cluster settings.</param>
    /// <param name="hostProps">The model host.</param>
    /// <param name="capacity">Calls taken at once.</param>
    /// <param name="parameters">The replica's parameters, when its model takes part in averaging (null: it does not).</param>
    /// <param name="hostedParameters">The host's own model takes part in averaging (a <see cref="ModelHostActor"/> whose
    /// model implements <c>IFlatParameters</c>, e.g. the TorchSharp server model): its parameters are read and written
    /// through the host's queue (<see cref="GetModelParameters"/>, <see cref="UpdateModelParameters"/>), on the model's
    /// thread between two jobs. Ignored when <paramref name="parameters"/> is given.</param>
    /// <param name="dataPort">The port of this node's data plane listener (<see cref="DataPlaneListener"/>), announced in the
    /// registration; 0 = none (calls over Akka.Remote).</param>
    public static Props Props(ClusterSettings settings, Props hostProps, int capacity, IReplicaParameters? parameters = null, bool hostedParameters = false,
        int dataPort = 0) => ReplicaProps(settings, hostProps, capacity, parameters, hostedParameters, dataPort, memory: null);

    /// <summary>As the public overload; <paramref name="memory"/>: the averaging state of <paramref name="parameters"/> kept across nodes (<see cref="ClusterWorkerNode"/>).</summary>
    internal static Props ReplicaProps(ClusterSettings settings, Props hostProps, int capacity, IReplicaParameters? parameters, bool hostedParameters,
        int dataPort, ClusterWorkerMemory? memory)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(hostProps);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        settings.Validate();
        if (parameters is not null && parameters.Count is < 1 or > BittensorCluster.MaxAveragedParameters)
            throw new ArgumentException($"a replica's parameters must be 1 to {BittensorCluster.MaxAveragedParameters} floats; " +
                $"this one has {parameters.Count}", nameof(parameters));
        ArgumentOutOfRangeException.ThrowIfNegative(dataPort);
        if (memory is not null && parameters is null) throw new ArgumentException("a worker's averaging memory needs its replica's parameters", nameof(memory));
        return FactoryProps.For(() => new ClusterWorkerActor(settings, hostProps, capacity, parameters, hostedParameters, dataPort, memory));
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        _replica = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        _pacer = new ChunkPacer(_settings.ChunksInFlight, Timers, _settings.AveragingTimeout);
        _host = Context.ActorOf(_hostProps, "model");
        Context.Watch(_host);
        // The proxy finds the oldest front-capable node's singleton (and the next one after a take-over); it keeps the
        // last registration while no front runs, and the tick repeats it until a front acknowledges.
        _proxy = Context.ActorOf(Akka.Cluster.Tools.Singleton.ClusterSingletonProxy.Props($"/user/{ClusterSettings.FrontName}",
            Akka.Cluster.Tools.Singleton.ClusterSingletonProxySettings.Create(Context.System)
                .WithRole(ClusterSettings.FrontRole).WithSingletonName(ClusterSettings.FrontSingletonName).WithBufferSize(1)), "front-proxy");
        // A hosted model's size is known once it is built: registration waits for the host's answer, then for its warm-up.
        if (_hosted) _host.Tell(GetModelParameterCount.Instance, Self);
        else WarmUp();
        Timers.StartPeriodicTimer(RegisterTick.Instance, RegisterTick.Instance, _settings.RegisterInterval);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // No answers from here for the calls still at the host: the fronts watch this actor and re-route its
        // forwards when it stops (a node that dies abruptly could not answer either).
        _calls.Clear();
        _drainReplyTo?.Tell(Akka.Done.Instance);
    }

    private void SendRegister() => _proxy.Tell(new RegisterWorker(_capacity, _draining, _replica, Math.Max(0, _parameterCount), _averagedRound, _dataPort), Self);

    private void OnParameterCount(ModelParameterCount m)
    {
        if (_parameterCount >= 0) return;
        if (m.Count is < 0 or > BittensorCluster.MaxAveragedParameters)
        {
            // Refused at start, as a too large IReplicaParameters is.
            _log.Error("cluster worker: the model has {0} parameters; averaging takes at most {1}; this worker stops",
                m.Count, BittensorCluster.MaxAveragedParameters);
            Context.Stop(Self);
            return;
        }
        _parameterCount = m.Count;
        _log.Info("cluster worker: the model is up ({0} parameters for averaging)", m.Count);
        WarmUp();
    }

    // The model answers one local forward before the worker registers (WarmModel): a front routes calls to a worker as
    // soon as it registered, and a fresh model's first call pays its first use (TorchSharp's kernels, the JIT of the
    // forward path: tens of ms of CPU, seconds on a loaded machine), which went over a caller's deadline (the demo as
    // processes at load 30-40). The host answers every request once, at the latest at its request timeout; whatever
    // the answer, the worker registers after it.
    private void WarmUp()
    {
        _warmSince = System.Diagnostics.Stopwatch.GetTimestamp();
        _host.Tell(WarmModel.Instance, Self);
    }

    private void OnWarmed(ModelWarmed w)
    {
        if (_warm) return;
        _warm = true;
        var took = System.Diagnostics.Stopwatch.GetElapsedTime(_warmSince);
        if (w.Ran && w.Code == ModelReturnCode.Success) _log.Info("cluster worker: the model answered a warm-up forward in {0:F0} ms; registering with the front", took.TotalMilliseconds);
        else if (w.Ran) _log.Warning("cluster worker: the model's warm-up forward failed ({0}: {1}); registering with the front anyway", w.Code, w.Message);
        SendRegister();
    }

    private void Applied(long round, bool exact, int replicas, float[] values)
    {
        _averagedRound = round;
        _lastAverage = (round, replicas, values);
        if (_memory is not null) _memory.LastAverage = _lastAverage;
        _log.Debug("cluster worker: applied the average of round {0} ({1} replicas{2})", round, replicas, exact ? ", as it is" : "");
        Context.System.EventStream.Publish(new ReplicaParametersApplied(round, exact, replicas));
    }

    // A replica's copy crosses as consecutive chunks (slices of the one array; each copied once when serialized),
    // paced: at most chunks_in_flight unacknowledged, so calls on the connection are not queued behind the whole copy.
    private void SendParameters(IActorRef front, long round, float[] values) =>
        _pacer.Send(front, ParameterChunks.Of(values).Select(x => (object)new ReplicaParameters(round, x.Offset, values.Length, x.Values)), Self);

    // The average arrives in chunks, in order; it is applied only once every chunk is in. A chunk out of order or of
    // another round drops what had arrived (nothing applied: the replica keeps its parameters until the next round).
    private void OnAveragedChunk(AveragedParameters a)
    {
        if (_parameterCount <= 0) return;
        if (a.Total != _parameterCount)
        {
            _log.Error("cluster worker: averaged parameters of round {0} have {1} values, this replica {2}; ignored", a.Round, a.Total, _parameterCount);
            return;
        }
        if (a.Offset == 0)
        {
            if (_incoming is { } dropped)
                _log.Warning("cluster worker: the average of round {0} was incomplete ({1} of {2}) when round {3} began; dropped",
                    dropped.Chunks.Round, dropped.Chunks.Received, dropped.Chunks.Total, a.Round);
            _incoming = (new ParameterAssembly(a.Round, a.Total), a.Exact, a.Replicas);
            Timers.StartSingleTimer(AverageTimedOut.Key, new AverageTimedOut(a.Round), _settings.AveragingTimeout);
        }
        if (_incoming is not { } incoming)
        {
            _log.Warning("cluster worker: a chunk at {0} of the average of round {1} arrived without its start; dropped", a.Offset, a.Round);
            return;
        }
        if (incoming.Chunks.Add(a.Round, a.Offset, a.Total, a.Values) is { } problem)
        {
            _log.Warning("cluster worker: the average of round {0} is dropped, nothing applied: {1}", incoming.Chunks.Round, problem);
            _incoming = null;
            Timers.Cancel(AverageTimedOut.Key);
            return;
        }
        if (!incoming.Chunks.Complete) return;
        _incoming = null;
        Timers.Cancel(AverageTimedOut.Key);
        OnAveraged(incoming.Chunks.Round, incoming.Exact, incoming.Replicas, incoming.Chunks.Values);
    }

    // θ ← θ + (average − sent): the average replaces what this replica sent, and the steps it took since stay. An
    // element that did not move since is set to the average itself, so replicas without traffic end bit-equal.
    private void OnAveraged(long round, bool exactAverage, int replicas, float[] average)
    {
        var exact = exactAverage || _sent is not { } sent || sent.Round != round;
        if (_parameters is null)
        {
            // Hosted: applied on the model's thread between two jobs; a call that arrives after this message reaches
            // the model after it (the host forwards control messages at once, calls only when the model is free).
            _applying[round] = (exact, replicas, average);
            _host.Tell(new UpdateModelParameters(round, average, exact ? null : _sent!.Value.Sent), Self);
            _sent = null;
            return;
        }
        if (exact) _parameters.Update(p => average.CopyTo(p));
        else
        {
            var before = _sent!.Value.Sent;
            _parameters.Update(p =>
            {
                for (var i = 0; i < p.Length; i++) p[i] = p[i] == before[i] ? average[i] : p[i] + (average[i] - before[i]);
            });
        }
        _sent = null;
        Applied(round, exact, replicas, average);
    }

    private void OnCall(WorkerCall call, IActorRef? front, DataPlaneConnection? data)
    {
        if (call.IsBackward && call.Grads is null)
        {
            Answer(front, data, new WorkerReply(call.RequestId, ReturnCode.InvalidRequest, "a backward call without gradients", null));
            return;
        }
        var id = ++_nextId;
        _calls[id] = (front, data, call.RequestId);
        if (_log.IsDebugEnabled) _log.Debug("cluster worker: a call arrived ({0} in flight)", _calls.Count);
        var message = call.IsBackward
            ? new AxonModelCall(id, null, new BackwardRequest(call.CallerHotkey, call.CallerStake, call.Modality, call.Inputs,
                call.Grads!)
            {
                Priority = call.Priority, DeadlineUtc = call.DeadlineUtc,
            })
            : new AxonModelCall(id, new ForwardRequest(call.CallerHotkey, call.CallerStake, call.Modality, call.Inputs)
            {
                Priority = call.Priority, DeadlineUtc = call.DeadlineUtc,
            }, null);
        _host.Tell(message, Self);
    }

    private void OnHostReply(AxonModelReply reply)
    {
        if (!_calls.Remove(reply.RequestId, out var to)) return;
        if (to.Data is not null) _servedOnDataPlane++;
        if (++_served == 1) Context.System.EventStream.Publish(new ClusterWorkerFirstCall(to.Data?.Peer ?? to.Front!.Path.Address.ToString()));
        var r = reply.Response;
        Answer(to.Front, to.Data, new WorkerReply(to.Id, r.Code, r.Message, r.Code == ReturnCode.Success ? r.Outputs : null));
        CheckDrained();
    }

    // The answer goes back the way its call came. On a data connection: a closed one drops it (the front re-routes or
    // answers the call itself); a front that stopped reading loses its connection; an answer that cannot be written is
    // replaced by a clear error.
    private void Answer(IActorRef? front, DataPlaneConnection? data, WorkerReply reply)
    {
        if (data is null)
        {
            front!.Tell(reply, Self);
            return;
        }
        try
        {
            if (data.Send(DataPlaneFrames.Reply, reply) == DataPlaneSend.Backlogged)
                data.Close($"the front does not read its replies ({ClusterFrontActor.MaxQueuedPerConnection} queued)");
        }
        catch (System.Runtime.Serialization.SerializationException e)
        {
            _log.Error("cluster worker: the answer to call {0} cannot be sent: {1}", reply.RequestId, e.Message);
            data.Send(DataPlaneFrames.Reply, new WorkerReply(reply.RequestId, ReturnCode.UnknownException, $"the worker's answer cannot be sent: {e.Message}", null));
        }
    }

    private void CheckDrained()
    {
        if (!_draining || _drainReplyTo is null || _calls.Count > 0) return;
        if (_front is not null && !_drainAcknowledged) return;
        _log.Info("cluster worker: drained ({0} calls served)", _served);
        Timers.Cancel(DrainTimedOut.Instance);
        Context.System.EventStream.Publish(new ClusterWorkerDrained(_served, _servedOnDataPlane, TimedOut: false));
        _drainReplyTo.Tell(Akka.Done.Instance);
        _drainReplyTo = null;
    }
}

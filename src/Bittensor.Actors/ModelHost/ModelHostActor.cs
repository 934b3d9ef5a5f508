using Akka.Actor;
using Akka.Event;
using Bittensor.Core.Modeling;
using Bittensor.Core.Resilience;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// The model host: ONE actor that owns the bounded request queue, the batching and the supervision of the model
/// worker (a child on the dedicated <c>bittensor.model.dispatcher</c> that runs the <see cref="ITextModel"/>).
/// Send it <see cref="ModelForward"/>, <see cref="ModelBackward"/>, <see cref="SaveCheckpoint"/>,
/// <see cref="GetModelStats"/> and <see cref="FlushBatches"/>.
/// </summary>
/// <remarks>
/// <para>Hops of a served call. Model side (this change): the axon's model handler Tells this host with a request id
/// (one reply-collector actor per <see cref="ModelHostEndpoint"/>, no Ask per call), the host Tells its worker, the
/// worker Tells the host, the host Tells the collector: host + worker, one queue (here), one deadline. Axon side, as
/// of this commit: AxonService → AxonRouter → AxonWorker → handler, so the whole path is AxonService → AxonRouter →
/// AxonWorker → ModelHostActor → ModelWorker (5 actors, 2 queues); the request already carries what the axon's front
/// needs to hand calls straight here (<see cref="ModelForward.Priority"/>, <see cref="ModelForward.DeadlineUtc"/>),
/// which makes it 4: axon service → axon front → model host → model worker.
/// The caller's deadline travels in the request (default now + request_timeout): it is the only timeout on the way,
/// no Ask timeout is stacked on it.</para>
/// <para>Queue: waiting requests are ordered by <see cref="ModelForward.Priority"/> (lower first, e.g. the axon's
/// stake priority), FIFO among equals, at most max_queue of them (beyond: NucleusFull). Forward requests with the
/// same sequence length are coalesced, head first, into one model call of up to max_batch rows; while the model is
/// busy requests accumulate and go as one batch when it frees; while it is idle the head waits at most max_delay
/// for company. Backward requests run one per call. At most one call is at the model at a time.</para>
/// <para>Every accepted request gets exactly one reply: its result, or a code — NucleusFull (queue full),
/// NucleusTimeout (its deadline passed, queued or at the model), UnknownException (the model failed on it),
/// NotServingNucleus (the host stopped), InvalidRequest/RequestShapeException (refused on arrival).</para>
/// <para>Supervision: a worker that fails (an exception, NaN outputs or weights) is stopped and a new one is
/// started after a capped exponential backoff (<see cref="BackoffPolicy"/>), restoring the last checkpoint.</para>
/// </remarks>
public sealed class ModelHostActor : ReceiveActor, IWithTimers
{
    private sealed class Pending(IActorRef replyTo, ModelForward? forward, ModelBackward? backward, DateTime deadline, long seq)
    {
        public IActorRef ReplyTo { get; } = replyTo;
        public ModelForward? Forward { get; } = forward;
        public ModelBackward? Backward { get; } = backward;
        public DateTime Deadline { get; } = deadline;
        public long Seq { get; } = seq;
        public int Priority => Forward?.Priority ?? Backward!.Priority;
        public long RequestId => Forward?.RequestId ?? Backward!.RequestId;
        public bool Answered { get; set; }
    }

    private sealed class QueueOrder : IComparer<Pending>
    {
        public static QueueOrder Instance { get; } = new();

        public int Compare(Pending? x, Pending? y)
        {
            var c = x!.Priority.CompareTo(y!.Priority);
            return c != 0 ? c : x.Seq.CompareTo(y.Seq);
        }
    }

    private sealed record InFlight(long JobId, List<Pending> Members);

    private sealed record DelayElapsed
    {
        public static DelayElapsed Instance { get; } = new();
    }

    private sealed record DeadlineReached(long Seq);

    private sealed record StartWorker
    {
        public static StartWorker Instance { get; } = new();
    }

    private const string DelayTimer = "batch-delay";
    private const string RestartTimer = "restart";
    private const int MaxBufferedControl = 64;

    private readonly ModelSettings _settings;
    private readonly Func<ITextModel> _factory;
    private readonly ModelLineage _lineage;
    private readonly BackoffPolicy _backoff;
    private readonly Random _random = new();
    private readonly TimeProvider _time;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SortedSet<Pending> _queue = new(QueueOrder.Instance);
    private readonly Dictionary<long, Pending> _bySeq = [];
    private readonly List<(object Message, IActorRef Sender)> _control = [];
    private IActorRef _worker = ActorRefs.Nobody;
    private InFlight? _inFlight;
    private bool _ready;
    private int _failures;
    private long _nextSeq;
    private int _started;
    private bool _stopped;
    private long _nextJobId;

    /// <summary>A host for the models <paramref name="factory"/> builds (one per worker incarnation, on the model dispatcher).</summary>
    public ModelHostActor(ModelSettings settings, Func<ITextModel> factory, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(factory);
        _settings = settings.Validate();
        _factory = factory;
        _time = time ?? TimeProvider.System;
        _backoff = settings.Backoff;
        var owned = settings.CheckpointPath is null;
        var path = settings.CheckpointPath ?? Path.Combine(Path.GetTempPath(), $"bittensor-model-{Guid.NewGuid():N}.ckpt");
        _lineage = new ModelLineage(path, owned);

        Receive<ModelForward>(f => Accept(Sender, f, null, f.DeadlineUtc, ValidateForward(f)));
        Receive<ModelBackward>(b => Accept(Sender, null, b, b.DeadlineUtc, ValidateBackward(b)));
        Receive<FlushBatches>(_ => TryDispatch(force: true));
        Receive<DelayElapsed>(_ => TryDispatch(force: true));
        Receive<DeadlineReached>(OnDeadline);
        Receive<ModelReady>(OnModelReady);
        Receive<ForwardJobDone>(OnForwardDone);
        Receive<BackwardJobDone>(OnBackwardDone);
        Receive<JobFailed>(OnJobFailed);
        Receive<Terminated>(t => t.ActorRef.Equals(_worker), OnWorkerStopped);
        Receive<StartWorker>(_ => StartNewWorker());
        // Control messages (SaveCheckpoint, GetModelStats, FailNextForward) go to the worker in order with jobs.
        ReceiveAny(ToWorker);
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Props of a host with <paramref name="settings"/> serving the models <paramref name="factory"/> builds.</summary>
    public static Props Props(ModelSettings settings, Func<ITextModel> factory, TimeProvider? time = null) =>
        Akka.Actor.Props.Create(() => new ModelHostActor(settings, factory, time));

    /// <inheritdoc />
    protected override SupervisorStrategy SupervisorStrategy() =>
        // The host restarts the worker itself, after a backoff and from the last checkpoint.
        new OneForOneStrategy(_ => Directive.Stop);

    /// <inheritdoc />
    protected override void PreStart() => StartNewWorker();

    /// <inheritdoc />
    protected override void PostStop()
    {
        _ready = false; // nothing is dispatched any more
        _stopped = true;
        if (_inFlight is not null) Complete(ModelReturnCode.NotServingNucleus, "the model host stopped");
        foreach (var p in _queue) Reply(p, ModelReturnCode.NotServingNucleus, "the model host stopped");
        _queue.Clear();
        _bySeq.Clear();
        // The default checkpoint is a temp file of this host only.
        if (_lineage.OwnsFile && File.Exists(_lineage.CheckpointPath)) File.Delete(_lineage.CheckpointPath);
    }

    private void StartNewWorker()
    {
        var props = ModelWorker.Props(_settings, _factory, Self, _lineage);
        if (Context.System.Dispatchers.HasDispatcher(ModelSettings.DispatcherPath))
            props = props.WithDispatcher(ModelSettings.DispatcherPath);
        _worker = Context.ActorOf(props, $"worker-{++_started}");
        Context.Watch(_worker);
        foreach (var (message, sender) in _control) _worker.Tell(message, sender);
        _control.Clear();
    }

    private void ToWorker(object message)
    {
        if (!_worker.IsNobody())
        {
            _worker.Forward(message);
            return;
        }
        // Between incarnations: the next worker gets them, in order; beyond a small bound they are dropped.
        if (_control.Count < MaxBufferedControl) _control.Add((message, Sender));
        else _log.Warning("model host dropped {0}: the model is restarting and {1} control messages wait", message.GetType().Name, _control.Count);
    }

    private (ModelReturnCode Code, string Message)? ValidateForward(ModelForward f)
    {
        if (f.Tokens is null) return (ModelReturnCode.InvalidRequest, "tokens are missing");
        return ValidateShape(f.Tokens, f.Batch, f.Seq);
    }

    private (ModelReturnCode Code, string Message)? ValidateBackward(ModelBackward b)
    {
        if (b.Tokens is null || b.Grads is null) return (ModelReturnCode.InvalidRequest, "tokens or gradients are missing");
        if (ValidateShape(b.Tokens, b.Batch, b.Seq) is { } error) return error;
        if (b.Grads.LongLength != (long)b.Batch * b.Seq * _settings.NetworkDim)
            return (ModelReturnCode.RequestShapeException, $"gradients have {b.Grads.LongLength} values, expected [{b.Batch}, {b.Seq}, {_settings.NetworkDim}]");
        foreach (var g in b.Grads)
            if (!float.IsFinite(g)) return (ModelReturnCode.InvalidRequest, "gradients contain NaN or Inf");
        return null;
    }

    private (ModelReturnCode Code, string Message)? ValidateShape(long[] tokens, int batch, int seq)
    {
        if (batch < 1 || seq < 1) return (ModelReturnCode.RequestShapeException, $"empty shape [{batch}, {seq}]");
        if (batch > _settings.MaxBatch) return (ModelReturnCode.RequestShapeException, $"batch {batch} exceeds max_batch {_settings.MaxBatch}");
        if (seq > _settings.MaxSequence) return (ModelReturnCode.RequestShapeException, $"sequence {seq} exceeds max_sequence {_settings.MaxSequence}");
        if (tokens.LongLength != (long)batch * seq) return (ModelReturnCode.RequestShapeException, $"{tokens.LongLength} tokens do not fill [{batch}, {seq}]");
        foreach (var t in tokens)
            if (t < 0 || t >= _settings.VocabSize) return (ModelReturnCode.InvalidRequest, $"token id {t} is outside the vocabulary (0..{_settings.VocabSize - 1})");
        return null;
    }

    private void Accept(IActorRef replyTo, ModelForward? forward, ModelBackward? backward, DateTime? deadlineUtc, (ModelReturnCode Code, string Message)? error)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var pending = new Pending(replyTo, forward, backward, deadlineUtc ?? now + _settings.RequestTimeout, _nextSeq++);
        if (error is { } e)
        {
            Reply(pending, e.Code, e.Message);
            return;
        }
        if (_queue.Count >= _settings.MaxQueue)
        {
            Reply(pending, ModelReturnCode.NucleusFull, $"{_queue.Count} requests are already waiting for the model");
            return;
        }
        if (pending.Deadline <= now)
        {
            Reply(pending, ModelReturnCode.NucleusTimeout, "the request's deadline had passed when it reached the model host");
            return;
        }
        _queue.Add(pending);
        _bySeq[pending.Seq] = pending;
        Timers.StartSingleTimer(pending.Seq, new DeadlineReached(pending.Seq), pending.Deadline - now);
        TryDispatch(force: false);
    }

    private void OnDeadline(DeadlineReached reached)
    {
        if (!_bySeq.Remove(reached.Seq, out var pending)) return;
        _queue.Remove(pending);
        // A member of the call at the model: answered now, its rows' results are dropped when the call returns.
        Reply(pending, ModelReturnCode.NucleusTimeout, $"the model did not answer before the request's deadline");
    }

    private void TryDispatch(bool force)
    {
        if (!_ready || _inFlight is not null || _queue.Count == 0) return;
        var head = _queue.Min!;
        if (head.Backward is { } backward)
        {
            Take(head);
            Send(new BackwardJob(++_nextJobId, backward), [head]);
            return;
        }

        var seq = head.Forward!.Seq;
        var members = new List<Pending>();
        var rows = 0;
        var full = false;
        foreach (var p in _queue)
        {
            if (p.Forward is not { } f || f.Seq != seq) continue;
            if (rows + f.Batch > _settings.MaxBatch)
            {
                full = true;
                break;
            }
            members.Add(p);
            rows += f.Batch;
        }
        full |= rows >= _settings.MaxBatch;
        if (!force && !full && _settings.MaxDelay > TimeSpan.Zero)
        {
            if (!Timers.IsTimerActive(DelayTimer)) Timers.StartSingleTimer(DelayTimer, DelayElapsed.Instance, _settings.MaxDelay);
            return;
        }

        foreach (var m in members) Take(m);
        var tokens = new long[rows * seq];
        var offset = 0;
        foreach (var m in members)
        {
            m.Forward!.Tokens.CopyTo(tokens, offset);
            offset += m.Forward.Tokens.Length;
        }
        Send(new ForwardJob(++_nextJobId, tokens, rows, seq), members);
    }

    // Out of the queue; still in _bySeq (and its deadline timer running) until answered.
    private void Take(Pending p) => _queue.Remove(p);

    private void Send(object job, List<Pending> members)
    {
        Timers.Cancel(DelayTimer);
        var jobId = job switch
        {
            ForwardJob f => f.JobId,
            BackwardJob b => b.JobId,
            _ => throw new ArgumentException("not a job", nameof(job)),
        };
        _inFlight = new InFlight(jobId, members);
        _worker.Tell(job, Self);
    }

    private void OnModelReady(ModelReady ready)
    {
        if (!Sender.Equals(_worker)) return;
        _ready = true;
        TryDispatch(force: true);
    }

    private void OnWorkerStopped(Terminated terminated)
    {
        _ready = false;
        _worker = ActorRefs.Nobody;
        // The call at the model died with it (a worker that failed answers JobFailed first; this covers the rest).
        if (_inFlight is not null) Complete(ModelReturnCode.UnknownException, "the model crashed and restarts from its last checkpoint");
        var delay = _backoff.Delay(_failures, _random.NextDouble());
        _failures = Math.Min(_failures + 1, 62);
        _log.Warning("model worker stopped; starting worker {0} in {1} ms", _started + 1, delay.TotalMilliseconds);
        Timers.StartSingleTimer(RestartTimer, StartWorker.Instance, delay);
    }

    private void OnForwardDone(ForwardJobDone done)
    {
        if (_inFlight?.JobId != done.JobId) return;
        var rowSize = done.Seq * done.Dim;
        var offset = 0;
        foreach (var m in _inFlight.Members)
        {
            var f = m.Forward!;
            var length = f.Batch * rowSize;
            if (!m.Answered)
            {
                var data = new float[length];
                Array.Copy(done.Data, offset, data, 0, length);
                Answer(m, new ModelForwardResult(f.RequestId, data, [f.Batch, f.Seq, done.Dim], ModelReturnCode.Success));
            }
            offset += length;
        }
        _failures = 0;
        Finish();
    }

    private void OnBackwardDone(BackwardJobDone done)
    {
        if (_inFlight?.JobId != done.JobId) return;
        foreach (var m in _inFlight.Members)
            if (!m.Answered) Answer(m, new ModelBackwardResult(m.Backward!.RequestId, ModelReturnCode.Success, done.Step));
        _failures = 0;
        Finish();
    }

    private void OnJobFailed(JobFailed failed)
    {
        if (failed.Fatal) _ready = false; // the worker is stopping; Terminated starts the next one
        if (_inFlight?.JobId != failed.JobId) return;
        Complete(failed.Code, failed.Message);
    }

    private void Complete(ModelReturnCode code, string message)
    {
        foreach (var m in _inFlight!.Members) Reply(m, code, message);
        Finish();
    }

    private void Finish()
    {
        _inFlight = null;
        TryDispatch(force: true);
    }

    private void Reply(Pending p, ModelReturnCode code, string message)
    {
        if (p.Forward is { } f) Answer(p, new ModelForwardResult(f.RequestId, [], [], code, message));
        else Answer(p, new ModelBackwardResult(p.Backward!.RequestId, code, 0, message));
    }

    // The one place a request is answered: at most once.
    private void Answer(Pending p, object reply)
    {
        if (p.Answered) return;
        p.Answered = true;
        _bySeq.Remove(p.Seq);
        if (!_stopped) Timers.Cancel(p.Seq);
        p.ReplyTo.Tell(reply);
    }
}

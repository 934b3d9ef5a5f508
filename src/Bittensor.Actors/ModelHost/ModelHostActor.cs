using System.Diagnostics.Metrics;
using Bittensor.Actors.Metrics;
using Akka.Actor;
using Akka.Event;
using Bittensor.Actors.Axon;
using Bittensor.Core.Modeling;
using Bittensor.Core.Resilience;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// The model host: ONE actor that owns the bounded request queue, the batching, the deadlines and the supervision of
/// the model. It hosts either an <see cref="ITextModel"/> (run by a <see cref="ModelWorker"/> child on the dedicated
/// <c>bittensor.model.dispatcher</c>; <see cref="Props(ModelSettings, Func{ITextModel}, TimeProvider?)"/>) or an
/// axon's <see cref="AxonHandlers"/> delegates (run on the thread pool, up to max_workers at once;
/// <see cref="ForHandlers"/>). Send it <see cref="AxonModelCall"/> (the axon), <see cref="ModelForward"/>,
/// <see cref="ModelBackward"/> (local callers of a text model), <see cref="SaveCheckpoint"/>,
/// <see cref="GetModelStats"/>, <see cref="FlushBatches"/>, <see cref="GetQueueStatus"/> and the parameter messages of
/// cluster averaging (<see cref="GetModelParameterCount"/>, <see cref="GetModelParameters"/>,
/// <see cref="UpdateModelParameters"/>: control messages, run on the model's thread between two jobs).
/// </summary>
/// <remarks>
/// <para>Hops of a served call: the axon's gRPC handler (<c>AxonService</c>) Tells this host an
/// <see cref="AxonModelCall"/> with a request id, its caller's stake priority and the call's one deadline; the host
/// Tells its worker (or starts the delegate); the worker Tells the host; the host Tells the axon's reply sink, which
/// completes the gRPC call in place (no actor, no mailbox). AxonService → ModelHostActor → ModelWorker → back: one
/// queue (here), one deadline, no Ask.</para>
/// <para>Queue: waiting requests are ordered by priority (lower first: the axon's stake priority), FIFO among equals,
/// at most max_queue of them (beyond: NucleusFull, answered at once). A text host coalesces forward requests with the
/// same sequence length, head first, into one model call of up to max_batch rows; while the model is busy requests
/// accumulate and go as one batch when it frees; while it is idle the head waits at most max_delay for company.
/// Backward requests run one per call; at most one call is at a text model at a time. A handler host runs each call
/// on its own, at most max_workers at once.</para>
/// <para>Every accepted request gets exactly one reply: its result, or a code — NucleusFull (queue full),
/// NucleusTimeout (its deadline passed, queued or at the model), UnknownException (the model failed on it),
/// NotServingNucleus (the host stopped), InvalidRequest/RequestShapeException/NotImplemented (refused on arrival).</para>
/// <para>Supervision: a text model worker that fails (an exception, NaN outputs or weights) is stopped and a new one
/// is started after a capped exponential backoff (<see cref="BackoffPolicy"/>), restoring the last checkpoint. A
/// handler delegate that throws answers its call UnknownException; the delegates are the caller's code and keep no
/// state the host could restore.</para>
/// </remarks>
public sealed class ModelHostActor : ReceiveActor, IWithTimers
{
    private sealed class Pending(IActorRef replyTo, long requestId, int priority, DateTime deadline, long seq)
    {
        public IActorRef ReplyTo { get; } = replyTo;
        public long RequestId { get; } = requestId;
        public int Priority { get; } = priority;
        public DateTime Deadline { get; } = deadline;
        public long Seq { get; } = seq;

        /// <summary>A text forward (from a local caller, or an axon call turned into tokens).</summary>
        public ModelForward? Forward { get; init; }

        /// <summary>A text backward.</summary>
        public ModelBackward? Backward { get; init; }

        /// <summary>The axon's call as it came, for a handler host.</summary>
        public AxonModelCall? Call { get; init; }

        /// <summary>Answer with <see cref="AxonModelReply"/> (the caller is an axon) rather than ModelForwardResult/ModelBackwardResult.</summary>
        public bool AxonReply { get; init; }

        /// <summary>The host's own warm-up forward (<see cref="WarmModel"/>): answered with <see cref="ModelWarmed"/>.</summary>
        public bool WarmUp { get; init; }

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

    private sealed record HandlerJobDone(long JobId, ModelResponse Response) : INoSerializationVerificationNeeded;

    private const string DelayTimer = "batch-delay";
    private const string RestartTimer = "restart";
    private const int MaxBufferedControl = 64;

    private readonly ModelSettings _settings;
    private readonly Func<ITextModel>? _factory;
    private readonly AxonHandlers? _handlers;
    private readonly ModelLineage? _lineage;
    private readonly BackoffPolicy _backoff;
    private readonly Random _random = new();
    private readonly TimeProvider _time;
    private readonly int _concurrency;
    private readonly int _maxQueue;
    private readonly TimeSpan _requestTimeout;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly SortedSet<Pending> _queue = new(QueueOrder.Instance);
    private readonly Dictionary<long, Pending> _bySeq = [];
    private readonly Dictionary<long, InFlight> _inFlight = [];
    private readonly List<(object Message, IActorRef Sender)> _control = [];
    private IActorRef _worker = ActorRefs.Nobody;
    private bool _ready;
    private int _failures;
    private long _nextSeq;
    private int _started;
    private bool _stopped;
    private bool _workerStarted;
    private int _startFailures;
    private string? _startError;
    private long _nextJobId;
    private KeyValuePair<string, object?> _hostTag;

    /// <summary>A host for the models <paramref name="factory"/> builds (one per worker incarnation, on the model dispatcher).</summary>
    public ModelHostActor(ModelSettings settings, Func<ITextModel> factory, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(factory);
        _settings = settings.Validate();
        _factory = factory;
        _time = time ?? TimeProvider.System;
        _backoff = settings.Backoff;
        _concurrency = 1;
        _maxQueue = settings.MaxQueue;
        _requestTimeout = settings.RequestTimeout;
        var owned = settings.CheckpointPath is null;
        var path = settings.CheckpointPath ?? Path.Combine(Path.GetTempPath(), $"bittensor-model-{Guid.NewGuid():N}.ckpt");
        _lineage = new ModelLineage(path, owned);
        Receives();
    }

    private ModelHostActor(AxonHandlers handlers, int concurrency, int maxQueue, TimeSpan requestTimeout, TimeProvider? time)
    {
        _settings = ModelSettings.Default;
        _handlers = handlers;
        _time = time ?? TimeProvider.System;
        _backoff = _settings.Backoff;
        _concurrency = concurrency;
        _maxQueue = maxQueue;
        _requestTimeout = requestTimeout;
        _ready = true; // the delegates need no start-up
        Receives();
    }

    private void Receives()
    {
        Receive<AxonModelCall>(OnAxonCall);
        Receive<ModelForward>(f =>
        {
            var p = NewPending(Sender, f.RequestId, f.Priority, f.DeadlineUtc, forward: f);
            Accept(p, _handlers is null ? ValidateForward(f) : (ModelReturnCode.InvalidRequest, "this host serves axon calls only"));
        });
        Receive<ModelBackward>(b =>
        {
            var p = NewPending(Sender, b.RequestId, b.Priority, b.DeadlineUtc, backward: b);
            Accept(p, _handlers is null ? ValidateBackward(b) : (ModelReturnCode.InvalidRequest, "this host serves axon calls only"));
        });
        Receive<WarmModel>(_ => OnWarmModel());
        Receive<GetQueueStatus>(_ => Sender.Tell(new QueueStatus(_queue.Count, _inFlight.Values.Sum(j => j.Members.Count(m => !m.Answered)))));
        Receive<FlushBatches>(_ => TryDispatch(force: true));
        Receive<DelayElapsed>(_ => TryDispatch(force: true));
        Receive<DeadlineReached>(OnDeadline);
        Receive<ModelReady>(OnModelReady);
        Receive<ModelStartFailed>(f =>
        {
            if (Sender.Equals(_worker)) _startError = f.Reason;
        });
        Receive<ForwardJobDone>(OnForwardDone);
        Receive<BackwardJobDone>(OnBackwardDone);
        Receive<JobFailed>(OnJobFailed);
        Receive<HandlerJobDone>(OnHandlerDone);
        Receive<Terminated>(t => t.ActorRef.Equals(_worker), OnWorkerStopped);
        Receive<StartWorker>(_ => StartNewWorker());
        // Control messages (SaveCheckpoint, GetModelStats, FailNextForward, the parameter messages) go to the worker in order
        // with jobs: its mailbox runs them between two jobs, on the model's thread.
        ReceiveAny(ToWorker);
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Props of a host with <paramref name="settings"/> serving the models <paramref name="factory"/> builds.</summary>
    public static Props Props(ModelSettings settings, Func<ITextModel> factory, TimeProvider? time = null) =>
        Akka.Actor.Props.Create(() => new ModelHostActor(settings, factory, time));

    /// <summary>
    /// Props of a host serving an axon's <paramref name="handlers"/>: the same queue (stake priority, FIFO among equals,
    /// at most <paramref name="maxQueue"/> waiting, then NucleusFull), at most <paramref name="concurrency"/> delegates
    /// running at once, each with a token cancelled at its call's deadline (default now + <paramref name="requestTimeout"/>).
    /// </summary>
    public static Props ForHandlers(AxonHandlers handlers, int concurrency, int maxQueue, TimeSpan requestTimeout, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(handlers);
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueue);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(requestTimeout, TimeSpan.Zero);
        return FactoryProps.For(() => new ModelHostActor(handlers, concurrency, maxQueue, requestTimeout, time));
    }

    /// <inheritdoc />
    protected override SupervisorStrategy SupervisorStrategy() =>
        // The host restarts the worker itself, after a backoff and from the last checkpoint.
        // Akka's own failure log (a stack trace per crash) is off: the worker tells why in one line and this host logs it.
        new OneForOneStrategy(-1, -1, _ => Directive.Stop, loggingEnabled: false);

    /// <inheritdoc />
    protected override void PreStart()
    {
        _hostTag = new KeyValuePair<string, object?>("host", Self.Path.ToStringWithoutAddress());
        // Read on the exporter's thread: SortedSet.Count is one field read (possibly a moment stale, never torn).
        ModelHostMeters.Watch(this, () => new Measurement<int>(_queue.Count, _hostTag));
        if (_factory is not null) StartNewWorker();
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _ready = false; // nothing is dispatched any more
        _stopped = true;
        ModelHostMeters.Forget(this);
        foreach (var job in _inFlight.Values)
            foreach (var m in job.Members) Reply(m, ModelReturnCode.NotServingNucleus, "the model host stopped");
        _inFlight.Clear();
        foreach (var p in _queue) Reply(p, ModelReturnCode.NotServingNucleus, "the model host stopped");
        _queue.Clear();
        _bySeq.Clear();
        // The default checkpoint is a temp file of this host only.
        if (_lineage is { OwnsFile: true } && File.Exists(_lineage.CheckpointPath)) File.Delete(_lineage.CheckpointPath);
    }

    private void StartNewWorker()
    {
        if (_factory is null) return;
        var props = ModelWorker.Props(_settings, _factory, Self, _lineage!);
        if (Context.System.Dispatchers.HasDispatcher(ModelSettings.DispatcherPath))
            props = props.WithDispatcher(ModelSettings.DispatcherPath);
        _workerStarted = false;
        _startError = null;
        _worker = Context.ActorOf(props, $"worker-{++_started}");
        Context.Watch(_worker);
        foreach (var (message, sender) in _control) _worker.Tell(message, sender);
        _control.Clear();
    }

    private void ToWorker(object message)
    {
        if (_factory is null)
        {
            // Delegates have no parameters of their own to average.
            switch (message)
            {
                case GetModelParameterCount:
                    Sender.Tell(new ModelParameterCount(0));
                    return;
                case GetModelParameters g:
                    Sender.Tell(new ModelParameters(g.Tag, [], 0));
                    return;
                case UpdateModelParameters u:
                    Sender.Tell(new ModelParametersUpdated(u.Tag, false, "this host serves delegates, which have no parameters"));
                    return;
            }
            Unhandled(message);
            return;
        }
        if (!_worker.IsNobody())
        {
            _worker.Forward(message);
            return;
        }
        // Between incarnations: the next worker gets them, in order; beyond a small bound they are dropped.
        if (_control.Count < MaxBufferedControl) _control.Add((message, Sender));
        else _log.Warning("model host dropped {0}: the model is restarting and {1} control messages wait", message.GetType().Name, _control.Count);
    }

    private Pending NewPending(IActorRef replyTo, long requestId, int priority, DateTime? deadlineUtc,
        ModelForward? forward = null, ModelBackward? backward = null, AxonModelCall? call = null, bool axonReply = false) =>
        new(replyTo, requestId, priority, deadlineUtc ?? _time.GetUtcNow().UtcDateTime + _requestTimeout, _nextSeq++)
        {
            Forward = forward, Backward = backward, Call = call, AxonReply = axonReply,
        };

    private void OnAxonCall(AxonModelCall call)
    {
        if (_handlers is not null)
        {
            var p = NewPending(Sender, call.RequestId, call.Priority, call.DeadlineUtc, call: call, axonReply: true);
            Accept(p, call.Backward is not null && _handlers.Backward is null ? (ModelReturnCode.NotImplemented, "this axon serves no backward") : null);
            return;
        }
        // A text model: TEXT token ids [batch, seq] only.
        var inputs = call.Forward?.Inputs ?? call.Backward!.Inputs;
        var modality = call.Forward?.Modality ?? call.Backward!.Modality;
        (ModelReturnCode, string)? refused = null;
        if (modality != Modality.Text) refused = (ModelReturnCode.NotImplemented, $"this model serves TEXT, not {modality}");
        else if (inputs.Longs is null || inputs.Rank != 2 || inputs.Shape[0] > int.MaxValue || inputs.Shape[1] > int.MaxValue)
            refused = (ModelReturnCode.RequestShapeException, "TEXT inputs must be int64 [batch, seq]");
        else if (call.Backward is { } b && (b.Grads.Floats is null || b.Grads.Rank != 3))
            refused = (ModelReturnCode.RequestShapeException, "gradients must be float32 [batch, seq, dim]");
        if (refused is not null)
        {
            Accept(NewPending(Sender, call.RequestId, call.Priority, call.DeadlineUtc, call: call, axonReply: true), refused);
            return;
        }
        var (batch, seq) = ((int)inputs.Shape[0], (int)inputs.Shape[1]);
        if (call.Forward is not null)
        {
            var f = new ModelForward(call.RequestId, inputs.Longs!, batch, seq);
            Accept(NewPending(Sender, call.RequestId, call.Priority, call.DeadlineUtc, forward: f, axonReply: true), ValidateForward(f));
        }
        else
        {
            var b = new ModelBackward(call.RequestId, inputs.Longs!, call.Backward!.Grads.Floats!, batch, seq);
            Accept(NewPending(Sender, call.RequestId, call.Priority, call.DeadlineUtc, backward: b, axonReply: true), ValidateBackward(b));
        }
    }

    // One short row (token ids 0, 1, …) through the same queue, batching and model thread as a caller's forward.
    private void OnWarmModel()
    {
        if (_handlers is not null)
        {
            Sender.Tell(new ModelWarmed(false, ModelReturnCode.Success, "a host of delegates has nothing to warm"));
            return;
        }
        var seq = Math.Min(WarmUpSequence, _settings.MaxSequence);
        var tokens = new long[seq];
        for (var i = 0; i < seq; i++) tokens[i] = i % _settings.VocabSize;
        var f = new ModelForward(-1, tokens, 1, seq);
        var p = new Pending(Sender, f.RequestId, int.MinValue, _time.GetUtcNow().UtcDateTime + _requestTimeout, _nextSeq++) { Forward = f, WarmUp = true };
        Accept(p, ValidateForward(f));
    }

    /// <summary>Tokens in the warm-up row (<see cref="WarmModel"/>), at most max_sequence.</summary>
    internal const int WarmUpSequence = 8;

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

    private void Accept(Pending pending, (ModelReturnCode Code, string Message)? error)
    {
        if (error is { } e)
        {
            Reply(pending, e.Code, e.Message);
            return;
        }
        // Full: max_queue wait already. A call that can start at once needs no queue slot (max_queue may be 0).
        var canStartNow = _queue.Count == 0 && _ready && _inFlight.Count < _concurrency;
        if (_queue.Count >= _maxQueue && !canStartNow)
        {
            ModelHostMeters.Shed.Add(1, _hostTag);
            Reply(pending, ModelReturnCode.NucleusFull, $"{_queue.Count} requests are already waiting for the model");
            return;
        }
        var now = _time.GetUtcNow().UtcDateTime;
        if (pending.Deadline <= now)
        {
            Reply(pending, ModelReturnCode.NucleusTimeout, "the request's deadline had passed when it reached the model host");
            return;
        }
        _queue.Add(pending);
        _bySeq[pending.Seq] = pending;
        TryDispatch(force: false);
        // The deadline timer only for a request still waiting or running (an inline delegate may have answered it).
        if (!pending.Answered) Timers.StartSingleTimer(pending.Seq, new DeadlineReached(pending.Seq), pending.Deadline - now);
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
        if (_handlers is not null)
        {
            DispatchHandlers();
            return;
        }
        if (!_ready || _inFlight.Count > 0 || _queue.Count == 0) return;
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
        long[] tokens;
        if (members.Count == 1)
        {
            tokens = members[0].Forward!.Tokens;
        }
        else
        {
            tokens = new long[rows * seq];
            var offset = 0;
            foreach (var m in members)
            {
                m.Forward!.Tokens.CopyTo(tokens, offset);
                offset += m.Forward.Tokens.Length;
            }
        }
        Send(new ForwardJob(++_nextJobId, tokens, rows, seq), members);
    }

    private void DispatchHandlers()
    {
        while (_ready && _inFlight.Count < _concurrency && _queue.Count > 0)
        {
            var head = _queue.Min!;
            Take(head);
            var (handlers, call, deadline, time) = (_handlers!, head.Call!, head.Deadline, _time);
            // Inline delegates run here and usually complete at once; others go off the host's thread (a delegate may
            // compute before its first await).
            var task = handlers.Inline ? StartHandler(handlers, call, deadline, time) : Task.Run(() => StartHandler(handlers, call, deadline, time));
            if (task.IsCompletedSuccessfully)
            {
                Answer(head, new AxonModelReply(head.RequestId, task.Result));
                continue;
            }
            var jobId = ++_nextJobId;
            _inFlight[jobId] = new InFlight(jobId, [head]);
            task.PipeTo(Self, success: r => new HandlerJobDone(jobId, r),
                failure: ex => new HandlerJobDone(jobId, new ModelResponse(null, ReturnCode.UnknownException, $"model failed: {ex.GetType().Name}")));
        }
    }

    // Calls the delegate; never throws. A delegate that completes at once costs no timer; one that does not gets a
    // token cancelled at the call's deadline.
    internal static Task<ModelResponse> StartHandler(AxonHandlers handlers, AxonModelCall call, DateTime deadline, TimeProvider time)
    {
        var remaining = deadline - time.GetUtcNow().UtcDateTime;
        if (remaining <= TimeSpan.Zero) return Task.FromResult(new ModelResponse(null, ReturnCode.NucleusTimeout, "call reached the model after its deadline"));
        var cts = new CancellationTokenSource();
        Task<ModelResponse> task;
        try
        {
            task = call.Backward is { } backward ? handlers.Backward!(backward, cts.Token) : handlers.Forward(call.Forward!, cts.Token);
        }
        catch (Exception e)
        {
            cts.Dispose();
            return Task.FromResult(Failed(e));
        }
        if (task is null)
        {
            cts.Dispose();
            return Task.FromResult(new ModelResponse(null, ReturnCode.UnknownException, "model answered nothing"));
        }
        if (task.IsCompleted)
        {
            cts.Dispose();
            return Task.FromResult(task.Status == TaskStatus.RanToCompletion
                ? task.Result ?? new ModelResponse(null, ReturnCode.UnknownException, "model answered nothing")
                : Failed(task.Exception?.InnerException ?? new TaskCanceledException()));
        }
        return AwaitHandler(task, cts, remaining, time);
    }

    private static async Task<ModelResponse> AwaitHandler(Task<ModelResponse> task, CancellationTokenSource cts, TimeSpan remaining, TimeProvider time)
    {
        using (cts)
        using (time.CreateTimer(CancelQuietly, cts, remaining, Timeout.InfiniteTimeSpan))
        {
            try
            {
                return await task.ConfigureAwait(false) ?? new ModelResponse(null, ReturnCode.UnknownException, "model answered nothing");
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                return new ModelResponse(null, ReturnCode.NucleusTimeout, "model did not answer before the deadline");
            }
            catch (Exception e)
            {
                return Failed(e);
            }
        }
    }

    // A timer's Dispose does not wait for a callback already under way: the deadline can fire just after the handler
    // answered and the token's source was disposed. An exception here would escape on a thread-pool timer and end the
    // process (seen in a CI run at load ~100), so a disposed source is simply left alone.
    internal static void CancelQuietly(object? state)
    {
        try
        {
            ((CancellationTokenSource)state!).Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static ModelResponse Failed(Exception e) => new(null, ReturnCode.UnknownException, $"model failed: {e.GetType().Name}");

    private void OnHandlerDone(HandlerJobDone done)
    {
        if (!_inFlight.Remove(done.JobId, out var job)) return;
        foreach (var m in job.Members)
            if (!m.Answered) Answer(m, new AxonModelReply(m.RequestId, done.Response));
        TryDispatch(force: true);
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
        _inFlight[jobId] = new InFlight(jobId, members);
        ModelHostMeters.BatchSize.Record(members.Count, _hostTag);
        _worker.Tell(job, Self);
    }

    private void OnModelReady(ModelReady ready)
    {
        if (!Sender.Equals(_worker)) return;
        _ready = true;
        _workerStarted = true;
        _startFailures = 0;
        TryDispatch(force: true);
    }

    private void OnWorkerStopped(Terminated terminated)
    {
        _ready = false;
        _worker = ActorRefs.Nobody;
        if (!_workerStarted)
        {
            // It never became ready: the model cannot start (missing native library, bad checkpoint, out of memory
            // at load). Bounded tries, then give up: PostStop answers every waiting caller NotServingNucleus.
            _startFailures++;
            ModelHostMeters.Restarts.Add(1, _hostTag, new KeyValuePair<string, object?>("reason", "start_failed"));
            var why = _startError ?? "the model worker stopped before it was ready";
            if (_startFailures >= _settings.StartAttempts)
            {
                _log.Error("model cannot start ({0} of {1} tries): {2}; the model host stops", _startFailures, _settings.StartAttempts, why);
                Context.System.EventStream.Publish(new ModelHostGaveUp(Self, _startFailures, why));
                Context.Stop(Self);
                return;
            }
            var wait = _backoff.Delay(_startFailures - 1, _random.NextDouble());
            _log.Warning("model did not start (try {0} of {1}): {2}; trying again in {3} ms", _startFailures, _settings.StartAttempts, why,
                (long)wait.TotalMilliseconds);
            Timers.StartSingleTimer(RestartTimer, StartWorker.Instance, wait);
            return;
        }
        // The call at the model died with it (a worker that failed answers JobFailed first; this covers the rest).
        CompleteAll(ModelReturnCode.UnknownException, "the model crashed and restarts from its last checkpoint");
        ModelHostMeters.Restarts.Add(1, _hostTag, new KeyValuePair<string, object?>("reason", "crash"));
        var delay = _backoff.Delay(_failures, _random.NextDouble());
        _failures = Math.Min(_failures + 1, 62);
        _log.Warning("model worker stopped; starting worker {0} in {1} ms", _started + 1, delay.TotalMilliseconds);
        Timers.StartSingleTimer(RestartTimer, StartWorker.Instance, delay);
    }

    private void OnForwardDone(ForwardJobDone done)
    {
        if (!_inFlight.Remove(done.JobId, out var job)) return;
        var rowSize = done.Seq * done.Dim;
        var offset = 0;
        var alone = job.Members.Count == 1 && done.Data.Length == job.Members[0].Forward!.Batch * rowSize;
        foreach (var m in job.Members)
        {
            var f = m.Forward!;
            var length = f.Batch * rowSize;
            if (!m.Answered)
            {
                // One member (the common case under light load) takes the worker's array as it is: no copy.
                float[] data;
                if (alone)
                {
                    data = done.Data;
                }
                else
                {
                    data = new float[length];
                    Array.Copy(done.Data, offset, data, 0, length);
                }
                Answer(m, m.AxonReply
                    ? new AxonModelReply(m.RequestId, ModelResponse.Ok(DenseTensor.Float32([f.Batch, f.Seq, done.Dim], data)))
                    : new ModelForwardResult(f.RequestId, data, [f.Batch, f.Seq, done.Dim], ModelReturnCode.Success));
            }
            offset += length;
        }
        _failures = 0;
        TryDispatch(force: true);
    }

    private void OnBackwardDone(BackwardJobDone done)
    {
        if (!_inFlight.Remove(done.JobId, out var job)) return;
        foreach (var m in job.Members)
        {
            if (m.Answered) continue;
            var b = m.Backward!;
            // Token ids have no gradient: the axon's caller gets zeros shaped like its inputs, as the 2021 template server did.
            Answer(m, m.AxonReply
                ? new AxonModelReply(m.RequestId, ModelResponse.Ok(DenseTensor.Zeros(b.Batch, b.Seq)))
                : new ModelBackwardResult(b.RequestId, ModelReturnCode.Success, done.Step));
        }
        _failures = 0;
        TryDispatch(force: true);
    }

    private void OnJobFailed(JobFailed failed)
    {
        if (failed.Fatal) _ready = false; // the worker is stopping; Terminated starts the next one
        if (!_inFlight.Remove(failed.JobId, out var job)) return;
        foreach (var m in job.Members) Reply(m, failed.Code, failed.Message);
        TryDispatch(force: true);
    }

    private void CompleteAll(ModelReturnCode code, string message)
    {
        foreach (var job in _inFlight.Values)
            foreach (var m in job.Members) Reply(m, code, message);
        _inFlight.Clear();
    }

    private void Reply(Pending p, ModelReturnCode code, string message)
    {
        if (p.AxonReply) Answer(p, new AxonModelReply(p.RequestId, new ModelResponse(null, (ReturnCode)(int)code, message)));
        else if (p.Forward is { } f) Answer(p, new ModelForwardResult(f.RequestId, [], [], code, message));
        else Answer(p, new ModelBackwardResult(p.Backward!.RequestId, code, 0, message));
    }

    // The one place a request is answered: at most once.
    private void Answer(Pending p, object reply)
    {
        if (p.Answered) return;
        p.Answered = true;
        _bySeq.Remove(p.Seq);
        if (!_stopped) Timers.Cancel(p.Seq);
        if (p.WarmUp && reply is ModelForwardResult r) reply = new ModelWarmed(true, r.Code, r.Message);
        p.ReplyTo.Tell(reply);
    }
}

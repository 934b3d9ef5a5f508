using Akka.Actor;
using Akka.Pattern;
using Bittensor.Core.Modeling;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// Server-side batching in front of the model (hivemind's TaskPool idea). Forward requests wait in a bounded
/// FIFO; requests with the same sequence length are coalesced into one model call of up to max_batch rows. While
/// the model is busy, requests accumulate and go as one batch when it frees; while it is idle, the first request
/// waits at most max_delay for company. Backward requests run one per call, in arrival order. At most one call
/// is at the model at a time, and every request that is accepted gets exactly one reply: its result, or a code
/// when the model crashes (UnknownException), does not answer in time (NucleusTimeout) or stops.
/// The model runs under a BackoffSupervisor child, restarted from its last checkpoint after a crash.
/// </summary>
internal sealed class BatchingActor : ReceiveActor, IWithTimers
{
    private sealed record Pending(IActorRef ReplyTo, ModelForward? Forward, ModelBackward? Backward)
    {
        public int Rows => Forward?.Batch ?? Backward!.Batch;
    }

    private sealed record InFlight(long JobId, int Incarnation, List<Pending> Members);

    private sealed record DelayElapsed
    {
        public static DelayElapsed Instance { get; } = new();
    }

    private sealed record JobTimedOut(long JobId);

    private sealed record NotReadyTimedOut
    {
        public static NotReadyTimedOut Instance { get; } = new();
    }

    private const string DelayTimer = "batch-delay";
    private const string JobTimer = "job-deadline";
    private const string NotReadyTimer = "not-ready-deadline";

    private readonly ModelSettings _settings;
    private readonly ModelLineage _lineage;
    private readonly Func<ITextModel> _factory;
    private readonly LinkedList<Pending> _queue = new();
    private IActorRef _model = ActorRefs.Nobody;
    private InFlight? _inFlight;
    private bool _ready;
    private int _incarnation;
    private long _nextJobId;

    public BatchingActor(ModelSettings settings, Func<ITextModel> factory, ModelLineage lineage)
    {
        _settings = settings;
        _factory = factory;
        _lineage = lineage;
        Receive<ModelForward>(f => Accept(new Pending(Sender, f, null), ValidateForward(f)));
        Receive<ModelBackward>(b => Accept(new Pending(Sender, null, b), ValidateBackward(b)));
        Receive<FlushBatches>(_ => TryDispatch(force: true));
        Receive<DelayElapsed>(_ => TryDispatch(force: true));
        Receive<ModelReady>(OnModelReady);
        Receive<ForwardJobDone>(OnForwardDone);
        Receive<BackwardJobDone>(OnBackwardDone);
        Receive<JobFailed>(OnJobFailed);
        Receive<JobTimedOut>(t =>
        {
            if (_inFlight?.JobId != t.JobId) return;
            Complete(ModelReturnCode.NucleusTimeout, $"the model did not answer within {_settings.RequestTimeout}");
            TryDispatch(force: true);
        });
        Receive<NotReadyTimedOut>(_ =>
        {
            if (_ready) return;
            foreach (var p in _queue) Reply(p, ModelReturnCode.NucleusTimeout, $"the model was not up within {_settings.RequestTimeout}");
            _queue.Clear();
        });
        // Control messages (SaveCheckpoint, GetModelStats, FailNextForward) go to the model in order with jobs.
        ReceiveAny(message => _model.Forward(message));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ModelSettings settings, Func<ITextModel> factory, ModelLineage lineage) =>
        Akka.Actor.Props.Create(() => new BatchingActor(settings, factory, lineage));

    protected override void PreStart()
    {
        var modelProps = ModelActor.Props(_settings, _factory, Self, _lineage);
        if (Context.System.Dispatchers.HasDispatcher(ModelSettings.DispatcherPath))
            modelProps = modelProps.WithDispatcher(ModelSettings.DispatcherPath);
        var options = Backoff.OnFailure(modelProps, "model", _settings.BackoffMin, _settings.BackoffMax, _settings.BackoffRandomFactor, -1)
            .WithSupervisorStrategy(new OneForOneStrategy(_ => Directive.Restart));
        _model = Context.ActorOf(BackoffSupervisor.Props(options), "backoff");
    }

    protected override void PostStop()
    {
        if (_inFlight is not null) Complete(ModelReturnCode.NotServingNucleus, "the model host stopped");
        foreach (var p in _queue) Reply(p, ModelReturnCode.NotServingNucleus, "the model host stopped");
        _queue.Clear();
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

    private void Accept(Pending pending, (ModelReturnCode Code, string Message)? error)
    {
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
        _queue.AddLast(pending);
        // Queued requests must not wait forever for a model that cannot start (e.g. a checkpoint it cannot load).
        if (!_ready && !Timers.IsTimerActive(NotReadyTimer)) Timers.StartSingleTimer(NotReadyTimer, NotReadyTimedOut.Instance, _settings.RequestTimeout);
        TryDispatch(force: false);
    }

    private void TryDispatch(bool force)
    {
        if (!_ready || _inFlight is not null || _queue.First is not { } head) return;
        if (head.Value.Backward is { } backward)
        {
            _queue.RemoveFirst();
            Send(new BackwardJob(++_nextJobId, backward), [head.Value]);
            return;
        }

        var seq = head.Value.Forward!.Seq;
        var members = new List<Pending>();
        var rows = 0;
        var full = false;
        for (var node = _queue.First; node is not null; node = node.Next)
        {
            if (node.Value.Forward is not { } f || f.Seq != seq) continue;
            if (rows + f.Batch > _settings.MaxBatch)
            {
                full = true;
                break;
            }
            members.Add(node.Value);
            rows += f.Batch;
        }
        full |= rows >= _settings.MaxBatch;
        if (!force && !full && _settings.MaxDelay > TimeSpan.Zero)
        {
            if (!Timers.IsTimerActive(DelayTimer)) Timers.StartSingleTimer(DelayTimer, DelayElapsed.Instance, _settings.MaxDelay);
            return;
        }

        foreach (var m in members) _queue.Remove(m);
        var tokens = new long[rows * seq];
        var offset = 0;
        foreach (var m in members)
        {
            m.Forward!.Tokens.CopyTo(tokens, offset);
            offset += m.Forward.Tokens.Length;
        }
        Send(new ForwardJob(++_nextJobId, tokens, rows, seq), members);
    }

    private void Send(object job, List<Pending> members)
    {
        Timers.Cancel(DelayTimer);
        var jobId = job switch
        {
            ForwardJob f => f.JobId,
            BackwardJob b => b.JobId,
            _ => throw new ArgumentException("not a job", nameof(job)),
        };
        _inFlight = new InFlight(jobId, _incarnation, members);
        Timers.StartSingleTimer(JobTimer, new JobTimedOut(jobId), _settings.RequestTimeout);
        _model.Tell(job, Self);
    }

    private void OnModelReady(ModelReady ready)
    {
        // A job sent to an earlier incarnation died with it (its mailbox is dropped on restart).
        if (_inFlight is not null && _inFlight.Incarnation < ready.Incarnation)
            Complete(ModelReturnCode.UnknownException, "the model crashed and restarted from its last checkpoint");
        _ready = true;
        _incarnation = ready.Incarnation;
        Timers.Cancel(NotReadyTimer);
        TryDispatch(force: true);
    }

    private void OnForwardDone(ForwardJobDone done)
    {
        if (_inFlight?.JobId != done.JobId) return;
        var rowSize = done.Seq * done.Dim;
        var offset = 0;
        foreach (var m in _inFlight.Members)
        {
            var f = m.Forward!;
            var data = new float[f.Batch * rowSize];
            Array.Copy(done.Data, offset, data, 0, data.Length);
            offset += data.Length;
            m.ReplyTo.Tell(new ModelForwardResult(f.RequestId, data, [f.Batch, f.Seq, done.Dim], ModelReturnCode.Success));
        }
        Finish();
        TryDispatch(force: true);
    }

    private void OnBackwardDone(BackwardJobDone done)
    {
        if (_inFlight?.JobId != done.JobId) return;
        foreach (var m in _inFlight.Members) m.ReplyTo.Tell(new ModelBackwardResult(m.Backward!.RequestId, ModelReturnCode.Success, done.Step));
        Finish();
        TryDispatch(force: true);
    }

    private void OnJobFailed(JobFailed failed)
    {
        if (failed.Fatal)
        {
            _ready = false;
            Timers.StartSingleTimer(NotReadyTimer, NotReadyTimedOut.Instance, _settings.RequestTimeout);
        }
        if (_inFlight?.JobId != failed.JobId) return;
        Complete(failed.Code, failed.Message);
        TryDispatch(force: true);
    }

    private void Complete(ModelReturnCode code, string message)
    {
        foreach (var m in _inFlight!.Members) Reply(m, code, message);
        Finish();
    }

    private void Finish()
    {
        _inFlight = null;
        Timers.Cancel(JobTimer);
    }

    private static void Reply(Pending p, ModelReturnCode code, string message)
    {
        if (p.Forward is { } f) p.ReplyTo.Tell(new ModelForwardResult(f.RequestId, [], [], code, message));
        else p.ReplyTo.Tell(new ModelBackwardResult(p.Backward!.RequestId, code, 0, message));
    }
}

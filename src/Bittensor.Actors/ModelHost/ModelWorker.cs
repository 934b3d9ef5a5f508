using Akka.Actor;
using Akka.Event;
using Bittensor.Core.Modeling;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// Hosts one <see cref="ITextModel"/> on a dedicated thread (dispatcher <c>bittensor.model.dispatcher</c>): the model
/// is built by the factory in PreStart, on that thread. Every job runs synchronously in one handler and the model
/// copies results out to arrays before the reply. Any exception (a NaN in outputs or weights included) answers
/// the job <see cref="ModelReturnCode.UnknownException"/> and then crashes the actor; its parent, the
/// <see cref="ModelHostActor"/>, stops it and starts a new worker after a backoff, from the last checkpoint.
/// </summary>
internal sealed class ModelWorker : ReceiveActor, IWithTimers
{
    private sealed record CheckpointTick
    {
        public static CheckpointTick Instance { get; } = new();
    }

    private readonly ModelSettings _settings;
    private readonly Func<ITextModel> _factory;
    private readonly IActorRef _host;
    private readonly ModelLineage _lineage;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private ITextModel? _model;
    private int _incarnation;
    private long _steps;
    private long _savedStep = -1;
    private long _restoredStep;
    private long _forwardCalls;
    private long _forwardRows;
    private int _largestBatch;
    private bool _failNextForward;

    public ModelWorker(ModelSettings settings, Func<ITextModel> factory, IActorRef host, ModelLineage lineage)
    {
        _settings = settings;
        _factory = factory;
        _host = host;
        _lineage = lineage;
        Receive<ForwardJob>(Forward);
        Receive<BackwardJob>(Backward);
        Receive<SaveCheckpoint>(_ =>
        {
            Save();
            Sender.Tell(new CheckpointSaved(_steps));
        });
        Receive<CheckpointTick>(_ =>
        {
            if (_steps != _savedStep) Save();
        });
        Receive<GetModelStats>(_ => Sender.Tell(new ModelStats(_incarnation, _forwardCalls, _forwardRows, _largestBatch, _steps, _restoredStep, Context.Props.Dispatcher)));
        Receive<FailNextForward>(_ => _failNextForward = true);
        Receive<GetModelParameterCount>(_ => Sender.Tell(new ModelParameterCount(_model is IFlatParameters p ? p.ParameterCount : 0)));
        Receive<GetModelParameters>(g => Sender.Tell(new ModelParameters(g.Tag, _model is IFlatParameters p ? p.GetParameters() : [], _steps)));
        Receive<UpdateModelParameters>(UpdateParameters);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ModelSettings settings, Func<ITextModel> factory, IActorRef host, ModelLineage lineage) =>
        Akka.Actor.Props.Create(() => new ModelWorker(settings, factory, host, lineage));

    protected override void PreStart()
    {
        try
        {
            Start();
        }
        catch (Exception e)
        {
            // One line for the host (it decides whether to try again); the stack trace only at debug level.
            _log.Debug("model start failed: {0}", e);
            _host.Tell(new ModelStartFailed(OneLine(e)));
            throw;
        }
    }

    private static string OneLine(Exception e)
    {
        var inner = e is TypeInitializationException { InnerException: { } i } ? i : e;
        var text = $"{inner.GetType().Name}: {inner.Message}".ReplaceLineEndings(" ");
        return text.Length <= 300 ? text : text[..300] + "…";
    }

    private void Start()
    {
        _model = _factory();
        var (has, step) = _lineage.Checkpoint;
        if (has)
        {
            _model.Load(_lineage.CheckpointPath);
            _restoredStep = _steps = _savedStep = step;
        }
        _incarnation = _lineage.NextIncarnation();
        // Without a checkpoint a crash would have nothing to restore; the seed makes this the same weights anyway.
        if (!has) Save();
        if (_settings.CheckpointInterval > TimeSpan.Zero)
            Timers.StartPeriodicTimer("checkpoint", CheckpointTick.Instance, _settings.CheckpointInterval);
        _log.Info("Model incarnation {0} ready on {1} (step {2})", _incarnation, _settings.Device, _steps);
        _host.Tell(new ModelReady(_incarnation, _restoredStep));
    }

    protected override void PostStop() => _model?.Dispose();

    private void Forward(ForwardJob job)
    {
        try
        {
            if (_failNextForward)
            {
                _failNextForward = false;
                throw new InjectedFaultException();
            }
            var data = _model!.Forward(job.Tokens, job.Rows, job.Seq);
            _forwardCalls++;
            _forwardRows += job.Rows;
            _largestBatch = Math.Max(_largestBatch, job.Rows);
            Sender.Tell(new ForwardJobDone(job.JobId, data, job.Rows, job.Seq, _settings.NetworkDim));
        }
        catch (Exception e)
        {
            Sender.Tell(new JobFailed(job.JobId, ModelReturnCode.UnknownException, $"model forward failed: {e.Message}", Fatal: true));
            throw;
        }
    }

    private void Backward(BackwardJob job)
    {
        var r = job.Request;
        try
        {
            _model!.Backward(r.Tokens, r.Grads, r.Batch, r.Seq);
            _steps++;
            if (_settings.CheckpointEverySteps > 0 && _steps % _settings.CheckpointEverySteps == 0) Save();
            Sender.Tell(new BackwardJobDone(job.JobId, _steps));
        }
        catch (Exception e)
        {
            Sender.Tell(new JobFailed(job.JobId, ModelReturnCode.UnknownException, $"model backward failed: {e.Message}", Fatal: true));
            throw;
        }
    }

    // θ ← θ + (average − sent), or θ ← average; on this thread, so no step runs meanwhile. Bad input (wrong size, NaN)
    // is refused with a message and changes nothing; a failure inside the model crashes this worker (restart from the
    // last checkpoint), as for a failed step.
    private void UpdateParameters(UpdateModelParameters u)
    {
        if (_model is not IFlatParameters p)
        {
            Sender.Tell(new ModelParametersUpdated(u.Tag, false, "the model exposes no parameters"));
            return;
        }
        var count = p.ParameterCount;
        if (u.Average.Length != count || (u.Sent is { } s && s.Length != count))
        {
            Sender.Tell(new ModelParametersUpdated(u.Tag, false, $"{u.Average.Length} averaged values for a model of {count} parameters"));
            return;
        }
        foreach (var v in u.Average)
        {
            if (float.IsFinite(v)) continue;
            Sender.Tell(new ModelParametersUpdated(u.Tag, false, "the averaged values contain NaN or Inf"));
            return;
        }
        try
        {
            if (u.Sent is not { } sent) p.SetParameters(u.Average);
            else
            {
                var values = p.GetParameters();
                var average = u.Average;
                for (var i = 0; i < values.Length; i++) values[i] = values[i] == sent[i] ? average[i] : values[i] + (average[i] - sent[i]);
                foreach (var v in values)
                    if (!float.IsFinite(v)) throw new ModelDivergedException("parameters contain NaN or Inf after applying the average");
                p.SetParameters(values);
            }
        }
        catch (Exception e)
        {
            Sender.Tell(new ModelParametersUpdated(u.Tag, false, $"the model failed to take the average: {e.Message}"));
            throw;
        }
        // The next checkpoint (timer or step) holds the averaged weights, so a restart does not bring back the old ones.
        _savedStep = -1;
        Sender.Tell(new ModelParametersUpdated(u.Tag, true, ""));
    }

    private void Save()
    {
        _model!.Save(_lineage.CheckpointPath);
        _savedStep = _steps;
        _lineage.Saved(_steps);
    }
}

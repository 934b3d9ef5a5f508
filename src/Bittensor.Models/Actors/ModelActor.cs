using Akka.Actor;
using Akka.Event;
using Bittensor.Models.Nucleus;
using TorchSharp;
using static TorchSharp.torch;

namespace Bittensor.Models.Actors;

/// <summary>
/// Hosts one <see cref="ServerModel"/> on a dedicated thread (dispatcher <c>bittensor.model.dispatcher</c>).
/// Every job runs synchronously in one handler (TorchSharp's inference mode and dispose scopes are per thread),
/// and results are copied out to arrays before the reply. Any exception or a NaN in outputs or weights answers
/// the job <see cref="ModelReturnCode.UnknownException"/> and then crashes the actor, so its BackoffSupervisor
/// restarts it from the last checkpoint.
/// </summary>
internal sealed class ModelActor : ReceiveActor, IWithTimers
{
    private sealed record CheckpointTick
    {
        public static CheckpointTick Instance { get; } = new();
    }

    private readonly ModelSettings _settings;
    private readonly IActorRef _batcher;
    private readonly ModelLineage _lineage;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private ServerModel? _model;
    private optim.Optimizer? _optimizer;
    private Device _device = CPU;
    private int _incarnation;
    private long _steps;
    private long _savedStep = -1;
    private long _restoredStep;
    private long _forwardCalls;
    private long _forwardRows;
    private int _largestBatch;
    private bool _failNextForward;

    public ModelActor(ModelSettings settings, IActorRef batcher, ModelLineage lineage)
    {
        _settings = settings;
        _batcher = batcher;
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
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(ModelSettings settings, IActorRef batcher, ModelLineage lineage)
    {
        var props = Akka.Actor.Props.Create(() => new ModelActor(settings, batcher, lineage));
        return props;
    }

    protected override void PreStart()
    {
        if (_settings.Threads > 0) torch.set_num_threads(_settings.Threads);
        _device = torch.device(_settings.Device);
        _model = new ServerModel(_settings);
        _model.to(_device);
        var (has, step) = _lineage.Checkpoint;
        if (has)
        {
            _model.LoadFrom(_lineage.CheckpointPath);
            _restoredStep = _steps = _savedStep = step;
        }
        _optimizer = _settings.Optimizer == ModelOptimizer.Adam
            ? optim.Adam(_model.parameters(), _settings.LearningRate)
            : optim.SGD(_model.parameters(), _settings.LearningRate);
        _incarnation = _lineage.NextIncarnation();
        // Without a checkpoint a crash would have nothing to restore; the seed makes this the same weights anyway.
        if (!has) Save();
        if (_settings.CheckpointInterval > TimeSpan.Zero)
            Timers.StartPeriodicTimer("checkpoint", CheckpointTick.Instance, _settings.CheckpointInterval);
        _log.Info("Model incarnation {0} ready on {1} (step {2})", _incarnation, _settings.Device, _steps);
        _batcher.Tell(new ModelReady(_incarnation, _restoredStep));
    }

    protected override void PostStop()
    {
        _optimizer?.Dispose();
        _model?.Dispose();
    }

    private void Forward(ForwardJob job)
    {
        try
        {
            if (_failNextForward)
            {
                _failNextForward = false;
                throw new InjectedFaultException();
            }
            float[] data;
            using (torch.inference_mode())
            using (var scope = NewDisposeScope())
            {
                _model!.eval();
                var input = torch.tensor(job.Tokens, [job.Rows, job.Seq], device: _device);
                var output = _model.forward(input);
                if (!torch.isfinite(output).all().item<bool>()) throw new ModelDivergedException("model outputs contain NaN or Inf");
                data = output.cpu().data<float>().ToArray();
            }
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
            using (torch.enable_grad())
            using (var scope = NewDisposeScope())
            {
                _model!.train();
                _optimizer!.zero_grad();
                var input = torch.tensor(r.Tokens, [r.Batch, r.Seq], device: _device);
                var output = _model.forward(input);
                if (!torch.isfinite(output).all().item<bool>()) throw new ModelDivergedException("model outputs contain NaN or Inf");
                var grads = torch.tensor(r.Grads, [r.Batch, r.Seq, _settings.NetworkDim], device: _device);
                output.backward([grads]);
                _optimizer.step();
                _optimizer.zero_grad();
                foreach (var p in _model.parameters())
                    if (!torch.isfinite(p).all().item<bool>()) throw new ModelDivergedException("model weights contain NaN or Inf after a step");
            }
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

    private void Save()
    {
        _model!.SaveAtomically(_lineage.CheckpointPath);
        _savedStep = _steps;
        _lineage.Saved(_steps);
    }
}

using Akka.Actor;
using Bittensor.Actors.ModelHost;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Pipelines;

/// <summary>
/// Owns the validator's <see cref="ValidatorNucleus"/> and trains it on the model dispatcher
/// (<c>bittensor.model.dispatcher</c>, a pinned thread), so TorchSharp work never runs on an Akka.Streams or
/// default-dispatcher thread and the nucleus's per-thread TorchSharp state stays on one thread. The pipeline's step
/// stage sends <see cref="Train"/> and awaits the <see cref="NucleusStep"/> (or a <see cref="Status.Failure"/>).
/// </summary>
internal sealed class NucleusActor : ReceiveActor
{
    /// <summary>One training step (see <see cref="ValidatorNucleus.Train"/>).</summary>
    public sealed record Train(long[] Tokens, int Batch, int Seq, IReadOnlyList<ushort> Uids, IReadOnlyList<float[]> Representations,
        IReadOnlyList<string?>? Refused = null);

    /// <summary>Asks which dispatcher the nucleus runs on and whether its last step ran on a thread-pool thread (tests, diagnostics).</summary>
    public sealed record GetPlacement
    {
        public static GetPlacement Instance { get; } = new();
    }

    /// <summary>Answer to <see cref="GetPlacement"/>.</summary>
    public sealed record Placement(string Dispatcher, bool? LastStepOnThreadPool, long Steps);

    private readonly NucleusSettings _settings;
    private ValidatorNucleus? _nucleus;
    private bool? _lastStepOnThreadPool;

    public NucleusActor(NucleusSettings settings)
    {
        _settings = settings;
        Receive<Train>(t =>
        {
            try
            {
                // Built lazily, on this actor's thread, like every step after it.
                _nucleus ??= new ValidatorNucleus(_settings);
                var step = _nucleus.Train(t.Tokens, t.Batch, t.Seq, t.Uids, t.Representations, t.Refused);
                _lastStepOnThreadPool = Thread.CurrentThread.IsThreadPoolThread;
                Sender.Tell(step);
            }
            catch (Exception e)
            {
                Sender.Tell(new Status.Failure(e));
            }
        });
        Receive<GetPlacement>(_ => Sender.Tell(new Placement(Context.Props.Dispatcher, _lastStepOnThreadPool, _nucleus?.Steps ?? 0)));
    }

    /// <summary>Props on the model dispatcher when the system defines it (the reference config does).</summary>
    public static Props Props(ActorSystem system, NucleusSettings settings)
    {
        var props = Akka.Actor.Props.Create(() => new NucleusActor(settings));
        return system.Dispatchers.HasDispatcher(ModelSettings.DispatcherPath) ? props.WithDispatcher(ModelSettings.DispatcherPath) : props;
    }

    protected override void PostStop() => _nucleus?.Dispose();
}

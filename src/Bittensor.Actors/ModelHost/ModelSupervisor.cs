using Akka.Actor;
using Bittensor.Core.Modeling;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// The entry point of a hosted model: send it <see cref="ModelForward"/>, <see cref="ModelBackward"/>,
/// <see cref="SaveCheckpoint"/>, <see cref="GetModelStats"/> and <see cref="FlushBatches"/>. Behind it a
/// batching actor coalesces concurrent forward calls and a BackoffSupervisor restarts the model actor (on the
/// dedicated <c>bittensor.model.dispatcher</c>) from its last checkpoint after a crash. Every accepted request
/// gets exactly one reply with a <see cref="ModelReturnCode"/>.
/// </summary>
public sealed class ModelSupervisor : ReceiveActor
{
    private readonly ModelLineage _lineage;
    private readonly IActorRef _batcher;

    /// <summary>Creates the batching actor and, under it, the supervised model actor built by <paramref name="factory"/>.</summary>
    public ModelSupervisor(ModelSettings settings, Func<ITextModel> factory)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(factory);
        settings.Validate();
        var owned = settings.CheckpointPath is null;
        var path = settings.CheckpointPath ?? Path.Combine(Path.GetTempPath(), $"bittensor-model-{Guid.NewGuid():N}.ckpt");
        _lineage = new ModelLineage(path, owned);
        _batcher = Context.ActorOf(BatchingActor.Props(settings, factory, _lineage), "batcher");
        ReceiveAny(message => _batcher.Forward(message));
    }

    /// <summary>Props for a model host with <paramref name="settings"/> serving the models <paramref name="factory"/> builds (one per incarnation, on the model dispatcher).</summary>
    public static Props Props(ModelSettings settings, Func<ITextModel> factory) => Akka.Actor.Props.Create(() => new ModelSupervisor(settings, factory));

    /// <inheritdoc />
    protected override void PostStop()
    {
        // The default checkpoint is a temp file of this host only.
        if (_lineage.OwnsFile && File.Exists(_lineage.CheckpointPath)) File.Delete(_lineage.CheckpointPath);
    }
}

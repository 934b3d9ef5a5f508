using Akka.Actor;
using Bittensor.Actors.ModelHost;
using Bittensor.Models.Nucleus;

namespace Bittensor.Neurons.Roles;

/// <summary>
/// Plugs the TorchSharp <see cref="ServerTextModel"/> (Bittensor.Models) into the runtime's model host
/// (Bittensor.Actors.ModelHost), which knows models only as <c>ITextModel</c>. This project references both.
/// </summary>
public static class ServerModelHost
{
    /// <summary>The architecture keys of <c>bittensor.model</c> as the model's options.</summary>
    public static ServerModelOptions ToServerModelOptions(this ModelSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new ServerModelOptions
        {
            VocabSize = settings.VocabSize,
            DModel = settings.DModel,
            Layers = settings.Layers,
            Heads = settings.Heads,
            FeedForward = settings.FeedForward,
            MaxSequence = settings.MaxSequence,
            NetworkDim = settings.NetworkDim,
            Dropout = settings.Dropout,
            Device = settings.Device,
            Threads = settings.Threads,
            Seed = settings.Seed,
            Optimizer = settings.Optimizer,
            LearningRate = settings.LearningRate,
        };
    }

    /// <summary>Props of a model host serving a <see cref="ServerTextModel"/> built from <paramref name="settings"/> (one per incarnation).</summary>
    public static Props Props(ModelSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var options = settings.ToServerModelOptions().Validate();
        return ModelSupervisor.Props(settings, () => new ServerTextModel(options));
    }
}

using Akka;
using Akka.Actor;
using Akka.Streams;
using Bittensor.Neurons.Pipelines;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Roles;

/// <summary>
/// The 2021 template miner: serves its model like a <see cref="ServerNeuron"/> and at the same time queries its peers
/// through the <see cref="ValidationPipeline"/>, distilling the joined remote context into its own model: after each
/// batch its model takes one optimizer step on the mean squared error between its representation and the joined one
/// (the gradient 2·(local − remote)/n goes through the model actor's backward). It sets no weights. One
/// <see cref="NeuronActor"/> (<c>/user/bittensor/miner-&lt;hotkey&gt;</c>) parents its <c>model</c>, <c>axon</c>, <c>metagraph</c>
/// (one, feeding both the axon's stakes and the pipeline's peers; the server options' metagraph settings),
/// <c>dendrite</c> and <c>nucleus</c>, all critical.
/// </summary>
public sealed class MinerNeuron : IAsyncDisposable
{
    private readonly UniqueKillSwitch _kill;
    private double _lastDistillLoss = double.NaN;
    private readonly List<double> _distillLosses = [];

    private MinerNeuron(ServerNeuron server, ValidationPipeline pipeline, UniqueKillSwitch kill, Task<Done> completion)
    {
        Server = server;
        Pipeline = pipeline;
        _kill = kill;
        Completion = completion;
    }

    /// <summary>The neuron's parent actor (<see cref="NeuronActor"/>), shared with <see cref="Server"/>.</summary>
    public IActorRef Neuron => Server.Neuron;

    /// <summary>The serving side.</summary>
    public ServerNeuron Server { get; }

    /// <summary>The querying side.</summary>
    public ValidationPipeline Pipeline { get; }

    /// <summary>Completes when the pipeline stops.</summary>
    public Task<Done> Completion { get; }

    /// <summary>Latest distillation loss (MSE between the local and the joined remote representation).</summary>
    public double LastDistillLoss => Volatile.Read(ref _lastDistillLoss);

    /// <summary>Every distillation loss so far, oldest first (a copy).</summary>
    public IReadOnlyList<double> DistillLosses
    {
        get
        {
            lock (_distillLosses) return [.. _distillLosses];
        }
    }

    /// <summary>Starts serving (registering when needed) and the distillation loop.</summary>
    public static async Task<MinerNeuron> StartAsync(ActorSystem system, IActorRef chain, ushort netuid, NeuronKeys keys, ServerOptions server,
        ValidatorOptions query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        if (server.Handlers is not null) throw new ArgumentException("a miner distils into its own model; custom handlers cannot be trained", nameof(server));
        var neuron = await NeuronActors.CreateAsync(system, "miner", keys.HotkeySs58, cancellationToken);
        try
        {
            return await StartInAsync(system, neuron, chain, netuid, keys, server, query, cancellationToken);
        }
        catch
        {
            await NeuronActors.StopAsync(neuron, TimeSpan.FromSeconds(10));
            throw;
        }
    }

    private static async Task<MinerNeuron> StartInAsync(ActorSystem system, IActorRef neuron, IActorRef chain, ushort netuid, NeuronKeys keys,
        ServerOptions server, ValidatorOptions query, CancellationToken cancellationToken)
    {
        var serving = await ServerNeuron.StartAsync(system, chain, netuid, keys, server, "miner", neuron, cancellationToken);
        var model = new ModelHostEndpoint(system, serving.Model!);
        MinerNeuron? miner = null;
        async Task Distill(long[] tokens, int batch, int seq, float[] joined, CancellationToken ct)
        {
            var local = await model.ForwardAsync(tokens, batch, seq, new ModelCall(0, DateTime.UtcNow + server.ModelTimeout), ct);
            if (local.Code != ModelReturnCode.Success || local.Data.Length != joined.Length) return;
            var grads = new float[joined.Length];
            double mse = 0;
            for (var i = 0; i < grads.Length; i++)
            {
                var d = local.Data[i] - joined[i];
                mse += d * d;
                grads[i] = 2f * d / grads.Length;
            }
            await model.BackwardAsync(tokens, grads, batch, seq, new ModelCall(0, DateTime.UtcNow + server.ModelTimeout), ct);
            if (miner is not null)
            {
                Volatile.Write(ref miner._lastDistillLoss, mse / grads.Length);
                lock (miner._distillLosses) miner._distillLosses.Add(mse / grads.Length);
            }
        }
        var (pipeline, _, kill, completion) = await ValidatorNeuron.StartPipelineAsync(system, neuron, chain, netuid, keys, query, "miner", Distill, cancellationToken,
            metagraph: serving.Metagraph);
        miner = new MinerNeuron(serving, pipeline, kill, completion);
        return miner;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _kill.Shutdown();
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }
        await Server.DisposeAsync(); // stops the whole neuron: model, axon, metagraph, dendrite
        Pipeline.Dispose();
    }
}

using Akka;
using Akka.Actor;
using Akka.Streams;
using Bittensor.Models.Actors;
using Bittensor.Neurons.Pipelines;

namespace Bittensor.Neurons.Roles;

/// <summary>
/// The 2021 template miner: serves its model like a <see cref="ServerNeuron"/> and at the same time queries its peers
/// through the <see cref="ValidationPipeline"/>, distilling the joined remote context into its own model: after each
/// batch its model takes one optimizer step on the mean squared error between its representation and the joined one
/// (the gradient 2·(local − remote)/n goes through the model actor's backward). It sets no weights.
/// </summary>
public sealed class MinerNeuron : IAsyncDisposable
{
    private readonly UniqueKillSwitch _kill;
    private readonly ActorSystem _system;
    private readonly IActorRef _metagraph;
    private double _lastDistillLoss = double.NaN;

    private MinerNeuron(ActorSystem system, ServerNeuron server, ValidationPipeline pipeline, IActorRef metagraph, UniqueKillSwitch kill, Task<Done> completion)
    {
        _system = system;
        Server = server;
        Pipeline = pipeline;
        _metagraph = metagraph;
        _kill = kill;
        Completion = completion;
    }

    /// <summary>The serving side.</summary>
    public ServerNeuron Server { get; }

    /// <summary>The querying side.</summary>
    public ValidationPipeline Pipeline { get; }

    /// <summary>Completes when the pipeline stops.</summary>
    public Task<Done> Completion { get; }

    /// <summary>Latest distillation loss (MSE between the local and the joined remote representation).</summary>
    public double LastDistillLoss => Volatile.Read(ref _lastDistillLoss);

    /// <summary>Starts serving (registering when needed) and the distillation loop.</summary>
    public static async Task<MinerNeuron> StartAsync(ActorSystem system, IActorRef chain, ushort netuid, NeuronKeys keys, ServerOptions server,
        ValidatorOptions query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        if (server.Handlers is not null) throw new ArgumentException("a miner distils into its own model; custom handlers cannot be trained", nameof(server));
        var serving = await ServerNeuron.StartAsync(system, chain, netuid, keys, server, "miner", cancellationToken);
        var model = new ModelSupervisorEndpoint(serving.Model!, server.ModelTimeout);
        MinerNeuron? miner = null;
        async Task Distill(long[] tokens, int batch, int seq, float[] joined, CancellationToken ct)
        {
            var local = await model.ForwardAsync(tokens, batch, seq, ct);
            if (local.Code != ModelReturnCode.Success || local.Data.Length != joined.Length) return;
            var grads = new float[joined.Length];
            double mse = 0;
            for (var i = 0; i < grads.Length; i++)
            {
                var d = local.Data[i] - joined[i];
                mse += d * d;
                grads[i] = 2f * d / grads.Length;
            }
            await model.BackwardAsync(tokens, grads, batch, seq, ct);
            if (miner is not null) Volatile.Write(ref miner._lastDistillLoss, mse / grads.Length);
        }
        var (pipeline, metagraph, kill, completion) = await ValidatorNeuron.StartPipelineAsync(system, chain, netuid, keys, query, "miner", Distill, cancellationToken);
        miner = new MinerNeuron(system, serving, pipeline, metagraph, kill, completion);
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
        _system.Stop(_metagraph);
        Pipeline.Dispose();
        await Server.DisposeAsync();
    }
}

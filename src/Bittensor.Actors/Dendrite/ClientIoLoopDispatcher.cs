using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Bittensor.Protocol;

namespace Bittensor.Actors.Dendrite;

/// <summary>
/// The executor of the dendrite's loop dispatcher (<c>bittensor.dendrite.dispatcher = loop</c>, HOCON
/// <c>bittensor.dendrite.loop-dispatcher</c>): every mailbox run of an actor on that dispatcher is posted to the lean
/// client's I/O loop (<see cref="ClientIoLoopWork.Post"/>) and runs on its thread, the thread that reads the answers of the
/// connections on it (<c>bittensor.dendrite.io = loop | batch</c>). So a fan-out round's endpoint actors handle their
/// calls and write the requests, and the dendrite actor takes the round's outcomes, without waking a thread-pool worker:
/// the read thread does it between reads (issue 11, session 24). Akka's own rules hold as on any dispatcher (one
/// mailbox run at a time per actor, <c>throughput</c> messages per run); the loop runs at most
/// 64 runs before it looks at its sockets again.
/// </summary>
public sealed class ClientIoLoopExecutorConfigurator(Config config, IDispatcherPrerequisites prerequisites) : ExecutorServiceConfigurator(config, prerequisites)
{
    /// <inheritdoc />
    public override ExecutorService Produce(string id) => new ClientIoLoopExecutor(id);

    private sealed class ClientIoLoopExecutor(string id) : ExecutorService(id)
    {
        private static readonly Action<object?> RunOne = static r => ((IRunnable)r!).Run();

        public override void Execute(IRunnable run) => ClientIoLoopWork.Post(RunOne, run);

        public override void Shutdown()
        {
            // The loop is the process's (every lean connection on it); an actor system's end leaves it running.
        }
    }
}

/// <summary>Which dispatcher the dendrite's actors run on (<c>bittensor.dendrite.dispatcher</c>).</summary>
internal static class DendriteDispatcher
{
    /// <summary>HOCON path of the loop dispatcher (hocon/bittensor.conf).</summary>
    public const string LoopId = "bittensor.dendrite.loop-dispatcher";

    /// <summary>
    /// True when <paramref name="settings"/> put the dendrite's actors on the I/O loop's thread: <c>dispatcher = loop</c>
    /// and the lean connections on that loop (<c>io = loop | batch</c>, where the loop runs: Linux x86-64), with the lean
    /// transport (<paramref name="transport"/>: the one given in code, if any). Anything else: Akka's default dispatcher.
    /// </summary>
    public static bool OnLoop(DendriteSettings settings, Bittensor.Protocol.IClientTransport? transport = null) =>
        settings.Dispatcher == "loop" && settings.Io is "loop" or "batch" && ClientIoLoopWork.Supported
        && (transport ?? settings.ClientTransport) is Bittensor.Protocol.LeanClientTransport;

    /// <summary>
    /// Runs a signing ahead (<see cref="SharedRequestSignatures"/>) on the loop's thread: the round's last endpoint actor
    /// starts it there once the round's requests are out, and the signature (~20 µs of sr25519, or an actor signer's Ask,
    /// which does not block) is made while the answers are awaited, without waking a pool worker for it.
    /// </summary>
    public static readonly Action<Func<Task>> SignAheadOnLoop = static work => ClientIoLoopWork.Post(static w => _ = ((Func<Task>)w!)(), work);

    /// <summary><paramref name="props"/> on the loop dispatcher when <see cref="OnLoop"/>.</summary>
    public static Props Apply(Props props, DendriteSettings settings, Bittensor.Protocol.IClientTransport? transport = null) =>
        OnLoop(settings, transport) ? props.WithDispatcher(LoopId) : props;

    /// <summary>
    /// Registers the loop dispatcher with <paramref name="system"/> when its configuration lacks it (a system made without
    /// the reference configuration), so that props <see cref="Apply"/> put on it can be created there.
    /// </summary>
    public static void Ensure(ActorSystem system)
    {
        if (system.Dispatchers.HasDispatcher(LoopId)) return;
        var config = ConfigurationFactory.ParseString($"id = \"{LoopId}\"")
            .WithFallback(BittensorRuntime.ReferenceConfig.GetConfig(LoopId))
            .WithFallback(system.Dispatchers.DefaultDispatcherConfig);
        system.Dispatchers.RegisterConfigurator(LoopId, new DispatcherConfigurator(config, system.Dispatchers.Prerequisites));
    }
}

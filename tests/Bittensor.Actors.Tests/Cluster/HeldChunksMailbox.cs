using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;
using Bittensor.Actors.Cluster;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// A test hook for a worker node: the mailbox of its worker actor (chosen by deployment configuration, <see cref="Config"/>)
/// holds every chunk of averaged parameters after the first one (offset above 0) until the test opens its gate; every
/// other message passes as usual. A held chunk is not taken, so it is not acknowledged, so the front's pacing sends
/// nothing more: the transfer stops half-way, as if its next chunk were still on the wire (it travels on the data
/// connection, the front's control messages over Akka.Remote, so they can overtake it). Opened, the held chunks join the
/// end of the queue, in order, as if they arrived then: after every message that arrived before (the chunks before them
/// included, which the actor may not have taken yet on a busy machine), before every message that comes after (the one
/// that wakes the actor).
/// </summary>
public sealed class HeldChunksMailbox(Settings settings, Config config) : MailboxType(settings, config)
{
    private static readonly ConcurrentDictionary<string, ChunkGate> Gates = new();

    /// <summary>The configuration that gives a worker node's worker actor this mailbox behind <paramref name="gate"/>.</summary>
    public static Config For(ChunkGate gate)
    {
        Gates[gate.Id] = gate;
        return ConfigurationFactory.ParseString($$"""
            akka.actor.deployment { "/{{ClusterSettings.WorkerName}}" { mailbox = held-chunks-mailbox } }
            held-chunks-mailbox {
              mailbox-type = "{{typeof(HeldChunksMailbox).FullName}}, {{typeof(HeldChunksMailbox).Assembly.GetName().Name}}"
              gate = "{{gate.Id}}"
            }
            """);
    }

    internal static void Forget(ChunkGate gate) => Gates.TryRemove(gate.Id, out _);

    /// <inheritdoc />
    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new Queue(Gates[Config.GetString("gate")]);

    internal sealed class Queue : IMessageQueue, IUnboundedMessageQueueSemantics
    {
        private readonly ConcurrentQueue<Envelope> _queue = new();
        private readonly ChunkGate _gate;

        internal Queue(ChunkGate gate)
        {
            _gate = gate;
            gate.Attach(_queue);
        }

        public bool HasMessages => !_queue.IsEmpty;

        public int Count => _queue.Count;

        public void Enqueue(IActorRef receiver, Envelope envelope)
        {
            if (!_gate.TryHold(envelope)) _queue.Enqueue(envelope);
        }

        public bool TryDequeue(out Envelope envelope) => _queue.TryDequeue(out envelope);

        public void CleanUp(IActorRef owner, IMessageQueue deadletters)
        {
            while (TryDequeue(out var envelope)) deadletters.Enqueue(owner, envelope);
        }
    }
}

/// <summary>The gate of a <see cref="HeldChunksMailbox"/>: closed until <see cref="Open"/>.</summary>
public sealed class ChunkGate : IDisposable
{
    private readonly object _lock = new();
    private readonly Queue<Envelope> _held = new();
    private bool _open;
    private ConcurrentQueue<Envelope>? _queue;

    internal string Id { get; } = Guid.NewGuid().ToString("N");

    /// <summary>Completes when the first chunk is held (the ones before it arrived; the actor may not have taken them yet).</summary>
    public TaskCompletionSource Holding { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a <see cref="CollectParameters"/> reaches the worker while a chunk is held.</summary>
    public TaskCompletionSource CollectWhileHeld { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Lets the held chunks through: they join the end of the queue now (before the next message, which wakes the
    /// actor; after the ones that arrived before, which it may not have taken yet).
    /// </summary>
    public void Open()
    {
        lock (_lock)
        {
            _open = true;
            while (_held.TryDequeue(out var envelope)) _queue!.Enqueue(envelope);
        }
    }

    internal void Attach(ConcurrentQueue<Envelope> queue)
    {
        lock (_lock)
        {
            if (_queue is not null) throw new InvalidOperationException("a chunk gate serves one mailbox");
            _queue = queue;
        }
    }

    public void Dispose() => HeldChunksMailbox.Forget(this);

    internal bool TryHold(Envelope envelope)
    {
        var offset = envelope.Message switch
        {
            ClusterWorkerActor.DataAveraged d => d.Chunk.Offset,
            AveragedParameters a => a.Offset,
            _ => 0,
        };
        lock (_lock)
        {
            if (_open) return false;
            if (offset == 0)
            {
                if (envelope.Message is CollectParameters && _held.Count > 0) CollectWhileHeld.TrySetResult();
                return false;
            }
            _held.Enqueue(envelope);
        }
        Holding.TrySetResult();
        return true;
    }
}

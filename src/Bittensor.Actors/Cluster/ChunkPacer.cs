using Akka.Actor;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// Pacing of the parameter chunks an actor sends to other nodes (docs/cluster.md "Pacing"): per receiver, at most
/// <c>window</c> chunks are sent and not yet acknowledged (<see cref="ParameterChunkAck"/>); the rest wait here, in order.
/// A node's calls and heartbeats share one connection with the chunks, so a call queued behind a round waits for at
/// most <c>window</c> chunks instead of the whole vector. Transfers to one receiver go out one after the other, in the
/// order they were given (a checkpoint and a round's average never interleave).
/// </summary>
/// <remarks>
/// Used from inside one actor (not thread-safe). A receiver that stops acknowledging (its node died, it runs an older
/// version) holds its queue until <paramref name="ackTimeout"/> passes without an acknowledgement: then the actor gets
/// <see cref="AckTimedOut"/>, hands it to <see cref="TimedOut"/>, and what waited is dropped (the receiver drops an
/// incomplete vector by the same timeout).
/// </remarks>
internal sealed class ChunkPacer(int window, ITimerScheduler timers, TimeSpan ackTimeout)
{
    /// <summary>No acknowledgement from <paramref name="To"/> for the ack timeout (a timer message of the owning actor).</summary>
    public sealed record AckTimedOut(IActorRef To) : INoSerializationVerificationNeeded;

    private sealed class Lane
    {
        public Queue<object> Waiting { get; } = new();
        public int InFlight { get; set; }
    }

    private readonly Dictionary<IActorRef, Lane> _lanes = [];

    /// <summary>
    /// Sends a chunk another way than a Tell when it returns true (the front: on the worker's data connection,
    /// docs/cluster.md "Data plane"); null or false: told to the receiver.
    /// </summary>
    public Func<IActorRef, object, bool>? Route { get; init; }

    /// <summary>Chunks sent and not acknowledged yet, summed over every receiver (status, tests).</summary>
    public int InFlight => _lanes.Values.Sum(l => l.InFlight);

    /// <summary>Chunks waiting for an acknowledgement before they are sent, summed over every receiver.</summary>
    public int Waiting => _lanes.Values.Sum(l => l.Waiting.Count);

    /// <summary>True while chunks to <paramref name="to"/> wait or are not acknowledged yet.</summary>
    public bool Sending(IActorRef to) => _lanes.ContainsKey(to);

    /// <summary>Queues <paramref name="chunks"/> for <paramref name="to"/> and sends as many as the window allows.</summary>
    public void Send(IActorRef to, IEnumerable<object> chunks, IActorRef self)
    {
        if (!_lanes.TryGetValue(to, out var lane)) _lanes[to] = lane = new Lane();
        foreach (var c in chunks) lane.Waiting.Enqueue(c);
        Pump(to, lane, self);
    }

    /// <summary>One chunk sent to <paramref name="from"/> arrived there: the next waiting one goes out.</summary>
    public void Acked(IActorRef from, IActorRef self)
    {
        if (!_lanes.TryGetValue(from, out var lane)) return; // dropped meanwhile (timed out, receiver gone)
        lane.InFlight = Math.Max(0, lane.InFlight - 1);
        Pump(from, lane, self);
    }

    /// <summary>Forgets what waits for <paramref name="to"/> (it is gone); returns the chunks dropped.</summary>
    public int Drop(IActorRef to)
    {
        timers.Cancel(Key(to));
        return _lanes.Remove(to, out var lane) ? lane.Waiting.Count : 0;
    }

    /// <summary>The ack timeout of a receiver passed: its queue is dropped; returns the chunks dropped, or -1 if it was stale.</summary>
    public int TimedOut(AckTimedOut t) => _lanes.ContainsKey(t.To) ? Drop(t.To) : -1;

    private void Pump(IActorRef to, Lane lane, IActorRef self)
    {
        while (lane.InFlight < window && lane.Waiting.TryDequeue(out var chunk))
        {
            if (Route?.Invoke(to, chunk) != true) to.Tell(chunk, self);
            lane.InFlight++;
        }
        if (lane.InFlight == 0)
        {
            _lanes.Remove(to);
            timers.Cancel(Key(to));
        }
        else
        {
            timers.StartSingleTimer(Key(to), new AckTimedOut(to), ackTimeout);
        }
    }

    private static (string, IActorRef) Key(IActorRef to) => ("chunk-acks", to);
}

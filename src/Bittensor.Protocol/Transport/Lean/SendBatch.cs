using Bittensor.Protocol.Lean;

namespace Bittensor.Protocol;

/// <summary>
/// The requests of one dispatch of a fan-out round (<c>bittensor.dendrite.io = batch</c>, issue 11, session 19): the
/// round's endpoint actors each enter the batch while they handle their call (<see cref="Enter"/>), and a request a lean
/// connection on the client's I/O loop queues meanwhile is left in that connection's outbox without waking the loop;
/// when the batch's last call has arrived (<see cref="Scope.Dispose"/>; and after every <c>Chunk</c>-th, 16), the loop is
/// woken once (one eventfd write) and its thread sends every queued outbox in one pass, then waits for the answers: the
/// round's sends and reads on one
/// thread, one wake-up per round instead of one send per endpoint actor's thread. Each endpoint keeps its own actor,
/// mailbox, backoff and deadline; a call that does not send (refused, backed off, queued behind the endpoint's other
/// calls) arrives all the same. A call that never arrives (its message lost with an actor that stopped) does not hold the
/// others: the first queued request arms the loop's fallback timer (<see cref="ClientIoLoop.BatchFallback"/>), whose
/// firing flushes whatever is queued. Anything else (other transports, <c>io = loop|sockets</c>) ignores batches.
/// </summary>
public sealed class SendBatch
{
    /// <summary>
    /// Calls after which the loop is woken for what they queued even though more are to come (a round of 64 sends in four
    /// passes): the axons start on the first requests while the later endpoint actors still run (benchmarks set it).
    /// </summary>
    internal static int Chunk { get; set; } = 16;

    private readonly int _calls;
    private readonly int _chunk;
    private readonly Lock _lock = new();
    private int _remaining;
    private List<ClientIoLoop.Registration>? _held; // connections whose queued requests wait for this batch
    private int _queued;

    /// <param name="calls">Calls that will each <see cref="Enter"/> the batch once.</param>
    public SendBatch(int calls)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(calls, 1);
        _calls = calls;
        _remaining = calls;
        _chunk = Math.Max(1, Chunk);
    }

    /// <summary>Calls that have not arrived yet (tests).</summary>
    internal int Remaining => Volatile.Read(ref _remaining);

    /// <summary>Connections whose writes waited for this batch so far (tests).</summary>
    internal int Queued => Volatile.Read(ref _queued);

    /// <summary>
    /// One call of the batch on this thread until the scope is disposed: sends queued meanwhile wait for the batch's
    /// last call. Dispose it exactly once (a <c>using</c>), whatever the call did.
    /// </summary>
    public Scope Enter()
    {
        var prior = ClientIoLoop.CurrentBatch;
        ClientIoLoop.CurrentBatch = this;
        return new Scope(this, prior);
    }

    // A connection queued bytes with this batch open on the thread: held until the batch's chunk or last call; true for
    // the first held since the batch's last release (the loop then arms its fallback timer).
    internal bool Hold(ClientIoLoop.Registration r)
    {
        Interlocked.Increment(ref _queued);
        lock (_lock)
        {
            if (_held is not null)
            {
                _held.Add(r);
                return false;
            }
            _held = [r];
            return true;
        }
    }

    // What the batch holds, taken (the arrivals' release, or the loop's fallback); null when nothing.
    internal List<ClientIoLoop.Registration>? TakeHeld()
    {
        lock (_lock)
        {
            var held = _held;
            _held = null;
            return held;
        }
    }

    // The last call, or every Chunk-th, hands what the batch holds to the loop and wakes it (one eventfd write).
    private void Arrive()
    {
        var left = Interlocked.Decrement(ref _remaining);
        if ((left == 0 || (_calls - left) % _chunk == 0) && TakeHeld() is { } held) ClientIoLoop.Shared.Release(held);
    }

    /// <summary>A call's time in the batch (see <see cref="Enter"/>).</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly SendBatch? _batch;
        private readonly SendBatch? _prior;

        internal Scope(SendBatch batch, SendBatch? prior)
        {
            _batch = batch;
            _prior = prior;
        }

        /// <summary>This call has arrived: the thread's previous batch (if any) is current again; the last call wakes the loop.</summary>
        public void Dispose()
        {
            if (_batch is null) return;
            ClientIoLoop.CurrentBatch = _prior;
            _batch.Arrive();
        }
    }
}

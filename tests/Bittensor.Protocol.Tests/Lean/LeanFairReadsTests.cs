using System.Collections.Concurrent;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean server's read schedule (<see cref="ReadTurns"/>) over real loopback sockets: a connection kept full gets a
/// turn of at most <see cref="ReadTurns.ReadsPerTurn"/> + 1 reads, then queues behind the others, so another
/// connection's call is answered within the first one's turn, not after its whole burst (issue 11: waiting calls sat
/// unread while one connection's loop kept the socket engine's thread). The turns are counted, never timed: with
/// <see cref="ReadTurnMode.Driven"/> the test gives each round itself; reads are capped at 1 KiB so a burst of a few
/// dozen KiB (one send, in the server's socket before the first turn) takes many reads.
/// </summary>
public sealed class LeanFairReadsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private const int ReadSize = 1024;
    private const int Burst = 300;

    /// <summary>Answers at once (synchronously, on the read loop) and records whose call ran, in order.</summary>
    private sealed class OrderService : IBittensorService
    {
        public ConcurrentQueue<string> Order { get; } = new();

        private readonly TaskCompletionSource _allOfA = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _a;

        public Task AllOfA => _allOfA.Task;

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            Order.Enqueue(request.Hotkey);
            if (request.Hotkey == "a" && Interlocked.Increment(ref _a) == Burst) _allOfA.TrySetResult();
            return Task.FromResult(new TensorMessage { Version = 150, Message = $"{method}:{request.Hotkey}" });
        }

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));

        public void OnRefused(TransportRefusal refusal)
        {
        }
    }

    private static async Task<LeanServer> Bind(IBittensorService service, ReadTurnMode mode, int engineLanes = 0) =>
        (LeanServer)await new LeanServerTransport { TurnMode = mode, ReadSize = ReadSize, EngineLanes = engineLanes }
            .BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 100), service, CancellationToken.None);

    private static readonly byte[] RequestBlock = RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"),
        (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")]);

    /// <summary>Bytes one call of <paramref name="hotkey"/> takes on the wire: HEADERS and DATA, each with its 9-byte header.</summary>
    private static int CallBytes(string hotkey) => 9 + RequestBlock.Length + 9 + RawH2.Message(new TensorMessage { Hotkey = hotkey }).Length;

    /// <summary>Writes <paramref name="count"/> calls of <paramref name="hotkey"/> (streams 1, 3, …) in one send.</summary>
    private static async Task SendCalls(RawH2 h2, string hotkey, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var stream = 1 + (2 * i);
            await h2.Frame(H2.Headers, H2.EndHeaders, stream, RequestBlock, flush: false);
            await h2.Frame(H2.Data, H2.EndStream, stream, RawH2.Message(new TensorMessage { Hotkey = hotkey }), flush: false);
        }
        await h2.Flush();
    }

    /// <summary>Reads answers until <paramref name="count"/> streams have ended (frames of other kinds skipped).</summary>
    private static async Task<int> Answers(RawH2 h2, int count)
    {
        var ended = 0;
        while (ended < count)
        {
            var f = await h2.Read() ?? throw new InvalidOperationException($"the server closed after {ended} of {count} answers");
            if (f.Type == H2.Headers && (f.Flags & H2.EndStream) != 0) ended++;
        }
        return ended;
    }

    [Fact]
    public async Task A_call_on_a_second_connection_runs_within_the_first_turn_of_a_connection_kept_full()
    {
        var service = new OrderService();
        await using var server = await Bind(service, ReadTurnMode.Driven);
        var turns = server.Turns;
        await using var a = await RawH2.Connect(server.Endpoint.Port);
        await using var b = await RawH2.Connect(server.Endpoint.Port);
        // Both first reads wait for their turn (queued before the SETTINGS each client has read): none ran on the
        // accept loop or a pool thread of its own.
        Assert.Equal(2, turns.Waiting);
        var answersA = Answers(a, Burst);
        var answersB = Answers(b, 1);
        await SendCalls(a, "a", Burst);
        await SendCalls(b, "b", 1);
        Assert.Empty(service.Order);

        // One round: a's turn (it connected first), then b's.
        Assert.Equal(2, turns.GiveTurns());

        var order = service.Order.ToArray();
        var beforeB = Array.IndexOf(order, "b");
        Assert.True(beforeB >= 0, $"b's call did not run in the first round ({order.Length} of a's ran)");
        // a's first turn: at most ReadsPerTurn + 1 reads of ReadSize bytes, so at most this many whole calls (one more
        // may end in them); unfair, all 300 would run first.
        var most = ((ReadTurns.ReadsPerTurn + 1) * ReadSize / CallBytes("a")) + 1;
        Assert.InRange(beforeB, 0, most);
        Assert.True(beforeB < Burst);
        Assert.Equal(1, turns.Waiting); // a, back in the queue with its burst unread
        Assert.Equal(1, await answersB.WaitAsync(Wait));

        // The rest of a's burst, a turn per round. Were some of it late into the server's socket, the read that waited
        // for it would begin a turn of its own (on the pool here) and end queued again: at most two turns' calls
        // between two counts, never the burst.
        while (!service.AllOfA.IsCompleted)
        {
            var ranBefore = service.Order.Count;
            if (turns.GiveTurns() == 0)
            {
                await Task.WhenAny(turns.Queued(), service.AllOfA).WaitAsync(Wait);
                continue;
            }
            Assert.InRange(service.Order.Count - ranBefore, 0, 2 * (most + 1));
        }
        Assert.Equal(Burst, await answersA.WaitAsync(Wait));
    }

    [Fact]
    public async Task On_the_socket_engine_a_connection_kept_full_waits_for_its_next_turn_and_every_call_is_answered()
    {
        var service = new OrderService();
        await using var server = await Bind(service, ReadTurnMode.Engine);
        Assert.True(server.Turns.OnEngine, "no socket pair for the wake-up");
        await using var a = await RawH2.Connect(server.Endpoint.Port);
        await using var b = await RawH2.Connect(server.Endpoint.Port);
        var answersA = Answers(a, Burst);
        var answersB = Answers(b, 1);
        // One send of ~40 KiB (one loopback segment): the read that sees it finds the rest already there.
        await SendCalls(a, "a", Burst);
        await SendCalls(b, "b", 1);

        Assert.Equal(Burst, await answersA.WaitAsync(Wait));
        Assert.Equal(1, await answersB.WaitAsync(Wait));
        var connections = server.Connections();
        Assert.Equal(2, connections.Length);
        // a's loop queued for its first turn and, its burst needing ~40 reads of 1 KiB, for later ones too.
        Assert.True(connections.Max(c => c.TurnsWaited) >= 2, $"turns waited: {string.Join(", ", connections.Select(c => c.TurnsWaited))}");
        Assert.True(server.Turns.Rounds >= 2);
    }

    /// <summary>
    /// Holds the call of <c>hold</c> on the thread that runs it (a synchronous handler, as a batch verifier's first check
    /// runs on the read loop) until the call of <c>free</c> — on another connection — has run, at most <see cref="Wait"/>.
    /// </summary>
    private sealed class HoldService : IBittensorService
    {
        private readonly ManualResetEventSlim _freed = new();
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => _entered.Task;

        public bool? Released { get; private set; }

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            if (request.Hotkey == "hold")
            {
                _entered.TrySetResult();
                Released = _freed.Wait(Wait);
            }
            else if (request.Hotkey == "free")
            {
                _freed.Set();
            }
            return Task.FromResult(new TensorMessage { Version = 150, Message = request.Hotkey });
        }

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));

        public void OnRefused(TransportRefusal refusal)
        {
        }
    }

    /// <summary>
    /// Session 12's hang (BatchVerificationSpec, lean, batching: a call unanswered for 60 s), made certain: a turn given
    /// by another thread the moment it is queued — as the pool or the socket engine may — resumed a read loop that had
    /// not yet stopped for it, so the loop went on on the thread that queued it; for a new connection that thread is the
    /// accept loop (<see cref="H2Connection.Start"/>), and a call held there (the holder's check, waiting for calls of a
    /// second connection) stopped the server accepting that second connection. The first connection's bytes are all in
    /// its socket when its first turn is given (a gRPC client's first call, accepted by a busy server), and every turn is
    /// given at once on a thread of its own; the queuing thread goes on only once its turn is given unless its read loop
    /// has stopped for it already. Now a turn is queued only once its loop awaits it: the held call runs on the giver's
    /// thread and the second connection is accepted and served.
    /// </summary>
    [Fact]
    public async Task A_turn_given_the_moment_it_is_queued_never_runs_the_connection_on_the_accept_loop()
    {
        var service = new HoldService();
        await using var server = await Bind(service, ReadTurnMode.Driven);
        var turns = server.Turns;
        var holdBytes = H2.Preface.Length + 9 + CallBytes("hold");
        var queued = 0;
        var holderArrived = true;
        turns.WhenQueued = turn =>
        {
            // (Runs inside the read loop's await: it records, never throws.)
            if (Interlocked.Increment(ref queued) == 1)
            {
                // The holder's first turn: its whole call is in the socket before the turn is given (a wait on the
                // socket's own event; the holder is the only connection yet, added before its read loop started).
                holderArrived = server.Connections() is [var holder] && SocketBytes.WaitFor(holder.SocketForTests, holdBytes, Wait, out _);
            }
            var giver = new Thread(() => turns.GiveTurns()) { IsBackground = true, Name = "read turn giver" };
            giver.Start();
            if (!turn.Awaited) giver.Join(Wait);
        };

        await using var hold = await RawH2.Connect(server.Endpoint.Port, handshake: false);
        await hold.Send(H2.Preface.ToArray());
        await hold.Frame(H2.Settings, 0, 0, [], flush: false);
        await SendCalls(hold, "hold", 1);
        await service.Entered.WaitAsync(Wait);
        Assert.True(holderArrived, "the holder's call never reached the server before its first turn");

        // The holder's call waits for this one: the server must accept this connection and run its call meanwhile.
        await using var free = await RawH2.Connect(server.Endpoint.Port);
        var answerFree = Answers(free, 1);
        await SendCalls(free, "free", 1);
        Assert.Equal(1, await answerFree);
        Assert.Equal(1, await Answers(hold, 1));
        Assert.True(service.Released, "the held call was let go by its timeout, not by the second connection's call");
    }

    /// <summary>
    /// Holds the first header check (a batch verifier's first check runs on the read loop, BatchVerificationSpec) on the
    /// thread that runs it until <see cref="Release"/> or the call of <c>free</c> has run, at most <see cref="Wait"/>;
    /// records whether that thread was the server's accept loop.
    /// </summary>
    private sealed class CheckHoldService : IBittensorService
    {
        private readonly ManualResetEventSlim _release = new();
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _checks;

        public Task Entered => _entered.Task;

        public bool? Released { get; private set; }

        public bool? OnAcceptLoop { get; private set; }

        public void Release() => _release.Set();

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            if (request.Hotkey == "free") _release.Set();
            return Task.FromResult(new TensorMessage { Version = 150, Message = request.Hotkey });
        }

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _checks) == 1)
            {
                // LeanServer.AcceptLoop is on the stack when a read loop runs on the accept loop (an async method's frame
                // shows under its own name; the state machine's, in case).
                var stack = Environment.StackTrace;
                OnAcceptLoop = stack.Contains(nameof(LeanServer) + ".AcceptLoop", StringComparison.Ordinal) ||
                    stack.Contains("<AcceptLoop>", StringComparison.Ordinal);
                _entered.TrySetResult();
                Released = _release.Wait(Wait);
            }
            return ValueTask.FromResult(HeaderDecision.Proceed(null));
        }

        public void OnRefused(TransportRefusal refusal)
        {
        }
    }

    /// <summary>
    /// The engine-mode counterpart of the test above (btcli's mode: turns given by a wake-up through the socket engine),
    /// with the hold in the header check. The holder's whole call is in its socket before its first turn is rung, so
    /// that turn runs the check on the thread that gives lane 0's turns and holds it there. The second connection is
    /// accepted meanwhile (its SETTINGS come, it is counted) and, on lane 1, its call runs and lets the held check go.
    /// </summary>
    [Fact]
    public async Task On_the_socket_engine_a_check_held_on_one_connection_never_stops_another_being_accepted_and_served()
    {
        var service = new CheckHoldService();
        await using var server = await Bind(service, ReadTurnMode.Engine, engineLanes: 2);
        Assert.True(server.Turns.OnEngine, "no socket pair for the wake-up");
        var (holderArrived, hold) = await HoldFirstCheck(server, service);
        await using var _ = hold;
        Assert.True(holderArrived, "the holder's call never reached the server before its first turn");
        Assert.False(service.OnAcceptLoop, "the held check ran on the accept loop");

        await using var free = await RawH2.Connect(server.Endpoint.Port); // accepted: the server's SETTINGS came
        Assert.Equal(2, server.Connections().Length);
        var answerFree = Answers(free, 1);
        await SendCalls(free, "free", 1);
        Assert.Equal(1, await answerFree.WaitAsync(Wait));
        Assert.Equal(1, await Answers(hold, 1).WaitAsync(Wait));
        Assert.True(service.Released, "the held check was let go by its timeout, not by the second connection's call");
    }

    /// <summary>
    /// With one lane a check held on the lane's thread holds that lane's turns — every connection's reads on it — but
    /// never the accept loop: the second connection is accepted and its first read waits for its turn, given once the
    /// check is let go. (A check that blocks its read loop stops what shares the thread that runs it: the socket
    /// engine's, with btcli's inline completions.)
    /// </summary>
    [Fact]
    public async Task On_the_socket_engine_a_check_held_on_its_lane_holds_that_lanes_turns_but_never_the_accept_loop()
    {
        var service = new CheckHoldService();
        await using var server = await Bind(service, ReadTurnMode.Engine, engineLanes: 1);
        Assert.True(server.Turns.OnEngine, "no socket pair for the wake-up");
        var (holderArrived, hold) = await HoldFirstCheck(server, service);
        await using var _ = hold;
        Assert.True(holderArrived, "the holder's call never reached the server before its first turn");
        Assert.False(service.OnAcceptLoop, "the held check ran on the accept loop");

        await using var free = await RawH2.Connect(server.Endpoint.Port); // accepted while the check is held
        Assert.Equal(2, server.Connections().Length);
        Assert.Equal(1, server.Turns.Waiting); // free's first read: queued on the held lane
        var answerFree = Answers(free, 1);
        await SendCalls(free, "free", 1);
        service.Release();

        Assert.Equal(1, await answerFree.WaitAsync(Wait));
        Assert.Equal(1, await Answers(hold, 1).WaitAsync(Wait));
        Assert.True(service.Released);
        Assert.Equal(0, server.Turns.Waiting);
    }

    // Connects the holder with its preface, SETTINGS and one call in its socket before its first turn is rung, and
    // waits until that turn's check is held. Arrived: false when the bytes never did.
    private static async Task<(bool Arrived, RawH2 Hold)> HoldFirstCheck(LeanServer server, CheckHoldService service)
    {
        var holdBytes = H2.Preface.Length + 9 + CallBytes("hold");
        var queued = 0;
        var holderArrived = true;
        server.Turns.WhenQueued = turn =>
        {
            // (Runs on the accept loop, inside the read loop's await: it records, never throws.)
            if (Interlocked.Increment(ref queued) == 1)
                holderArrived = server.Connections() is [var holder] && SocketBytes.WaitFor(holder.SocketForTests, holdBytes, Wait, out _);
        };
        var hold = await RawH2.Connect(server.Endpoint.Port, handshake: false);
        await hold.Send(H2.Preface.ToArray());
        await hold.Frame(H2.Settings, 0, 0, [], flush: false);
        await SendCalls(hold, "hold", 1);
        await service.Entered.WaitAsync(Wait);
        return (holderArrived, hold);
    }

    [Fact]
    public async Task A_connection_stopped_while_waiting_for_its_turn_ends_its_read_loop()
    {
        var service = new OrderService();
        var server = await Bind(service, ReadTurnMode.Driven);
        var a = await RawH2.Connect(server.Endpoint.Port);
        Assert.Equal(1, server.Turns.Waiting);
        var connection = Assert.Single(server.Connections());

        await server.DisposeAsync();

        // The turn was handed on and the read loop saw the closed socket: it ended (it would wait for ever otherwise).
        await connection.ReadLoop.WaitAsync(Wait);
        Assert.Equal(0, server.Turns.Waiting);
        Assert.True(await a.Closed());
        Assert.Empty(service.Order);
        await a.DisposeAsync();
    }
}

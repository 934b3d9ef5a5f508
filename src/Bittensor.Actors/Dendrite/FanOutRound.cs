using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Core.Domain;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Dendrite;

/// <summary>
/// One fan-out round of the <see cref="Dendrite"/>: one result slot per endpoint, filled by the first answer that comes —
/// from the transport's completion (an answer is decoded into its slot on the transport's thread while its bytes are
/// still in the transport's buffer), from the endpoint actor (refusals, failures, a stop or restart) or from the round
/// itself (its guard timer, the k_min grace). Later answers for a filled slot are dropped, so each endpoint is answered
/// exactly once. At most <see cref="DendriteSettings.Parallelism"/> calls are out at once: each filled slot starts the
/// next endpoint. The round's task completes once every slot is filled.
/// </summary>
internal sealed class FanOutRound
{
    private readonly EndpointResult[] _results;
    private readonly Func<int, EndpointCall> _callFor;
    private readonly long[] _expectedShape;
    private readonly ITensorWireCodec _codec;
    private readonly IActorRef _dendrite;
    private readonly FanOutOptions? _fanOut;
    private readonly TimeProvider _time;
    private readonly TimeSpan _guard;
    private readonly TimeSpan _timeout;
    private readonly int _parallelism;
    private readonly TaskCompletionSource<IReadOnlyList<EndpointResult>> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HeldOutcome?[] _outcomes;
    private readonly Float32AnswerShape? _landingShape;
    private readonly AnswerBufferPool? _pool;
    private readonly bool _holdOutcomes;
    private ITimer? _guardTimer;
    private int _remaining;
    private int _next;
    private int _successes;
    private int _closed;
    private int _out; // calls whose request is out (CallOut)

    /// <param name="endpoints">The endpoints, in the order results are returned.</param>
    /// <param name="callFor">The call toward endpoint i.</param>
    /// <param name="expectedShape">Shape every Success answer must have (float32).</param>
    /// <param name="codec">Decodes answers the fast path does not take (other dtypes, wrong shapes).</param>
    /// <param name="dendrite">The <see cref="DendriteActor"/> that owns the endpoint actors.</param>
    /// <param name="parallelism">Calls out at once.</param>
    /// <param name="timeout">Each call's deadline (the endpoint actor enforces it).</param>
    /// <param name="fanOut">Early return after k_min successes, or null.</param>
    /// <param name="time">Clock of the k_min grace period.</param>
    /// <param name="pools">The dendrite's answer arrays for an answer length (null: every answer allocates its array).</param>
    public FanOutRound(IReadOnlyList<EndpointInfo> endpoints, Func<int, EndpointCall> callFor, long[] expectedShape, ITensorWireCodec codec,
        IActorRef dendrite, int parallelism, TimeSpan timeout, FanOutOptions? fanOut, TimeProvider time, Func<int, AnswerBufferPool>? pools = null)
    {
        Endpoints = endpoints;
        _callFor = callFor;
        _expectedShape = expectedShape;
        _codec = codec;
        _dendrite = dendrite;
        _parallelism = parallelism;
        _timeout = timeout;
        _fanOut = fanOut;
        _time = time;
        _results = new EndpointResult[endpoints.Count];
        _outcomes = new HeldOutcome?[endpoints.Count];
        _holdOutcomes = Distinct(endpoints);
        _remaining = endpoints.Count;
        _landingShape = LandingShape(expectedShape);
        _pool = _landingShape is null ? null : pools?.Invoke(_landingShape.ElementCount);
        // The endpoint actor enforces each call's deadline; the guard only answers calls whose reply was lost (an actor
        // that died without answering). One guard per round: as long as the calls of all its waves, plus 2 s.
        var waves = (endpoints.Count + parallelism - 1) / Math.Max(1, parallelism);
        _guard = (timeout * Math.Max(1, waves)) + TimeSpan.FromSeconds(2);
    }

    // Answers are received straight into their result arrays where the transport can (AnswerLanding); up to 1 MiB each.
    private static Float32AnswerShape? LandingShape(long[] shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            if (d <= 0 || d > 1 << 20) return null;
            count *= d;
            if (count > (1 << 20) / 4) return null;
        }
        return shape.Length is 0 or > TensorCodec.MaxRank ? null : new Float32AnswerShape(shape);
    }

    /// <summary>A landing for one call of the round (the array its answer's floats may be received into), or null.</summary>
    public AnswerLanding? NewLanding() => _landingShape is null ? null : new AnswerLanding(_landingShape, _pool);

    /// <summary>The endpoints of the round.</summary>
    public IReadOnlyList<EndpointInfo> Endpoints { get; }

    /// <summary>Completes with one result per endpoint, in the order given.</summary>
    public Task<IReadOnlyList<EndpointResult>> Task => _done.Task;

    /// <summary>The call toward endpoint <paramref name="index"/>.</summary>
    public EndpointCall CallFor(int index) => _callFor(index);

    private SharedRequest? _request; // the last request built for this round's calls (read and replaced by several endpoint actors)

    /// <summary>
    /// The request message of <paramref name="call"/> from <paramref name="hotkey"/> and its size, built once and shared by
    /// the round's calls that carry the same call (a forward round sends one to every endpoint). Transports only read it
    /// (serialize it), so one message serves every connection; two actors asking at once may each build one.
    /// </summary>
    public (TensorMessage Request, int Size) RequestFor(EndpointCall call, string hotkey)
    {
        var shared = Volatile.Read(ref _request);
        if (shared is null || !ReferenceEquals(shared.Call, call) || !string.Equals(shared.Hotkey, hotkey, StringComparison.Ordinal))
        {
            var (request, size) = EndpointActor.NewRequest(call, hotkey);
            shared = new SharedRequest(call, hotkey, request, size);
            Volatile.Write(ref _request, shared);
        }
        return (shared.Request, shared.Size);
    }

    private sealed record SharedRequest(EndpointCall Call, string Hotkey, TensorMessage Request, int Size);

    /// <summary>Sends the first calls (up to the parallelism) through the dendrite actor and arms the guard.</summary>
    public Task<IReadOnlyList<EndpointResult>> Start()
    {
        var n = Endpoints.Count;
        if (n == 0)
        {
            _done.TrySetResult([]);
            return Task;
        }
        _guardTimer = TimeProvider.System.CreateTimer(static o => ((FanOutRound)o!).Close("no answer from the endpoint actor", useTimeout: true),
            this, _guard, Timeout.InfiniteTimeSpan);
        var first = Math.Min(n, _parallelism);
        _next = first;
        _dendrite.Tell(new DendriteActor.RoundCalls(this, 0, first));
        return Task;
    }

    /// <summary>
    /// Counts a call whose request is out (its endpoint actor's transport sent it, or queued it behind the connection's
    /// other writes); true for the round's last one, when the endpoint actor starts the signing ahead of the next round
    /// (<see cref="SharedRequestSignatures.SignAheadIfArmed"/>), so that it runs while the answers are awaited.
    /// </summary>
    public bool CallOut() => Interlocked.Increment(ref _out) == Endpoints.Count;

    /// <summary>
    /// Fills slot <paramref name="index"/> unless an answer is there already; false when it was (the later answer is
    /// dropped). Starts the next endpoint when the round has more, and completes the round with its last slot.
    /// </summary>
    public bool TryComplete(int index, EndpointResult result)
    {
        if (Interlocked.CompareExchange(ref _results[index], result, null!) is not null) return false;
        if (result.Code == ReturnCode.Success && _fanOut is { KMin: > 0 } k && k.KMin < _results.Length && Interlocked.Increment(ref _successes) == k.KMin)
        {
            _ = System.Threading.Tasks.Task.Delay(k.TimeoutAfterKMin, _time)
                .ContinueWith(static (_, o) => ((FanOutRound)o!).Close("not answered within the grace period after k_min answers", useTimeout: false),
                    this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        if (Volatile.Read(ref _closed) == 0)
        {
            var next = Interlocked.Increment(ref _next) - 1;
            if (next < _results.Length) _dendrite.Tell(new DendriteActor.RoundCalls(this, next, 1));
        }
        if (Interlocked.Decrement(ref _remaining) == 0)
        {
            _guardTimer?.Dispose();
            TellHeldOutcomes(); // before the task completes: a call after the round meets the bookkeeping they leave
            _done.TrySetResult(_results);
        }
        return true;
    }

    /// <summary>
    /// Tells <paramref name="actor"/> (slot <paramref name="index"/>'s endpoint actor) the outcome of its call, which the
    /// transport's completion reports before it fills the slot. While the round is open the message is held, and when the
    /// last slot fills, before the round's task completes, the held outcomes go to the dendrite actor in one message
    /// (<see cref="DendriteActor.RoundOutcomes"/>), which hands each to its endpoint actor with that actor's next round call
    /// (one mailbox run for both) or alone before anything else it sends that actor. A round
    /// that lists one endpoint (hotkey) twice tells at once (its second call may be queued behind the first's outcome),
    /// and so does an outcome that comes after the round completed (a call the guard or the k_min grace gave up on).
    /// </summary>
    public void Report(int index, IActorRef actor, object outcome)
    {
        if (!_holdOutcomes || Interlocked.CompareExchange(ref _outcomes[index], new HeldOutcome(actor, outcome), null) is not null)
            actor.Tell(outcome);
    }

    /// <summary>Outcomes held now (tests).</summary>
    internal int HeldOutcomes => _outcomes.Count(o => o is not null && !ReferenceEquals(o, HeldOutcome.Told));

    // The held outcomes go to the dendrite actor in one message (DendriteActor.RoundOutcomes): it hands each to its endpoint
    // actor with that actor's next round call (one mailbox run for both), or alone before anything else it sends that
    // actor, or when its flush timer fires. Told before the round's task completes, so whatever the caller sends the
    // dendrite after the round comes behind them.
    private void TellHeldOutcomes()
    {
        List<(IActorRef Actor, object Message)>? outcomes = null;
        for (var i = 0; i < _outcomes.Length; i++)
        {
            var held = Interlocked.Exchange(ref _outcomes[i], HeldOutcome.Told);
            if (held is not null && !ReferenceEquals(held, HeldOutcome.Told)) (outcomes ??= new(_outcomes.Length)).Add((held.Actor, held.Message));
        }
        if (outcomes is not null) _dendrite.Tell(new DendriteActor.RoundOutcomes(outcomes));
    }

    private static bool Distinct(IReadOnlyList<EndpointInfo> endpoints)
    {
        if (endpoints.Count < 2) return true;
        var seen = new HashSet<string>(endpoints.Count, StringComparer.Ordinal);
        foreach (var e in endpoints)
            if (!seen.Add(e.Hotkey)) return false;
        return true;
    }

    /// <summary>An endpoint actor's outcome message held until the round completes; <see cref="Told"/> marks a slot whose outcomes went out.</summary>
    private sealed record HeldOutcome(IActorRef Actor, object Message)
    {
        public static readonly HeldOutcome Told = new(ActorRefs.Nobody, new object());
    }

    /// <summary>Ends the round: every slot still empty answers Timeout with <paramref name="why"/>; no further call starts.</summary>
    private void Close(string why, bool useTimeout)
    {
        Volatile.Write(ref _closed, 1);
        for (var i = 0; i < _results.Length; i++)
        {
            if (Volatile.Read(ref _results[i]) is null)
                TryComplete(i, new EndpointResult(Endpoints[i], DenseTensor.Zeros(_expectedShape), ReturnCode.Timeout, why, useTimeout ? _timeout : TimeSpan.Zero));
        }
    }

    /// <summary>The slot's result for an answer the endpoint actor gives (a refusal, a failure, or a peer answer in full).</summary>
    public EndpointResult FromReply(int index, EndpointReply reply)
    {
        var endpoint = Endpoints[index];
        if (reply.Code != ReturnCode.Success || reply.Response is null) return Fail(endpoint, reply.Code, reply.Message, reply.Latency);
        return Decode(endpoint, reply.Response, reply.Latency);
    }

    /// <summary>
    /// Reads a peer's answer on the transport's thread (its buffers are valid only during this call): the slot's result,
    /// with the peer's own code and message for the endpoint actor's bookkeeping.
    /// </summary>
    public RoundAnswer Read(int index, TensorMessage answer, TimeSpan latency, AnswerLanding? landing = null)
    {
        var endpoint = Endpoints[index];
        var result = answer.ReturnCode == ReturnCode.Success
            ? Decode(endpoint, answer, latency, landing)
            : Fail(endpoint, answer.ReturnCode, answer.Message, latency);
        return new RoundAnswer(answer.ReturnCode, answer.Message, result, latency);
    }

    private EndpointResult Fail(EndpointInfo endpoint, ReturnCode code, string message, TimeSpan latency) =>
        new(endpoint, DenseTensor.Zeros(_expectedShape), code, message, latency);

    // A Success answer: float32 of the expected shape, every value finite.
    private EndpointResult Decode(EndpointInfo endpoint, TensorMessage answer, TimeSpan latency, AnswerLanding? landing = null)
    {
        if (answer.Tensors.Count == 0) return Fail(endpoint, ReturnCode.EmptyResponse, "peer answered Success without a tensor", latency);
        var wire = answer.Tensors[0];
        // The usual answer with its floats already received into the landing's array by the transport: no copy at all.
        if (landing is not null && landing.TryTake(wire))
            return Checked(endpoint, DenseTensor.Float32(_expectedShape, landing.Values), answer.Message, latency, landing);
        var decoded = TensorCodec.Decode(wire);
        if (decoded.IsSuccess && decoded.Tensor.DataType == DataType.Float32 && decoded.Tensor.HasShape(_expectedShape))
        {
            // The usual answer: its floats go from the transport's buffer into the result's array, the one copy kept.
            // (A landing's array, when the transport did not land: it is this call's to use.)
            var floats = landing is not null && landing.Values.Length == decoded.Tensor.ElementCount
                ? landing.Values
                : GC.AllocateUninitializedArray<float>(decoded.Tensor.ElementCount);
            decoded.Tensor.CopyTo(floats);
            return Checked(endpoint, DenseTensor.Float32(_expectedShape, floats), answer.Message, latency, ReferenceEquals(floats, landing?.Values) ? landing : null);
        }
        // Anything else takes the codec's general path (float64 answers are converted, wrong ones refused with its reason).
        if (!_codec.TryDecode(wire, true, out var tensor, out var code, out var error)) return Fail(endpoint, code, error, latency);
        if (tensor!.DataType != DataType.Float32 || !tensor.HasShape(_expectedShape))
            return Fail(endpoint, ReturnCode.ResponseShapeException, $"peer answered {tensor}, expected Float32[{string.Join(", ", _expectedShape)}]", latency);
        return Checked(endpoint, tensor, answer.Message, latency);
    }

    // A NaN or ±Inf would poison whatever the caller computes with it (one such reply can turn a validator's weights into
    // NaN for good): the answer is refused, not patched, so the caller sees that the peer misbehaved.
    // A landing's array (the transport is done with it: the reader runs after the whole answer arrived) goes with the
    // result as its lease, or straight back to the pool when the answer is refused.
    private EndpointResult Checked(EndpointInfo endpoint, DenseTensor tensor, string message, TimeSpan latency, AnswerLanding? landing = null)
    {
        var nonFinite = Dendrite.CountNonFinite(tensor.Floats!);
        if (nonFinite > 0)
        {
            landing?.TakeLease()?.Release();
            return Fail(endpoint, ReturnCode.InvalidResponse, $"peer answered {nonFinite} non-finite value(s) (NaN or ±Inf)", latency);
        }
        return new EndpointResult(endpoint, tensor, ReturnCode.Success, message, latency) { Lease = landing?.TakeLease() };
    }
}

/// <summary>A peer's answer as read on the transport's thread: the peer's code and message, and the slot's result.</summary>
internal sealed record RoundAnswer(ReturnCode PeerCode, string PeerMessage, EndpointResult Result, TimeSpan Latency);

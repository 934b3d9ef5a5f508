using Bittensor.Actors.Metrics;
using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Bittensor.Core.Domain;

using Bittensor.Core.Resilience;

namespace Bittensor.Actors.Dendrite;

/// <summary>
/// One remote axon: its own connection from the client transport (gRPC: an HTTP/2 channel, multiplexed, reused), a bounded queue of calls (overflow answers
/// Backoff), a per-call deadline, capped exponential backoff with full jitter after Unavailable/Timeout, a
/// circuit breaker (open while backed off, one trial call when the delay ends, closed on success) and stats.
/// Stops itself after <see cref="DendriteSettings.IdleTimeout"/> without calls. Every call is answered exactly once:
/// when the actor fails (restart) or stops, each queued and in-flight call is answered UnknownException
/// ("endpoint actor failed" / "stopped"), and a transport completion that arrives afterwards (to the restarted
/// instance) is dropped, not answered a second time.
/// A call comes either as an <see cref="EndpointCall"/> (the answer is told to its sender) or as a
/// <see cref="RoundCall"/> of a <see cref="Dendrite"/> fan-out: then the transport's completion decodes the peer's answer
/// straight into the round's slot on the transport's thread, after reporting the outcome for this actor to the round,
/// which tells it, with the round's other outcomes, before the round's task completes (so a call that comes after the
/// round always meets the backoff, breaker and in-flight count that outcome left); this actor answers the slot itself
/// only when it refuses, fails or stops.
/// </summary>
internal sealed class EndpointActor : UntypedActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly DendriteSettings _settings;
    private readonly IRequestSigner _signer;
    private readonly SharedRequestSignatures _signatures;
    private readonly TimeProvider _time;
    private readonly BackoffPolicy _backoff;
    private readonly Random _random;
    private int _failures;
    private readonly Queue<(EndpointCall Call, Replier ReplyTo, DateTimeOffset Deadline)> _pending = new();
    private readonly Dictionary<long, Replier> _running = [];
    private Replier? _accepting;
    private string? _failure;
    private static long s_callIds; // unique across instances, so a stale completion never matches a new call
    private EndpointInfo _endpoint;
    private string _target; // the endpoint's address, the key of its nonce floor
    private readonly IClientTransport _transport;
    private IPeerConnection? _connection;
    private DateTimeOffset? _openUntil;
    private bool _trialInFlight;
    private int _inFlight;
    private long _calls;
    private long _successes;
    private double _latencyEma;
    private KeyValuePair<string, object?> _peerTag;
    private long _lastMessage = Environment.TickCount64; // ms; when the last message other than an IdleCheck came

    /// <summary>The actor's timers (the idle check).</summary>
    public ITimerScheduler Timers { get; set; } = null!;

    public EndpointActor(EndpointInfo endpoint, DendriteSettings settings, IRequestSigner signer, TimeProvider time, Random random, IClientTransport transport,
        SharedRequestSignatures? signatures = null)
    {
        _transport = transport;
        _endpoint = endpoint;
        _target = SharedRequestSignatures.Target(endpoint);
        _peerTag = new KeyValuePair<string, object?>("peer", DendriteMeters.Peers.Of(endpoint.Hotkey));
        _settings = settings;
        _signer = signer;
        // Nonces must rise by 1 ms per caller per axon: SharedRequestSignatures keeps that floor per target address
        // (ip:port), shared by every endpoint actor that calls the same axon. The signed values may be shared with the
        // dendrite's other endpoints (DendriteActor passes one SharedRequestSignatures); alone, every call is signed.
        // Nonces use the real wall clock (the peer checks them against its own), never the injected test clock.
        _signatures = signatures ?? new SharedRequestSignatures(signer, TimeSpan.Zero);
        _time = time;
        _backoff = new BackoffPolicy(settings.BackoffMin, settings.BackoffMax, Jitter: BackoffJitter.Full).Validate();
        _random = random;
    }

    public static Props Props(EndpointInfo endpoint, DendriteSettings settings, IRequestSigner signer, TimeProvider time, Random random,
        IClientTransport transport, SharedRequestSignatures? signatures = null) =>
        Akka.Actor.Props.Create(() => new EndpointActor(endpoint, settings, signer, time, random, transport, signatures));

    /// <summary>The endpoint's address changed (same hotkey): the channel is rebuilt.</summary>
    public sealed record UpdateAddress(EndpointInfo Endpoint);

    /// <summary>
    /// A call of a fan-out round: its answer fills slot <paramref name="Index"/> of <paramref name="Round"/>.
    /// <paramref name="Prior"/>: this actor's outcome of an earlier round, held by the dendrite and handled first, in the
    /// same mailbox run (one run per endpoint per round instead of two). <paramref name="Batch"/>: the round's dispatch
    /// this call belongs to (<c>io = batch</c>): entered while the call is handled, so its request waits in its
    /// connection's outbox for the batch's last call, and the loop sends them all in one pass.
    /// </summary>
    public sealed record RoundCall(EndpointCall Call, FanOutRound Round, int Index, object? Prior = null, SendBatch? Batch = null);

    /// <summary>Where a call's answer goes: the actor that sent it (told an <see cref="EndpointReply"/>) or a round's slot.</summary>
    private readonly record struct Replier(IActorRef? Actor, FanOutRound? Round, int Index)
    {
        public void Reply(EndpointReply reply)
        {
            if (Round is not null) Round.TryComplete(Index, Round.FromReply(Index, reply));
            else Actor!.Tell(reply);
        }
    }

    /// <summary>Stop if nothing is in flight or queued (LRU eviction by the dendrite).</summary>
    public sealed record StopIfIdle
    {
        public static readonly StopIfIdle Instance = new();
    }

    /// <summary>
    /// Checks whether the actor has been without messages for <see cref="DendriteSettings.IdleTimeout"/> (and has nothing in
    /// flight or queued): then it stops; otherwise the check comes again when that could first be true. One timer per
    /// idle period instead of Akka's receive timeout, which re-schedules a scheduler entry on every message (two per
    /// answered call: the call and its outcome).
    /// </summary>
    internal sealed record IdleCheck
    {
        public static readonly IdleCheck Instance = new();
    }

    /// <summary>Asks for <see cref="EndpointStats"/>.</summary>
    public sealed record GetStats
    {
        public static readonly GetStats Instance = new();
    }

    /// <summary>Test hook: makes the actor throw, so its supervisor restarts (or stops) it with calls queued and in flight.</summary>
    internal sealed record Fail(string Why);

    /// <summary>Published on the event stream when a completion of a call already answered by a failure is dropped (tests wait for it).</summary>
    internal sealed record StaleCompletionDropped(string Hotkey, long CallId);

    /// <summary>A call's outcome. <paramref name="Answered"/>: the peer answered (whatever its code).</summary>
    private sealed record Completed(long CallId, Replier ReplyTo, EndpointReply Reply, bool WasTrial, bool Backward, bool Answered);

    protected override void PreStart() => Timers.StartSingleTimer(IdleCheck.Instance, IdleCheck.Instance, _settings.IdleTimeout);

    protected override void PreRestart(Exception reason, object message)
    {
        _failure = $"endpoint actor failed ({reason.GetType().Name}); the call was not completed";
        base.PreRestart(reason, message); // stops children, then PostStop answers everyone
    }

    protected override void PostStop()
    {
        // Every call is answered here first; then the calls in flight are cancelled with the channel, and their
        // completions reach a restarted instance (or the dead letters) and are dropped there, so the answer given here
        // is the only one. (In this order: a round's call completes on the transport's thread, and the channel's own
        // "connection disposed" would otherwise reach the round's slot first.)
        var reply = new EndpointReply(ReturnCode.UnknownException, _failure ?? "endpoint actor stopped before the call completed", null, TimeSpan.Zero);
        _accepting?.Reply(reply);
        _accepting = null;
        foreach (var replyTo in _running.Values) replyTo.Reply(reply);
        _running.Clear();
        while (_pending.TryDequeue(out var queued)) queued.ReplyTo.Reply(reply);
        _connection?.Dispose();
    }

    protected override void OnReceive(object message)
    {
        if (message is IdleCheck)
        {
            OnIdleCheck();
            return;
        }
        _lastMessage = Environment.TickCount64;
        switch (message)
        {
            case EndpointCall call:
                Accept(call, new Replier(Sender, null, 0));
                break;
            case RoundCall call:
            {
                // Arrives in the batch whatever happens here (sent, refused, queued, thrown): the last one wakes the loop.
                using var batch = call.Batch is { } b ? b.Enter() : default;
                if (call.Prior is not null) OnReceive(call.Prior); // the earlier outcome first, as if it came alone before
                Accept(call.Call, new Replier(null, call.Round, call.Index));
                break;
            }
            case Completed done when !_running.Remove(done.CallId):
                // Answered already, by the failure of the instance that sent it: never answer twice.
                Context.System.EventStream.Publish(new StaleCompletionDropped(_endpoint.Hotkey, done.CallId));
                break;
            case Completed done:
                OnCompleted(done);
                break;
            case Fail fail:
                throw new InvalidOperationException($"endpoint actor told to fail: {fail.Why}");
            case UpdateAddress update when update.Endpoint != _endpoint:
                _log.Info("endpoint {0} moved to {1}:{2}", update.Endpoint.Hotkey, update.Endpoint.Ip, update.Endpoint.Port);
                _endpoint = update.Endpoint;
                _target = SharedRequestSignatures.Target(update.Endpoint);
                _connection?.Dispose();
                _connection = null;
                break;
            case UpdateAddress:
                break;
            case GetStats:
                Sender.Tell(Stats());
                break;
            case StopIfIdle:
                if (_inFlight == 0 && _pending.Count == 0) Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    // Stops after IdleTimeout without messages (as a receive timeout would), checked lazily: the next check is due when
    // the idle time could first reach the timeout (at once busy: a full period again).
    private void OnIdleCheck()
    {
        var idleMs = Environment.TickCount64 - _lastMessage;
        var timeoutMs = (long)_settings.IdleTimeout.TotalMilliseconds;
        if (idleMs >= timeoutMs && _inFlight == 0 && _pending.Count == 0)
        {
            Context.Stop(Self);
            return;
        }
        var next = idleMs >= timeoutMs ? _settings.IdleTimeout : TimeSpan.FromMilliseconds(timeoutMs - idleMs);
        Timers.StartSingleTimer(IdleCheck.Instance, IdleCheck.Instance, next);
    }

    private EndpointStats Stats() => new(_endpoint.Hotkey, _calls, _successes, _latencyEma, _failures,
        _openUntil is { } until && until > _time.GetUtcNow() ? until : null, _inFlight, _pending.Count);

    private void Accept(EndpointCall call, Replier replyTo)
    {
        // Until the call is queued, started or answered, a failure inside this method still owes it an answer.
        _accepting = replyTo;
        AcceptCall(call, replyTo);
        _accepting = null;
    }

    private void AcceptCall(EndpointCall call, Replier replyTo)
    {
        var now = _time.GetUtcNow();
        if (_openUntil is { } until && now < until)
        {
            Refused(replyTo, call, new EndpointReply(ReturnCode.Backoff,
                $"endpoint backed off for {(until - now).TotalMilliseconds:F0} ms after {_failures} failure(s)", null, TimeSpan.Zero));
            return;
        }
        if (_openUntil is not null && _trialInFlight)
        {
            Refused(replyTo, call, new EndpointReply(ReturnCode.Backoff, "endpoint is being probed after backoff", null, TimeSpan.Zero));
            return;
        }
        if (_inFlight >= _settings.EndpointMaxInFlight)
        {
            if (_pending.Count >= _settings.EndpointQueueCapacity)
            {
                Refused(replyTo, call, new EndpointReply(ReturnCode.Backoff, "endpoint queue is full", null, TimeSpan.Zero));
                return;
            }
            _pending.Enqueue((call, replyTo, now + call.Timeout));
            return;
        }
        Start(call, replyTo, call.Timeout);
    }

    private void Start(EndpointCall call, Replier replyTo, TimeSpan timeout)
    {
        // A round's calls share one request message (the same call to every endpoint, the same hotkey): built once per round.
        var (request, size) = replyTo.Round is { } r ? r.RequestFor(call, _signer.Ss58Address) : NewRequest(call, _signer.Ss58Address);
        if (size > _settings.PeerMaxMessageSize)
        {
            replyTo.Reply(new EndpointReply(ReturnCode.RequestSerializationException,
                $"request exceeds peer's {_settings.PeerMaxMessageSize / (1024 * 1024)} MiB limit ({size} bytes)", null, TimeSpan.Zero));
            return;
        }
        _inFlight++;
        _calls++;
        var trial = _openUntil is not null;
        if (trial) _trialInFlight = true;
        var id = Interlocked.Increment(ref s_callIds);
        _running[id] = replyTo;
        if (_accepting == replyTo) _accepting = null;
        _connection ??= DendriteSeams.Connect(_transport, _endpoint, _settings);
        var target = _target;
        if (replyTo.Round is { } round)
        {
            _ = SendToRound(_connection, target, request, call.IsBackward, timeout, id, replyTo, trial, round, Self);
            return;
        }
        Send(_connection, target, request, call.IsBackward, timeout, null, 0).PipeTo(Self, success: r => new Completed(id, replyTo, r.Reply, trial, call.IsBackward, r.Reply.Response is not null),
            failure: ex => new Completed(id, replyTo, new EndpointReply(ReturnCode.UnknownException, $"{ex.GetType().Name}: {ex.Message}", null, TimeSpan.Zero), trial, call.IsBackward, false));
    }

    /// <summary>The request message of <paramref name="call"/> from <paramref name="hotkey"/>, and its size.</summary>
    internal static (TensorMessage Request, int Size) NewRequest(EndpointCall call, string hotkey)
    {
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = hotkey };
        request.Tensors.Add(call.Tensors);
        return (request, request.CalculateSize());
    }

    // A round's call: the outcome is reported for this actor first (the round tells it before its task completes, so this
    // actor's bookkeeping is ahead of anything the caller sends after the round), then the slot is filled, both on the
    // transport's thread without another hop.
    private async Task SendToRound(IPeerConnection connection, string target, TensorMessage request, bool backward, TimeSpan timeout, long id,
        Replier replyTo, bool trial, FanOutRound round, IActorRef self)
    {
        EndpointReply reply;
        EndpointResult? result;
        try
        {
            // Send runs synchronously up to its first wait: past a ready signature, the request is out when it returns.
            var sending = Send(connection, target, request, backward, timeout, round, replyTo.Index);
            if (round.CallOut()) _signatures.SignAheadIfArmed(); // the round's last request: sign the next round's value meanwhile
            (reply, result) = await sending.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            (reply, result) = (new EndpointReply(ReturnCode.UnknownException, $"{ex.GetType().Name}: {ex.Message}", null, TimeSpan.Zero), null);
        }
        // The outcome goes to this actor before the slot fills; the round holds it and tells it with the round's other
        // outcomes when the round completes (before its task does), one burst per round instead of one wake-up per answer.
        round.Report(replyTo.Index, self, new Completed(id, replyTo, reply, trial, backward, result is not null));
        round.TryComplete(replyTo.Index, result ?? round.FromReply(replyTo.Index, reply));
    }

    // With a round, the answer is read into the round's result on the transport's thread (Result; the reply carries the
    // peer's code and message, no Response); without one, the reply carries the answer (Result null).
    private async Task<(EndpointReply Reply, EndpointResult? Result)> Send(IPeerConnection connection, string target, TensorMessage request, bool backward,
        TimeSpan timeout, FanOutRound? round, int index)
    {
        // No token source per call: the transport enforces the deadline itself (every IPeerConnection does), and a
        // signature that is not ready at once (a round's first, or an actor signer) is waited for up to the deadline.
        Metadata headers;
        try
        {
            var signing = _signatures.CreateHeadersAsync(target);
            headers = signing.IsCompletedSuccessfully ? signing.Result : await signing.AsTask().WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return (new EndpointReply(ReturnCode.Timeout, "deadline exceeded while signing the request", null, TimeSpan.Zero), null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (new EndpointReply(ReturnCode.RequestSerializationException, $"could not sign the request ({e.GetType().Name})", null, TimeSpan.Zero), null);
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            var deadline = DateTime.UtcNow + timeout;
            var method = backward ? BittensorMethod.Backward : BittensorMethod.Forward;
            if (round is not null)
            {
                var landing = round.NewLanding(); // the answer's floats may be received straight into the result's array
                var read = await connection.CallAsync(method, request, headers, deadline, CancellationToken.None,
                    answer => round.Read(index, answer, Stopwatch.GetElapsedTime(started), landing), landing).ConfigureAwait(false);
                return (new EndpointReply(read.PeerCode, read.PeerMessage, null, read.Latency), read.Result);
            }
            var response = await connection.CallAsync(method, request, headers, deadline, CancellationToken.None);
            return (new EndpointReply(response.ReturnCode, response.Message, response, Stopwatch.GetElapsedTime(started)), null);
        }
        catch (RpcException e)
        {
            var code = e.StatusCode switch
            {
                StatusCode.DeadlineExceeded => ReturnCode.Timeout,
                StatusCode.Unavailable => ReturnCode.Unavailable,
                StatusCode.Unauthenticated => ReturnCode.Unauthenticated,
                _ => ReturnCode.UnknownException,
            };
            return (new EndpointReply(code, $"{e.StatusCode}: {e.Status.Detail}", null, Stopwatch.GetElapsedTime(started)), null);
        }
        catch (OperationCanceledException)
        {
            return (new EndpointReply(ReturnCode.Timeout, "deadline exceeded", null, Stopwatch.GetElapsedTime(started)), null);
        }
    }

    // Backoff and queue refusals answered here without a call are counted like answered calls (code Backoff/Timeout).
    private void Refused(Replier replyTo, EndpointCall call, EndpointReply reply)
    {
        DendriteMeters.Calls.Add(1, _peerTag, Method(call), new KeyValuePair<string, object?>("code", reply.Code.ToString()));
        replyTo.Reply(reply);
    }

    private static KeyValuePair<string, object?> Method(EndpointCall call) => new("method", call.IsBackward ? "Backward" : "Forward");

    private void OnCompleted(Completed done)
    {
        _inFlight--;
        if (done.WasTrial) _trialInFlight = false;
        var reply = done.Reply;
        if (reply.Code is ReturnCode.Unavailable or ReturnCode.Timeout)
        {
            if (reply.Code == ReturnCode.Unavailable && _inFlight == 0)
            {
                // grpc-dotnet's subchannel keeps its own reconnect backoff in real time; this actor's policy decides
                // when to try again, so start the next attempt from a fresh channel.
                _connection?.Dispose();
                _connection = null;
            }
            if (_failures < int.MaxValue) _failures++;
            var delay = _backoff.Delay(_failures - 1, _random.NextDouble());
            if (_failures >= _settings.FailuresBeforeBackoff)
            {
                _openUntil = _time.GetUtcNow() + delay;
                DendriteMeters.Backoffs.Add(1, _peerTag);
                _log.Debug("endpoint {0} {1}; backing off {2} ms (failure {3})", _endpoint.Hotkey, reply.Code, delay.TotalMilliseconds, _failures);
            }
        }
        else if (done.Answered)
        {
            // The peer answered (whatever its code): the transport is healthy again.
            _failures = 0;
            _openUntil = null;
        }
        if (reply.Code == ReturnCode.Success)
        {
            _successes++;
            var ms = reply.Latency.TotalMilliseconds;
            _latencyEma = _latencyEma == 0 ? ms : (_settings.LatencyEmaAlpha * ms) + ((1 - _settings.LatencyEmaAlpha) * _latencyEma);
        }
        var method = new KeyValuePair<string, object?>("method", done.Backward ? "Backward" : "Forward");
        DendriteMeters.Calls.Add(1, _peerTag, method, new KeyValuePair<string, object?>("code", reply.Code.ToString()));
        if (done.Answered) DendriteMeters.Latency.Record(reply.Latency.TotalMilliseconds, _peerTag, method);
        if (done.ReplyTo.Round is null) done.ReplyTo.Reply(reply); // a round's slot was filled on the transport's thread
        Drain();
    }

    private void Drain()
    {
        while (_inFlight < _settings.EndpointMaxInFlight && _pending.TryDequeue(out var next))
        {
            var now = _time.GetUtcNow();
            if (_openUntil is { } until && now < until)
            {
                Refused(next.ReplyTo, next.Call, new EndpointReply(ReturnCode.Backoff, "endpoint went into backoff while the call waited", null, TimeSpan.Zero));
                continue;
            }
            var remaining = next.Deadline - now;
            if (remaining <= TimeSpan.Zero)
            {
                Refused(next.ReplyTo, next.Call, new EndpointReply(ReturnCode.Timeout, "call waited in the endpoint queue past its deadline", null, TimeSpan.Zero));
                continue;
            }
            Start(next.Call, next.ReplyTo, remaining);
        }
    }
}

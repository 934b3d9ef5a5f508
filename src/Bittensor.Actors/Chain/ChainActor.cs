using Bittensor.Actors.Metrics;
using Akka.Actor;
using Akka.Event;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Chain;

/// <summary>
/// Owns one chain connection (<see cref="IChainBackend"/>): submits signed calls with per-key nonce tracking,
/// publishes <see cref="NewBlock"/>, <see cref="ChainConnected"/> and <see cref="ChainDisconnected"/> on the
/// EventStream, serves <see cref="ChainRead"/>s, and reconnects with capped exponential backoff when the backend
/// fails.
/// </summary>
/// <remarks>
/// Submission policy, per signing account: one call in flight at a time (so no two ever share a nonce); further
/// calls queue up to <see cref="SubtensorSettings.MaxPendingPerKey"/> (beyond: <c>QueueFull</c>). The nonce is read
/// from the backend once, then counted locally: a call that reached a block (succeeded or failed when applied)
/// consumed its nonce; any other failure re-reads the nonce before the next call. While the backend is down, queued
/// calls wait for the reconnect; calls already sent fail with <c>ChainUnavailable</c> (they may or may not have
/// landed, so the caller decides); any call still unanswered after <see cref="SubtensorSettings.SubmitTimeout"/>
/// fails with <c>Timeout</c>. On the localnet every block is final, so <see cref="WaitFor.Finalization"/> answers at
/// inclusion.
/// </remarks>
public sealed class ChainActor : ReceiveActor, IWithTimers
{
    private readonly Func<CancellationToken, Task<IChainBackend>> _backendFactory;
    private readonly SubtensorSettings _settings;
    private readonly Func<double> _random;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<AccountId, Lane> _lanes = [];

    private IChainBackend? _backend;
    private ChainIdentity? _identity;
    private CancellationTokenSource? _connectionCts;
    private int _generation;
    private int _attempt;
    private ulong? _lastBlock;
    // The runtime spec version last seen (across reconnects), for the log line when it changes.
    private uint? _specVersion;

    /// <summary>Creates the actor; prefer <see cref="Props"/>.</summary>
    public ChainActor(Func<CancellationToken, Task<IChainBackend>> backendFactory, SubtensorSettings settings, Func<double>? random)
    {
        _backendFactory = backendFactory;
        _settings = settings;
        _random = random ?? Random.Shared.NextDouble;
        Connecting();
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// Props for a chain actor. <paramref name="backendFactory"/> opens a fresh backend on every (re)connect;
    /// <paramref name="random"/> in [0, 1) drives the backoff jitter (inject a constant in tests).
    /// </summary>
    public static Props Props(Func<CancellationToken, Task<IChainBackend>> backendFactory, SubtensorSettings? settings = null,
        Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(backendFactory);
        // Props.Create's expression may only capture values: compute the settings before building it.
        var validated = (settings ?? SubtensorSettings.Default).Validate();
        return Akka.Actor.Props.Create(() => new ChainActor(backendFactory, validated, random));
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        Timers.StartPeriodicTimer(SweepKey, Sweep.Instance, SweepInterval);
        StartConnect();
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        DropBackend();
        foreach (var lane in _lanes.Values)
        {
            while (lane.Queue.TryDequeue(out var p)) Reply(p, null, Failed("ChainUnavailable", "the chain actor stopped"));
            if (lane.Retry is { } r) Reply(r, r.Nonce, Failed("ChainUnavailable", "the chain actor stopped"));
            if (lane.InFlight is { } f) Reply(f, f.Nonce, Failed("ChainUnavailable", "the chain actor stopped"));
        }
    }

    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);
    private const string SweepKey = "sweep";
    private const string ReconnectKey = "reconnect";
    private const string PumpKey = "pump";

    private void Connecting()
    {
        Receive<Connected>(m => m.Generation == _generation, OnConnected);
        Receive<ConnectFailed>(m => m.Generation == _generation, m => ScheduleReconnect(m.Error));
        Receive<Reconnect>(_ => StartConnect());
        Receive<Submit>(Enqueue);
        Receive<ChainRead>(_ => Sender.Tell(new Status.Failure(new ChainUnavailableException("the chain is reconnecting"))));
        CommonHandlers();
    }

    private void Ready()
    {
        Receive<BlockArrived>(m => m.Generation == _generation, m => PublishBlock(m.Block.Number));
        Receive<StreamEnded>(m => m.Generation == _generation,
            m => BackendFailed(m.Error ?? new ChainUnavailableException("the block stream ended")));
        Receive<BackendBroke>(m => m.Generation == _generation, m => BackendFailed(m.Error));
        Receive<NonceSynced>(m => m.Generation == _generation, OnNonceSynced);
        Receive<NonceSyncFailed>(m => m.Generation == _generation, m =>
        {
            if (_lanes.TryGetValue(m.Account, out var lane)) lane.FetchingNonce = false;
            if (_backend is IRemoteChainBackend)
            {
                // The node's client reconnects by itself: try again shortly instead of dropping the connection.
                _log.Warning("nonce read for {0} failed: {1}", m.Account.ToHex(), m.Error.Message);
                Timers.StartSingleTimer(PumpKey, PumpAll.Instance, _settings.Reconnect.Min);
                return;
            }
            BackendFailed(m.Error);
        });
        Receive<PumpAll>(_ =>
        {
            foreach (var account in _lanes.Keys.ToList()) Pump(account);
        });
        Receive<RemoteConnection>(m => m.Generation == _generation, OnRemoteConnection);
        Receive<RuntimeChanged>(m => m.Generation == _generation, m => OnSpecVersion(m.SpecVersion));
        Receive<Submit>(m =>
        {
            Enqueue(m);
            Pump(m.Signer.Account);
        });
        Receive<ChainRead>(OnRead);
        CommonHandlers();
    }

    private void CommonHandlers()
    {
        Receive<Completed>(OnCompleted);
        Receive<Sweep>(_ => SweepTimeouts());
        Receive<GetChainStatus>(_ => Sender.Tell(new ChainStatus(_backend is not null && _identity is not null, _lastBlock,
            _lanes.Values.Sum(l => l.Queue.Count))));
        // Stale messages from an earlier connection generation are dropped on purpose.
        Receive<Connected>(m => _ = m.Backend.DisposeAsync().AsTask());
        Receive<ConnectFailed>(_ => { });
        Receive<BlockArrived>(_ => { });
        Receive<StreamEnded>(_ => { });
        Receive<BackendBroke>(_ => { });
        Receive<NonceSynced>(_ => { });
        Receive<NonceSyncFailed>(_ => { });
        Receive<Reconnect>(_ => { });
        Receive<RemoteConnection>(_ => { });
        Receive<RuntimeChanged>(_ => { });
        Receive<PumpAll>(_ => { });
    }

    private void StartConnect()
    {
        var generation = ++_generation;
        var cts = new CancellationTokenSource();
        _connectionCts = cts;
        ConnectAsync(_backendFactory, cts.Token).PipeTo(Self,
            success: r => new Connected(r.Backend, r.Identity, r.Head, generation),
            failure: e => new ConnectFailed(Unwrap(e), generation));
    }

    private static async Task<(IChainBackend Backend, ChainIdentity Identity, BlockInfo Head)> ConnectAsync(
        Func<CancellationToken, Task<IChainBackend>> factory, CancellationToken ct)
    {
        var backend = await factory(ct);
        try
        {
            var identity = await backend.GetIdentityAsync(ct);
            var head = await backend.GetCurrentBlockAsync(ct);
            return (backend, identity, head);
        }
        catch
        {
            await backend.DisposeAsync();
            throw;
        }
    }

    private void OnConnected(Connected m)
    {
        _backend = m.Backend;
        _identity = m.Identity;
        _attempt = 0;
        _log.Info("chain connected to {0} at block {1}", m.Identity.Name, m.Head.Number);
        OnSpecVersion(m.Identity.SpecVersion);
        Become(Ready);
        Context.System.EventStream.Publish(new ChainConnected(m.Head.Number));
        PublishBlock(m.Head.Number);
        StartBlockStream(m.Backend, _connectionCts!.Token, m.Generation);
        if (m.Backend is IRemoteChainBackend remote)
        {
            var self = Self;
            var generation = m.Generation;
            remote.ConnectionChanged += c => self.Tell(new RemoteConnection(c, generation));
        }
        if (m.Backend is Bittensor.Chain.Rpc.SubstrateChainBackend node)
        {
            // A runtime upgrade (or a node that came back with another runtime) read by the client: said in the log.
            var self = Self;
            var generation = m.Generation;
            node.RuntimeChanged += spec => self.Tell(new RuntimeChanged(spec, generation));
            // One that changed between the identity read and this subscription is not missed.
            if (node.SpecVersion != m.Identity.SpecVersion) self.Tell(new RuntimeChanged(node.SpecVersion, generation));
        }
        foreach (var account in _lanes.Keys.ToList()) Pump(account);
    }

    private void StartBlockStream(IChainBackend backend, CancellationToken ct, int generation)
    {
        var self = Self;
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var block in backend.SubscribeBlocksAsync(ct).WithCancellation(ct))
                    self.Tell(new BlockArrived(block, generation));
                self.Tell(new StreamEnded(null, generation));
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // The connection was dropped on purpose.
            }
            catch (Exception e)
            {
                self.Tell(new StreamEnded(e, generation));
            }
        }, CancellationToken.None);
    }

    private void OnSpecVersion(uint spec)
    {
        if (_specVersion is { } before && before != spec) _log.Info("chain runtime changed: spec version {0} -> {1}", before, spec);
        _specVersion = spec;
    }

    private void OnRemoteConnection(RemoteConnection m)
    {
        var c = m.Change;
        if (c.Connected)
        {
            _log.Info("chain connection re-established");
            Context.System.EventStream.Publish(new ChainConnected(_lastBlock ?? 0));
            foreach (var account in _lanes.Keys.ToList()) Pump(account);
        }
        else
        {
            ChainMeters.Reconnects.Add(1);
            _log.Warning("chain connection lost ({0}); the client reconnects (attempt {1}, in {2})", c.Reason, c.Attempt, c.RetryIn);
            Context.System.EventStream.Publish(new ChainDisconnected(c.Reason ?? "connection lost", c.Attempt, c.RetryIn));
        }
    }

    private void PublishBlock(ulong number)
    {
        if (_lastBlock is { } last && number <= last) return;
        _lastBlock = number;
        Context.System.EventStream.Publish(new NewBlock(number));
    }

    private void BackendFailed(Exception error)
    {
        _log.Warning("chain backend failed: {0}: {1}", error.GetType().Name, error.Message);
        DropBackend();
        Become(Connecting);
        ScheduleReconnect(error);
    }

    private void ScheduleReconnect(Exception error)
    {
        var delay = _settings.Reconnect.Delay(_attempt, _random());
        ChainMeters.Reconnects.Add(1);
        _log.Warning("chain connection attempt failed ({0}: {1}); retry {2} in {3}", error.GetType().Name, error.Message, _attempt, delay);
        Timers.StartSingleTimer(ReconnectKey, Reconnect.Instance, delay);
        Context.System.EventStream.Publish(new ChainDisconnected($"{error.GetType().Name}: {error.Message}", _attempt, delay));
        _attempt++;
    }

    private void DropBackend()
    {
        _generation++;
        _connectionCts?.Cancel();
        _connectionCts?.Dispose();
        _connectionCts = null;
        if (_backend is { } old) _ = Task.Run(async () => await old.DisposeAsync());
        _backend = null;
        _identity = null;
        foreach (var lane in _lanes.Values)
        {
            lane.Nonce = null;
            lane.FetchingNonce = false;
        }
    }

    private void Enqueue(Submit m)
    {
        if (!_lanes.TryGetValue(m.Signer.Account, out var lane)) _lanes[m.Signer.Account] = lane = new Lane();
        var pending = new Pending(m, Sender, Context.System.Scheduler.Now + _settings.SubmitTimeout);
        if (lane.Queue.Count >= _settings.MaxPendingPerKey)
        {
            Reply(pending, null, Failed("QueueFull", $"{lane.Queue.Count} calls already wait for this key"));
            return;
        }
        lane.Queue.Enqueue(pending);
    }

    private void Pump(AccountId account)
    {
        if (_backend is not { } backend || _identity is not { } identity) return;
        if (!_lanes.TryGetValue(account, out var lane) || lane.InFlight is not null || (lane.Queue.Count == 0 && lane.Retry is null)) return;
        var generation = _generation;
        if (lane.Nonce is not { } nonce)
        {
            if (lane.FetchingNonce) return;
            lane.FetchingNonce = true;
            backend.GetNonceAsync(account, _connectionCts!.Token).AsTask().PipeTo(Self,
                success: n => new NonceSynced(account, n, generation),
                failure: e => new NonceSyncFailed(account, Unwrap(e), generation));
            return;
        }
        var p = lane.Retry ?? lane.Queue.Dequeue();
        lane.Retry = null;
        p.Nonce = nonce;
        lane.InFlight = p;
        var waitFor = p.Message.WaitFor ?? _settings.WaitFor;
        SubmitAsync(backend, identity, p.Message, nonce, waitFor, _connectionCts!.Token).PipeTo(Self,
            success: r => new Completed(account, p, r.Result, r.BackendError, generation),
            failure: e => new Completed(account, p, Failed("ChainUnavailable", Unwrap(e).Message), Unwrap(e), generation));
    }

    private static async Task<(CallResult Result, Exception? BackendError)> SubmitAsync(IChainBackend backend, ChainIdentity identity,
        Submit m, uint nonce, WaitFor waitFor, CancellationToken ct)
    {
        if (backend is IRemoteChainBackend remote) return await SubmitRemoteAsync(remote, m, nonce, waitFor, ct);
        SignedCall signed;
        try
        {
            signed = await m.Signer.SignAsync(backend.ForRuntime(m.Call), nonce, identity, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Never echo signer internals: the message may mention key material or a password prompt.
            return (Failed("SignerFailed", $"the signer refused to sign {m.Call.Name} ({e.GetType().Name})"), null);
        }
        try
        {
            return (await backend.SubmitAsync(signed, ct), null);
        }
        catch (Exception e)
        {
            return (Failed("ChainUnavailable", $"{e.GetType().Name}: {e.Message}"), e);
        }
    }

    private static async Task<(CallResult Result, Exception? BackendError)> SubmitRemoteAsync(IRemoteChainBackend backend, Submit m, uint nonce,
        WaitFor waitFor, CancellationToken ct)
    {
        PreparedExtrinsic prepared;
        try
        {
            prepared = await backend.PrepareAsync(m.Call, m.Signer.Account, nonce, ct);
        }
        catch (ChainNotSupportedException e)
        {
            return (Failed("NotSupported", e.Message), null);
        }
        catch (ChainUnavailableException e)
        {
            // Nothing was sent: the caller may retry safely.
            return (Failed("ChainUnavailable", $"not sent: {e.Message}"), null);
        }
        byte[] signature;
        try
        {
            signature = await m.Signer.SignPayloadAsync(m.Call, prepared.Payload, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (Failed("SignerFailed", $"the signer refused to sign {m.Call.Name} ({e.GetType().Name})"), null);
        }
        try
        {
            // The backend follows the extrinsic across disconnects (its fate is read back, never blindly resent).
            return (await backend.SubmitAsync(prepared, signature, waitFor == WaitFor.Finalization, ct), null);
        }
        catch (ChainUnavailableException e)
        {
            return (Failed("ChainUnavailable", e.Message), null);
        }
    }

    /// <summary>Pool refusals that a fresh nonce may cure: retried once after re-reading the nonce.</summary>
    private static bool Retryable(CallResult r) =>
        r is CallResult.Failed { Block: null, Error: "Stale" or "Future" or "PriorityTooLow" };

    private void OnNonceSynced(NonceSynced m)
    {
        if (!_lanes.TryGetValue(m.Account, out var lane)) return;
        lane.FetchingNonce = false;
        lane.Nonce ??= m.Nonce;
        Pump(m.Account);
    }

    private void OnCompleted(Completed m)
    {
        if (!_lanes.TryGetValue(m.Account, out var lane) || !ReferenceEquals(lane.InFlight, m.Pending)) return;
        lane.InFlight = null;
        var consumed = m.Result is CallResult.InBlock || m.Result is CallResult.Failed { Block: not null };
        if (m.Generation == _generation)
            lane.Nonce = consumed && m.Pending.Nonce is { } used ? used + 1 : null;
        if (Retryable(m.Result) && !m.Pending.Retried && !m.Pending.Replied && m.Generation == _generation)
        {
            _log.Info("{0} from {1}: {2}; re-reading the nonce and retrying once", m.Pending.Message.Call.Name, m.Account.ToHex(), m.Result);
            m.Pending.Retried = true;
            lane.Nonce = null;
            lane.Retry = m.Pending;
            Pump(m.Account);
            return;
        }
        if (!m.Result.IsSuccess)
            _log.Info("{0} from {1} failed: {2}", m.Pending.Message.Call.Name, m.Account.ToHex(), m.Result);
        Reply(m.Pending, m.Pending.Nonce, m.Result);
        if (m.BackendError is not null && m.Generation == _generation && _backend is not null)
            BackendFailed(m.BackendError);
        else
            Pump(m.Account);
    }

    private void OnRead(ChainRead m)
    {
        var backend = _backend!;
        var generation = _generation;
        var self = Self;
        var replyTo = Sender;
        var ct = _connectionCts!.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                replyTo.Tell(await m.RunAsync(backend, ct));
            }
            catch (Exception e)
            {
                replyTo.Tell(new Status.Failure(e));
                if ((e is ChainUnavailableException && backend is not IRemoteChainBackend) || e is ObjectDisposedException)
                    self.Tell(new BackendBroke(e, generation));
            }
        }, CancellationToken.None);
    }

    private void SweepTimeouts()
    {
        var now = Context.System.Scheduler.Now;
        foreach (var lane in _lanes.Values)
        {
            if (lane.InFlight is { Replied: false } f && f.Deadline <= now)
                Reply(f, f.Nonce, Failed("Timeout", $"no result within {_settings.SubmitTimeout}"));
            if (lane.Retry is { } r && r.Deadline <= now)
            {
                lane.Retry = null;
                Reply(r, r.Nonce, Failed("Timeout", $"not sent again within {_settings.SubmitTimeout}"));
            }
            if (lane.Queue.Count == 0 || lane.Queue.All(p => p.Deadline > now)) continue;
            var keep = new Queue<Pending>();
            while (lane.Queue.TryDequeue(out var p))
            {
                if (p.Deadline <= now) Reply(p, null, Failed("Timeout", $"not sent within {_settings.SubmitTimeout}"));
                else keep.Enqueue(p);
            }
            while (keep.TryDequeue(out var p)) lane.Queue.Enqueue(p);
        }
    }

    private static void Reply(Pending p, uint? nonce, CallResult result)
    {
        if (p.Replied) return;
        p.Replied = true;
        var call = new KeyValuePair<string, object?>("call", p.Message.Call.Name);
        ChainMeters.Submits.Add(1, call, new KeyValuePair<string, object?>("result", result is CallResult.Failed f ? ChainMeters.Errors.Of(f.Error) : "ok"));
        ChainMeters.SubmitLatency.Record(System.Diagnostics.Stopwatch.GetElapsedTime(p.Started).TotalMilliseconds, call);
        p.ReplyTo.Tell(new SubmitResult(p.Message.Id, p.Message.Call.Name, p.Message.Signer.Account, nonce, result));
    }

    private static CallResult.Failed Failed(string error, string message) => new(error, message);

    private static Exception Unwrap(Exception e) => e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException! : e;

    private sealed class Lane
    {
        public readonly Queue<Pending> Queue = new();
        public Pending? InFlight;
        public Pending? Retry;
        public uint? Nonce;
        public bool FetchingNonce;
    }

    private sealed class Pending(Submit message, IActorRef replyTo, DateTimeOffset deadline)
    {
        public Submit Message { get; } = message;
        public IActorRef ReplyTo { get; } = replyTo;
        public DateTimeOffset Deadline { get; } = deadline;
        public long Started { get; } = System.Diagnostics.Stopwatch.GetTimestamp();
        public uint? Nonce { get; set; }
        public bool Replied { get; set; }

        public bool Retried { get; set; }
    }

    private sealed record Connected(IChainBackend Backend, ChainIdentity Identity, BlockInfo Head, int Generation);

    private sealed record ConnectFailed(Exception Error, int Generation);

    private sealed record Reconnect
    {
        public static Reconnect Instance { get; } = new();
    }

    private sealed record Sweep
    {
        public static Sweep Instance { get; } = new();
    }

    private sealed record BlockArrived(BlockInfo Block, int Generation);

    private sealed record RemoteConnection(ChainConnectionChanged Change, int Generation);

    private sealed record RuntimeChanged(uint SpecVersion, int Generation);

    private sealed record PumpAll
    {
        public static PumpAll Instance { get; } = new();
    }

    private sealed record StreamEnded(Exception? Error, int Generation);

    private sealed record BackendBroke(Exception Error, int Generation);

    private sealed record NonceSynced(AccountId Account, uint Nonce, int Generation);

    private sealed record NonceSyncFailed(AccountId Account, Exception Error, int Generation);

    private sealed record Completed(AccountId Account, Pending Pending, CallResult Result, Exception? BackendError, int Generation);
}

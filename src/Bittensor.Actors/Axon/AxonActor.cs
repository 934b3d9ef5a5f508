using System.Net;
using Akka.Actor;
using Akka.Event;
using Bittensor.Actors.Metagraph;
using Bittensor.Actors.ModelHost;
using Bittensor.Protocol;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Axon;

/// <summary>
/// Owns one axon: binds its server transport (<see cref="AxonOptions.Transport"/>; by default the lean h2c server, or Kestrel;
/// HTTP/2 cleartext) in <c>PreStart</c>, stops it in <c>PostStop</c> or on <see cref="Unbind"/>. Calls go from the transport
/// thread straight to the model host (a <see cref="ModelHostActor"/>: the one stake-ordered queue), either one the axon
/// is given (a hosted model) or its own child <c>model</c> running <see cref="AxonHandlers"/> delegates. Ask
/// <see cref="GetBinding"/> to learn the port actually bound (useful with port 0). Its messages are local to the process
/// (<see cref="INoSerializationVerificationNeeded"/>): they hold endpoints, bindings and tensors as objects.
/// </summary>
public sealed class AxonActor : ReceiveActor, IWithUnboundedStash
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly AxonSettings _settings;
    private readonly AxonHandlers? _handlers;
    private IActorRef? _host;
    private readonly AxonOptions _options;
    private readonly IRequestAuthenticator _auth;
    private readonly ITensorWireCodec _codec;
    private readonly StakeBook _stakes;
    private readonly AxonStats _stats;
    private AxonReplySink _sink = null!;
    private AxonService? _service;
    private IServerBinding? _app;
    private IPEndPoint? _bound;
    private Exception? _failure;
    private readonly Exception? _authFailure;
    private readonly bool _ownAuth;
    private readonly KeysAhead _keysAhead = new();

    private AxonActor(AxonSettings settings, AxonHandlers? handlers, IActorRef? host, AxonOptions options, IRequestAuthenticator? auth, ITensorWireCodec? codec)
    {
        _settings = settings;
        _handlers = handlers;
        _host = host;
        _options = options;
        _ownAuth = auth is null;
        try
        {
            _auth = auth ?? (settings.DisableSignatureVerification ? new UnverifiedAuthenticator() : AxonSeams.CreateAuthenticator(settings, options.Time ?? TimeProvider.System,
                // From the journal's writer thread: Akka's logging adapter may be used from any thread.
                message => _log.Warning("{0}", message)));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            // The nonce store cannot be opened (locked by another process, not ours, not readable): refuse to serve
            // and say why through GetBinding, rather than serve without replay protection.
            _auth = new UnverifiedAuthenticator();
            _authFailure = new IOException($"the axon's nonce store cannot be opened: {e.Message}", e);
        }
        _codec = codec ?? AxonSeams.CreateCodec(settings);
        _stakes = new StakeBook();
        _stats = new AxonStats(options.Hotkey, () => _sink?.Waiting ?? 0);
        Starting();
    }

    /// <summary>Stash for calls that arrive before the server is bound.</summary>
    public IStash Stash { get; set; } = null!;

    /// <summary>
    /// Props of an axon serving <paramref name="handlers"/> with the given settings: the axon starts a child
    /// <c>model</c> (<see cref="ModelHostActor.ForHandlers"/>) with max_workers delegates at once and queue_capacity waiting.
    /// </summary>
    public static Props Props(AxonSettings settings, AxonHandlers handlers, AxonOptions? options = null) =>
        Props(settings, handlers, options, null, null);

    /// <summary>
    /// Props of an axon serving the hosted model <paramref name="modelHost"/> (a <see cref="ModelHostActor"/>): every
    /// authenticated call is Told to it as an <see cref="AxonModelCall"/>; its queue, batching and deadlines apply
    /// (bittensor.model.*; the axon's max_workers and queue_capacity do not). If the host stops, calls answer NotServingNucleus.
    /// </summary>
    public static Props Props(AxonSettings settings, IActorRef modelHost, AxonOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(modelHost);
        settings.Validate();
        return FactoryProps.For(() => new AxonActor(settings, null, modelHost, options ?? AxonOptions.Default, null, null));
    }

    internal static Props Props(AxonSettings settings, AxonHandlers handlers, AxonOptions? options, IRequestAuthenticator? auth, ITensorWireCodec? codec)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(handlers);
        settings.Validate();
        return FactoryProps.For(() => new AxonActor(settings, handlers, null, options ?? AxonOptions.Default, auth, codec));
    }

    /// <summary>Asks for the bound address; answered with <see cref="Bound"/> once listening, or a <see cref="Status.Failure"/>.</summary>
    public sealed record GetBinding : INoSerializationVerificationNeeded
    {
        /// <summary>The single instance.</summary>
        public static readonly GetBinding Instance = new();
    }

    /// <summary>The address the axon listens on (the real port when configured with 0).</summary>
    public sealed record Bound(IPEndPoint Endpoint) : INoSerializationVerificationNeeded;

    /// <summary>
    /// A hand-made stake table (TAO per hotkey SS58) for an axon without a metagraph (<c>btcli axon serve --axon.stakes</c>):
    /// sets call priorities, the stake rule, and who counts as registered (the listed hotkeys). An axon given
    /// <see cref="AxonOptions.Metagraph"/> takes its stakes from the metagraph's <see cref="MetagraphUpdated"/> snapshots instead.
    /// </summary>
    public sealed record UpdateStakes(IReadOnlyDictionary<string, double> Stakes) : INoSerializationVerificationNeeded;

    /// <summary>
    /// Answered with the number of verifying keys' tables the latest preparation of the stake snapshot's hotkeys built
    /// (<see cref="UpdateStakes"/>, <see cref="MetagraphUpdated"/>: the keys are prepared ahead of their first calls), once it
    /// is done; 0 when none was started. Tests and diagnostics.
    /// </summary>
    internal sealed record AwaitKeysPrepared : INoSerializationVerificationNeeded
    {
        public static readonly AwaitKeysPrepared Instance = new();
    }

    /// <summary>Answered with <see cref="WarmUpSeen"/> (tests: what the warm-up did, and the transport it did it through).</summary>
    internal sealed record GetWarmUp : INoSerializationVerificationNeeded
    {
        public static readonly GetWarmUp Instance = new();
    }

    /// <summary>The warm-up's calls answered past the model step and shed as a rehearsal; the axon's transport binding.</summary>
    internal sealed record WarmUpSeen(int Answered, int Shed, IServerBinding? Binding) : INoSerializationVerificationNeeded;

    /// <summary>Asks for an <see cref="AxonStatsSnapshot"/>.</summary>
    public sealed record GetStats : INoSerializationVerificationNeeded
    {
        /// <summary>The single instance.</summary>
        public static readonly GetStats Instance = new();
    }

    /// <summary>Stops listening (graceful: running calls finish); answered with <see cref="Akka.Done"/>.</summary>
    public sealed record Unbind : INoSerializationVerificationNeeded
    {
        /// <summary>The single instance.</summary>
        public static readonly Unbind Instance = new();
    }

    private sealed record Started(IServerBinding App, IPEndPoint Endpoint) : INoSerializationVerificationNeeded;

    private sealed record StartFailed(Exception Cause) : INoSerializationVerificationNeeded;

    private sealed record Stopped(IActorRef ReplyTo) : INoSerializationVerificationNeeded;

    /// <inheritdoc />
    protected override void PreStart()
    {
        _ = BittensorRuntime.Get(Context.System);
        // Stakes follow the subnet's metagraph: the current snapshot comes at once (when known), then one per sync.
        _options.Metagraph?.Tell(new SubscribeMetagraph(Self));
        var ownHost = _host is null;
        _host ??= Context.ActorOf(
            ModelHostActor.ForHandlers(_handlers!, _settings.MaxWorkers, _settings.QueueCapacity, _settings.CallTimeout, _options.Time),
            "model");
        Context.Watch(_host);
        _sink = new AxonReplySink(((ExtendedActorSystem)Context.System).Provider);
        // Inline delegates of the axon's own host run on the calls' threads (AxonService), up to max_workers at once.
        var service = _service = new AxonService(_settings, _auth, _codec, _host, _sink, _stakes, _stats, _options, ownHost ? _handlers : null);
        if (_settings.DisableSignatureVerification)
        {
            _log.Warning("!!! SIGNATURE VERIFICATION IS DISABLED on this axon (bittensor.axon.auth.disable_signature_verification = on): " +
                "any caller can claim any hotkey and replay requests. Use only for benchmark anchors. !!!");
        }
        if (_authFailure is not null)
        {
            Self.Tell(new StartFailed(_authFailure));
            return;
        }
        StartServer(service).PipeTo(Self, success: s => s, failure: ex => new StartFailed(ex));
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _options.Metagraph?.Tell(new UnsubscribeMetagraph(Self));
        // PostStop cannot await: Kestrel drains (up to 5 s) and closes in the background. Send Unbind first to wait for it.
        if (_app is not null) _ = StopServer(_app);
        // Writes the nonce store one last time so a restart does not reopen replays.
        (_auth as IDisposable)?.Dispose();
        _stats.Dispose();
    }

    private void Starting()
    {
        Receive<Started>(s =>
        {
            _app = s.App;
            _bound = s.Endpoint;
            _log.Info("axon listening on {0} (h2c), workers {1}, queue {2}", s.Endpoint, _settings.MaxWorkers, _settings.QueueCapacity);
            Context.System.EventStream.Publish(new Bound(s.Endpoint));
            Become(Serving);
            Stash.UnstashAll();
        });
        Receive<StartFailed>(f =>
        {
            _failure = f.Cause;
            _log.Error(f.Cause, "axon could not listen on {0}:{1}", _settings.Ip, _settings.Port);
            Become(Failed);
            Stash.UnstashAll();
        });
        Common();
        ReceiveAny(_ => Stash.Stash());
    }

    private void Serving()
    {
        Receive<GetBinding>(_ => Sender.Tell(new Bound(_bound!)));
        Receive<Unbind>(_ =>
        {
            var replyTo = Sender;
            var app = _app;
            _app = null;
            if (app is null)
            {
                replyTo.Tell(Akka.Done.Instance);
                return;
            }
            StopServer(app).PipeTo(Self, success: () => new Stopped(replyTo), failure: _ => new Stopped(replyTo));
        });
        Receive<Stopped>(s =>
        {
            _log.Info("axon stopped listening on {0}", _bound);
            s.ReplyTo.Tell(Akka.Done.Instance);
        });
        Common();
    }

    private void Failed()
    {
        Receive<GetBinding>(_ => Sender.Tell(new Status.Failure(_failure!)));
        Receive<Unbind>(_ => Sender.Tell(Akka.Done.Instance));
        Common();
    }

    private void Common()
    {
        Receive<UpdateStakes>(u =>
        {
            _stakes.Update(u.Stakes);
            PrepareKeysAhead(u.Stakes);
        });
        Receive<MetagraphUpdated>(m =>
        {
            _stakes.Update(m.Snapshot);
            _log.Debug("axon stakes from metagraph block {0} ({1} hotkeys)", m.Snapshot.Block, m.Snapshot.N);
            var hotkeys = m.Snapshot.Hotkeys;
            var stakes = m.Snapshot.S;
            PrepareKeysAhead(Enumerable.Range(0, Math.Min(hotkeys.Length, stakes.Length)).Select(i => KeyValuePair.Create(hotkeys[i], stakes[i])));
        });
        Receive<AwaitKeysPrepared>(_ => _keysAhead.Latest.PipeTo(Sender));
        Receive<GetStats>(_ => Sender.Tell(_stats.Snapshot(_sink.Waiting, _stakes) with { WarmedUp = _service?.WarmUpAnswered > 0 }));
        Receive<GetWarmUp>(_ => Sender.Tell(new WarmUpSeen(_service?.WarmUpAnswered ?? 0, _service?.WarmUpShed ?? 0, _app)));
        Receive<Terminated>(t => t.ActorRef.Equals(_host), _ =>
        {
            _log.Warning("axon: the model host {0} stopped; calls answer NotServingNucleus", _host!.Path);
            _sink.HostStopped("the model host has stopped");
        });
    }

    // The stake snapshot's hotkeys, highest stake first: their verifying keys' tables are built ahead of their first calls,
    // off the calls' threads (KeysAhead). Not when signatures are not verified.
    private void PrepareKeysAhead(IEnumerable<KeyValuePair<string, double>> stakes)
    {
        if (_settings.DisableSignatureVerification) return;
        _keysAhead.Schedule(stakes);
    }

    private static async Task StopServer(IServerBinding binding)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await binding.StopAsync(cts.Token);
        await binding.DisposeAsync();
    }

    /// <summary>A transport's warning (a setting it could not apply), in the axon's log: <c>btcli axon serve</c> prints it.</summary>
    private void TransportWarning(string message) => _log.Warning("axon: {0}", message);

    private async Task<Started> StartServer(AxonService service)
    {
        var settings = _settings;
        var transport = _options.Transport;
        if (transport is null && settings.Transport == "lean")
        {
            transport = new LeanServerTransport();
        }
        else if (transport is null)
        {
            if (Context.System.Settings.Setup.Get<Akka.Hosting.Logging.LoggerFactorySetup>() is { HasValue: true } logs)
            {
                // The process's logger factory (btcli): Kestrel logs under its own categories and the factory's levels decide.
                transport = new KestrelServerTransport(new Logging.ForwardingLoggerProvider(logs.Value.LoggerFactory), LogLevel.Trace);
            }
            else
            {
                // bittensor.axon.trace = on shows Kestrel's connection-level traces (HTTP/2 frames, resets) in the Akka log.
                var level = settings.Trace ? LogLevel.Trace : LogLevel.Warning;
                transport = new KestrelServerTransport(new AkkaLoggerProvider(_log, level), level);
            }
        }
        var binding = await transport.BindAsync(new ServerTransportOptions(settings.Ip, settings.Port, settings.MaxMessageSize, settings.MaxMessageSize,
            settings.EffectiveStreamsPerConnection, settings.ForwardMessageSize, settings.TransportLimits)
            {
                MaxCallsInFlight = settings.CallsInFlight, LoopbackCongestionControl = settings.LoopbackCongestionControl, Warn = TransportWarning,
                TargetWait = settings.TargetWait, TargetWaitInterval = settings.TargetWaitInterval, AdmitPerRead = settings.AdmitPerRead,
            },
            service, CancellationToken.None);
        // Warm-up (bittensor.axon.warm_up): two signed calls through the listener before the axon reports itself bound.
        // Only with the axon's own transport and authenticator (tests that inject either drive their calls themselves).
        if (settings.WarmUp && _options.Transport is null && _ownAuth && !settings.PerIpExemptLoopback
            && (settings.PerIpRequestsPerSecond > 0 || settings.PerIpConnections > 0))
        {
            // Loopback callers are limited per address: the warm-up would spend a real loopback caller's budget.
            _log.Info("axon warm-up skipped: loopback callers are limited per address (limits.per_ip.exempt_loopback = off)");
        }
        else if (settings.WarmUp && _options.Transport is null && _ownAuth)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var problem = await AxonWarmUp.RunAsync(binding, service, settings).ConfigureAwait(false);
            if (problem is null)
                _log.Debug("axon warm-up: two signed calls through {0} in {1:F1} ms", binding.Endpoint, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            else
                _log.Warning("axon warm-up call failed ({0}); serving anyway (bittensor.axon.warm_up)", problem);
        }
        return new Started(binding, binding.Endpoint);
    }
}

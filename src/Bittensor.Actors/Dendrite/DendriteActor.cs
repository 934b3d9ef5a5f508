using Akka.Actor;
using Bittensor.Protocol;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Dendrite;

/// <summary>Code-level options of a dendrite.</summary>
public sealed record DendriteOptions
{
    /// <summary>Options with every default.</summary>
    public static readonly DendriteOptions Default = new();

    /// <summary>Clock for backoff and queue deadlines; tests inject a manual one.</summary>
    public TimeProvider? Time { get; init; }

    /// <summary>Random source for backoff jitter; tests inject a seeded or fixed one.</summary>
    public Func<Random>? Random { get; init; }

    /// <summary>
    /// The client transport endpoint actors connect with; null: the one <see cref="DendriteSettings.Transport"/> names.
    /// </summary>
    public Bittensor.Protocol.IClientTransport? Transport { get; init; }

    /// <summary>How long a round's outcomes wait for the next round's calls (null: 20 ms); tests set it long and flush by hand.</summary>
    internal TimeSpan? OutcomeHold { get; init; }

    /// <summary>Runs a signing ahead (null: a thread-pool work item); tests hold them and run them by hand.</summary>
    internal Action<Func<Task>>? SignAheadRunner { get; init; }
}

/// <summary>
/// Owns one <c>EndpointActor</c> per remote endpoint, keyed by hotkey (a new address for the same hotkey goes to
/// the same actor, which rebuilds its channel). The number of endpoint actors is bounded: past
/// <see cref="DendriteSettings.MaxEndpoints"/> the least recently used ones are asked to stop when idle.
/// </summary>
public sealed class DendriteActor : UntypedActor, IWithTimers
{
    /// <summary>How long the outcomes of a round wait for the next round's calls before they are told alone (default).</summary>
    internal static readonly TimeSpan DefaultOutcomeHold = TimeSpan.FromMilliseconds(20);

    private readonly Dictionary<IActorRef, object> _heldOutcomes = [];
    private readonly TimeSpan _outcomeHold;
    private long _merged;
    private long _flushed;

    private readonly DendriteSettings _settings;
    private readonly IRequestSigner _signer;
    private readonly DendriteOptions _options;
    private readonly Dictionary<string, Entry> _endpoints = new(StringComparer.Ordinal);
    private readonly LinkedList<string> _lru = new();
    private readonly SharedRequestSignatures _signatures;
    private long _names;

    private DendriteActor(DendriteSettings settings, IRequestSigner signer, DendriteOptions options)
    {
        _settings = settings;
        _signer = signer;
        _options = options;
        // One signed header serves the calls to every endpoint made within settings.SignatureReuse (a round signs once).
        // Nonces use the real wall clock (the peers check them against their own), never the injected test clock.
        // With sign_ahead, rounds that follow each other find their signed value made while the last one's answers came.
        _outcomeHold = options.OutcomeHold ?? DefaultOutcomeHold;
        // On the loop dispatcher the next round's value is signed on the loop's thread too, after the round's last request
        // went out (the endpoint actor that sent it posts the signing there): no pool worker woken per round for it.
        var onLoop = DendriteDispatcher.OnLoop(settings, options.Transport);
        if (onLoop) DendriteDispatcher.Ensure(Context.System);
        var signAhead = options.SignAheadRunner ?? (onLoop ? DendriteDispatcher.SignAheadOnLoop : null);
        _signatures = new SharedRequestSignatures(signer, settings.SignatureReuse, signAhead: settings.SignAhead, background: signAhead);
    }

    /// <summary>Props of a dendrite signing with <paramref name="signer"/>.</summary>
    public static Props Props(DendriteSettings settings, IRequestSigner signer, DendriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(signer);
        settings.Validate();
        // bittensor.dendrite.dispatcher = loop (with the connections on the client's I/O loop): this actor and its endpoint
        // actors run on the loop's thread (ClientIoLoopExecutorConfigurator).
        return DendriteDispatcher.Apply(FactoryProps.For(() => new DendriteActor(settings, signer, options ?? DendriteOptions.Default)), settings, options?.Transport);
    }

    /// <summary>Sends <paramref name="Request"/> to the endpoint; the reply (<see cref="EndpointReply"/>) goes to the sender.</summary>
    public sealed record Call(EndpointInfo Endpoint, EndpointCall Request);

    /// <summary>
    /// Starts the calls of <paramref name="Round"/> toward its endpoints <paramref name="From"/> to
    /// <paramref name="From"/> + <paramref name="Count"/> − 1; their answers fill the round's slots, not a reply message.
    /// </summary>
    internal sealed record RoundCalls(FanOutRound Round, int From, int Count);

    /// <summary>
    /// A completed round's outcome messages for its endpoint actors (told before the round's task completes). Each is
    /// held and handed to its endpoint actor with that actor's next <see cref="RoundCalls"/> call (one mailbox run for
    /// both), or alone before any other message this actor sends it, or after the hold (<see cref="DefaultOutcomeHold"/>).
    /// </summary>
    internal sealed record RoundOutcomes(IReadOnlyList<(IActorRef Actor, object Message)> Outcomes);

    /// <summary>Tells every held outcome alone (the hold's timer; tests tell it to drive the hold's end).</summary>
    internal sealed record FlushOutcomes
    {
        public static readonly FlushOutcomes Instance = new();
    }

    /// <summary>The actor's timers (the held outcomes' flush).</summary>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Asks for <see cref="HeldOutcomeStats"/> (tests).</summary>
    internal sealed record GetHeldOutcomes
    {
        public static readonly GetHeldOutcomes Instance = new();
    }

    /// <summary>Outcomes held now, handed over with a next round call so far, and told alone so far.</summary>
    internal sealed record HeldOutcomeStats(int Held, long Merged, long Flushed);

    /// <summary>Asks for the <see cref="EndpointStats"/> of one hotkey (answered with null stats fields when unknown).</summary>
    public sealed record GetEndpointStats(string Hotkey);

    /// <summary>Asks for this dendrite's <see cref="SigningStats"/>.</summary>
    public sealed record GetSigningStats
    {
        /// <summary>The single instance.</summary>
        public static readonly GetSigningStats Instance = new();
    }

    /// <summary>Request signatures made (those signed ahead included), and calls that took a value signed ahead.</summary>
    public sealed record SigningStats(long Signed, long TakenAhead);

    /// <summary>Asks how many endpoint actors are alive; answered with an <see cref="int"/>.</summary>
    public sealed record GetEndpointCount
    {
        /// <summary>The single instance.</summary>
        public static readonly GetEndpointCount Instance = new();
    }

    private sealed class Entry(IActorRef actor, EndpointInfo info, LinkedListNode<string> node)
    {
        public IActorRef Actor { get; } = actor;
        public EndpointInfo Info { get; set; } = info;
        public LinkedListNode<string> Node { get; } = node;
    }

    /// <summary>
    /// An endpoint actor that throws is restarted (it answers its queued and in-flight calls UnknownException first,
    /// exactly once); one that fails to start, or fails more than 10 times within a minute, is stopped (the same
    /// answers), and the next call to its hotkey creates a fresh one.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(10, TimeSpan.FromMinutes(1), ex => ex switch
    {
        ActorInitializationException => Directive.Stop,
        _ => Directive.Restart,
    });

    /// <inheritdoc />
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case Call call:
            {
                var actor = EndpointFor(call.Endpoint);
                Flush(actor);
                actor.Forward(call.Request);
                break;
            }
            case RoundCalls round:
            {
                // io = batch: the calls told here form one batch; their requests leave in one pass of the client's I/O
                // loop, woken once when the last endpoint actor has handled its call (SendBatch).
                var batch = _settings.Io == "batch" && round.Count > 1 ? new SendBatch(round.Count) : null;
                for (var i = round.From; i < round.From + round.Count; i++)
                {
                    var actor = EndpointFor(round.Round.Endpoints[i]);
                    if (_heldOutcomes.Remove(actor, out var prior)) _merged++;
                    actor.Tell(new EndpointActor.RoundCall(round.Round.CallFor(i), round.Round, i, prior, batch));
                }
                break;
            }
            case RoundOutcomes outcomes:
                foreach (var (actor, outcome) in outcomes.Outcomes)
                {
                    Flush(actor); // one held already (a round that did not call it since): told first, in order
                    _heldOutcomes[actor] = outcome;
                }
                if (_heldOutcomes.Count > 0 && !Timers.IsTimerActive(FlushOutcomes.Instance))
                    Timers.StartSingleTimer(FlushOutcomes.Instance, FlushOutcomes.Instance, _outcomeHold);
                break;
            case FlushOutcomes:
                foreach (var (actor, outcome) in _heldOutcomes) actor.Tell(outcome);
                _flushed += _heldOutcomes.Count;
                _heldOutcomes.Clear();
                break;
            case GetHeldOutcomes:
                Sender.Tell(new HeldOutcomeStats(_heldOutcomes.Count, _merged, _flushed));
                break;
            case GetEndpointStats q:
                if (_endpoints.TryGetValue(q.Hotkey, out var e))
                {
                    Flush(e.Actor);
                    e.Actor.Forward(EndpointActor.GetStats.Instance);
                }
                else
                {
                    Sender.Tell(new EndpointStats(q.Hotkey, 0, 0, 0, 0, null));
                }
                break;
            case GetSigningStats:
                Sender.Tell(new SigningStats(_signatures.Signed, _signatures.AheadTaken));
                break;
            case GetEndpointCount:
                Sender.Tell(Context.GetChildren().Count());
                break;
            case Terminated t:
                _heldOutcomes.Remove(t.ActorRef);
                foreach (var (key, entry) in _endpoints)
                {
                    if (!entry.Actor.Equals(t.ActorRef)) continue;
                    _lru.Remove(entry.Node);
                    _endpoints.Remove(key);
                    break;
                }
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private IActorRef EndpointFor(EndpointInfo info)
    {
        if (_endpoints.TryGetValue(info.Hotkey, out var entry))
        {
            _lru.Remove(entry.Node);
            _lru.AddLast(entry.Node);
            if (entry.Info != info)
            {
                entry.Info = info;
                Flush(entry.Actor);
                entry.Actor.Tell(new EndpointActor.UpdateAddress(info));
            }
            return entry.Actor;
        }
        Evict();
        var random = _options.Random?.Invoke() ?? new Random();
        var actor = Context.ActorOf(DendriteDispatcher.Apply(
            EndpointActor.Props(info, _settings, _signer, _options.Time ?? TimeProvider.System, random, _options.Transport ?? _settings.ClientTransport,
                _signatures), _settings, _options.Transport), $"endpoint-{_names++}");
        Context.Watch(actor);
        _endpoints[info.Hotkey] = new Entry(actor, info, _lru.AddLast(info.Hotkey));
        return actor;
    }

    private void Evict()
    {
        // Forget the least recently used endpoints beyond the bound; each stops once it has nothing in flight
        // (a busy one finishes its calls and then stops at its idle timeout).
        while (_endpoints.Count >= _settings.MaxEndpoints && _lru.First is { } oldest)
        {
            var entry = _endpoints[oldest.Value];
            _lru.RemoveFirst();
            _endpoints.Remove(oldest.Value);
            Flush(entry.Actor);
            entry.Actor.Tell(EndpointActor.StopIfIdle.Instance);
        }
    }

    // Tells the endpoint actor its held outcome, if any, before whatever this actor sends it next.
    private void Flush(IActorRef actor)
    {
        if (!_heldOutcomes.Remove(actor, out var outcome)) return;
        actor.Tell(outcome);
        _flushed++;
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        foreach (var (actor, outcome) in _heldOutcomes) actor.Tell(outcome);
        _heldOutcomes.Clear();
        base.PostStop();
    }
}

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

    /// <summary>Runs a signing ahead (null: a thread-pool work item); tests hold them and run them by hand.</summary>
    internal Action<Func<Task>>? SignAheadRunner { get; init; }
}

/// <summary>
/// Owns one <c>EndpointActor</c> per remote endpoint, keyed by hotkey (a new address for the same hotkey goes to
/// the same actor, which rebuilds its channel). The number of endpoint actors is bounded: past
/// <see cref="DendriteSettings.MaxEndpoints"/> the least recently used ones are asked to stop when idle.
/// </summary>
public sealed class DendriteActor : UntypedActor
{
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
        _signatures = new SharedRequestSignatures(signer, settings.SignatureReuse, signAhead: settings.SignAhead, background: options.SignAheadRunner);
    }

    /// <summary>Props of a dendrite signing with <paramref name="signer"/>.</summary>
    public static Props Props(DendriteSettings settings, IRequestSigner signer, DendriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(signer);
        settings.Validate();
        return FactoryProps.For(() => new DendriteActor(settings, signer, options ?? DendriteOptions.Default));
    }

    /// <summary>Sends <paramref name="Request"/> to the endpoint; the reply (<see cref="EndpointReply"/>) goes to the sender.</summary>
    public sealed record Call(EndpointInfo Endpoint, EndpointCall Request);

    /// <summary>
    /// Starts the calls of <paramref name="Round"/> toward its endpoints <paramref name="From"/> to
    /// <paramref name="From"/> + <paramref name="Count"/> − 1; their answers fill the round's slots, not a reply message.
    /// </summary>
    internal sealed record RoundCalls(FanOutRound Round, int From, int Count);

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
                EndpointFor(call.Endpoint).Forward(call.Request);
                break;
            case RoundCalls round:
                for (var i = round.From; i < round.From + round.Count; i++)
                    EndpointFor(round.Round.Endpoints[i]).Tell(new EndpointActor.RoundCall(round.Round.CallFor(i), round.Round, i));
                break;
            case GetEndpointStats q:
                if (_endpoints.TryGetValue(q.Hotkey, out var e)) e.Actor.Forward(EndpointActor.GetStats.Instance);
                else Sender.Tell(new EndpointStats(q.Hotkey, 0, 0, 0, 0, null));
                break;
            case GetSigningStats:
                Sender.Tell(new SigningStats(_signatures.Signed, _signatures.AheadTaken));
                break;
            case GetEndpointCount:
                Sender.Tell(Context.GetChildren().Count());
                break;
            case Terminated t:
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
                entry.Actor.Tell(new EndpointActor.UpdateAddress(info));
            }
            return entry.Actor;
        }
        Evict();
        var random = _options.Random?.Invoke() ?? new Random();
        var actor = Context.ActorOf(
            EndpointActor.Props(info, _settings, _signer, _options.Time ?? TimeProvider.System, random, _options.Transport ?? _settings.ClientTransport,
                _signatures), $"endpoint-{_names++}");
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
            entry.Actor.Tell(EndpointActor.StopIfIdle.Instance);
        }
    }
}

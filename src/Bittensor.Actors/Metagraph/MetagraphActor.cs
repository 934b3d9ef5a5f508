using Akka.Actor;
using Akka.Event;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Metagraph;

/// <summary>
/// Keeps one subnet's <see cref="MetagraphSnapshot"/> current: syncs every
/// <see cref="MetagraphSettings.SyncEveryBlocks"/> <see cref="NewBlock"/>s (or at each epoch of the subnet with
/// <see cref="MetagraphSettings.SyncAtTempo"/>) through the ChainActor — blocks are pushed by the chain (a node's
/// new-head notifications), never polled — publishes
/// <see cref="MetagraphUpdated"/> (on the EventStream and to each <see cref="SubscribeMetagraph"/> subscriber), answers <see cref="GetMetagraph"/> at once (a sync runs off the actor; queries
/// during it get the previous snapshot), re-syncs when the chain (re)connects, and saves/loads the snapshot atomically so a restart answers before the
/// first sync. A missing or corrupt file is not an error: it is logged and replaced by a fresh sync.
/// A loaded snapshot is served only once the chain's genesis hash is known and equals the one the snapshot was saved
/// with: every localnet is network <c>local</c>, so the name alone does not tell a chain from another that left its
/// snapshot under the same name. A snapshot from another chain is logged and dropped; one saved without a genesis
/// (file version 1) is never served; the first sync replaces either.
/// </summary>
public sealed class MetagraphActor : ReceiveActor
{
    private readonly IActorRef _chain;
    private readonly ushort _netuid;
    private readonly string _network;
    private readonly MetagraphSettings _settings;
    private readonly string _path;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly List<IActorRef> _waiters = [];
    private readonly HashSet<IActorRef> _subscribers = [];

    private MetagraphSnapshot _snapshot;
    private bool _known;
    private bool _syncing;
    private bool _syncAgain;
    private int _blocksSinceSync;
    private ushort? _tempo;
    private bool _chainSeen; // a sync succeeded or the chain reported a connection since this actor started
    private MetagraphSnapshot? _unverified; // loaded from disk, not served until the chain's genesis matches its own
    private bool _verifying;
    private bool _verifyAgain;

    /// <summary>Creates the actor; prefer <see cref="Props"/>.</summary>
    public MetagraphActor(IActorRef chain, ushort netuid, string network, MetagraphSettings settings)
    {
        _chain = chain;
        _netuid = netuid;
        _network = network;
        _settings = settings;
        _path = MetagraphStore.DefaultPath(settings.Path, network, netuid);
        _snapshot = MetagraphSnapshot.Empty(network, netuid);

        Receive<GetMetagraph>(_ => Sender.Tell(_snapshot));
        Receive<SyncMetagraph>(_ =>
        {
            _waiters.Add(Sender);
            RequestSync();
        });
        Receive<SubscribeMetagraph>(m =>
        {
            if (!_subscribers.Add(m.Subscriber)) return;
            Context.Watch(m.Subscriber);
            if (_known) m.Subscriber.Tell(new MetagraphUpdated(_snapshot));
        });
        Receive<UnsubscribeMetagraph>(m =>
        {
            if (_subscribers.Remove(m.Subscriber)) Context.Unwatch(m.Subscriber);
        });
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
        Receive<NewBlock>(b =>
        {
            ++_blocksSinceSync;
            if (_settings.SyncAtTempo && _tempo is { } tempo)
            {
                // subtensor runs a subnet's epoch in the block where (block + netuid + 1) % (tempo + 1) == 0.
                if ((b.Number + _netuid + 1) % ((ulong)tempo + 1) == 0) RequestSync();
                return;
            }
            if (_blocksSinceSync >= _settings.SyncEveryBlocks) RequestSync();
        });
        // A (re)connected chain may have moved on while this actor could not read it.
        Receive<ChainConnected>(_ =>
        {
            _chainSeen = true;
            Verify();
            RequestSync();
        });
        Receive<Loaded>(OnLoaded);
        Receive<GenesisRead>(OnGenesisRead);
        Receive<SyncDone>(OnSyncDone);
        Receive<SyncFailed>(OnSyncFailed);
    }

    /// <summary>
    /// Props for the metagraph of <paramref name="netuid"/> on <paramref name="network"/> (the network names the
    /// snapshot folder), reading through <paramref name="chain"/> (a <see cref="ChainActor"/>).
    /// </summary>
    public static Props Props(IActorRef chain, ushort netuid, string network = "local", MetagraphSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(chain);
        ArgumentNullException.ThrowIfNull(network);
        var s = (settings ?? MetagraphSettings.Default).Validate();
        _ = MetagraphStore.DefaultPath(s.Path, network, netuid); // reject a network name that is not a folder name now
        return Akka.Actor.Props.Create(() => new MetagraphActor(chain, netuid, network, s));
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(NewBlock));
        Context.System.EventStream.Subscribe(Self, typeof(ChainConnected));
        if (!_settings.Save)
        {
            // Off means the disk is not used at all: a throwaway run (a test, a benchmark, the demo) must not serve
            // a snapshot another chain under the same network name left there.
            _log.Info("metagraph netuid {0}: snapshots off (bittensor.metagraph.save); nothing loaded from {1}", _netuid, _path);
            Self.Tell(new Loaded(null, null));
            return;
        }
        var path = _path;
        Task.Run(() => Load(path)).PipeTo(Self);
    }

    /// <inheritdoc />
    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    private static Loaded Load(string path)
    {
        if (!File.Exists(path)) return new Loaded(null, null);
        try
        {
            return new Loaded(MetagraphStore.Load(path), null);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            return new Loaded(null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private void OnLoaded(Loaded m)
    {
        if (m.Error is not null)
            _log.Warning("metagraph snapshot {0} is unreadable ({1}); starting from a fresh sync", _path, m.Error);
        else if (m.Snapshot is { } s)
        {
            if (s.Netuid != _netuid || !string.Equals(s.Network, _network, StringComparison.Ordinal))
                _log.Warning("metagraph snapshot {0} is for {1}/netuid {2}, not {3}/netuid {4}; ignoring it", _path, s.Network, s.Netuid, _network, _netuid);
            else if (s.GenesisHash is null)
                _log.Info("metagraph snapshot {0} does not name its chain (saved before snapshots held the genesis hash); not served, the first sync replaces it", _path);
            else if (!_known)
            {
                // Held back until the chain says it is the same chain (its genesis), which the first connection tells.
                _unverified = s;
                Verify();
            }
        }
        RequestSync();
    }

    /// <summary>Reads the chain's genesis hash to decide on a loaded snapshot (a read fails fast while the chain connects; a connection retries).</summary>
    private void Verify()
    {
        if (_unverified is null) return;
        if (_verifying)
        {
            _verifyAgain = true;
            return;
        }
        _verifying = true;
        _chain.Ask<string?>(new ChainRead<string?>(async (backend, ct) => Genesis(await backend.GetIdentityAsync(ct))), _settings.SyncTimeout)
            .PipeTo(Self, success: g => new GenesisRead(g), failure: _ => new GenesisRead(null));
    }

    private void OnGenesisRead(GenesisRead m)
    {
        _verifying = false;
        if (_unverified is not { } s) return;
        if (m.Genesis is null)
        {
            // Not connected yet: the next ChainConnected asks again (or the first sync replaces the snapshot).
            if (_verifyAgain)
            {
                _verifyAgain = false;
                Verify();
            }
            return;
        }
        _verifyAgain = false;
        _unverified = null;
        if (_known) return; // a sync already replaced it
        if (!string.Equals(s.GenesisHash, m.Genesis, StringComparison.Ordinal))
        {
            _log.Warning("metagraph snapshot {0} was saved from another chain (genesis {1}; this chain's is {2}); not served, the first sync replaces it",
                _path, s.GenesisHash, m.Genesis);
            return;
        }
        _snapshot = s;
        _known = true;
        foreach (var sub in _subscribers) sub.Tell(new MetagraphUpdated(s));
        _log.Info("metagraph netuid {0} loaded from {1} at block {2} (n = {3})", _netuid, _path, s.Block, s.N);
    }

    private void RequestSync()
    {
        if (_syncing)
        {
            _syncAgain = true;
            return;
        }
        _syncing = true;
        _blocksSinceSync = 0;
        SyncAsync(_chain, _network, _netuid, _settings.Save ? _path : null, _settings.SyncTimeout, _settings.SyncAtTempo)
            .PipeTo(Self, success: r => r, failure: e => new SyncFailed(e is AggregateException { InnerException: { } i } ? i : e));
    }

    private static async Task<SyncDone> SyncAsync(IActorRef chain, string network, ushort netuid, string? savePath, TimeSpan timeout, bool readTempo)
    {
        var (genesis, block, neurons, tempo) = await chain.Ask<(string?, BlockInfo, IReadOnlyList<NeuronInfo>, ushort?)>(
            new ChainRead<(string?, BlockInfo, IReadOnlyList<NeuronInfo>, ushort?)>(async (backend, ct) =>
            {
                var identity = await backend.GetIdentityAsync(ct);
                var head = await backend.GetCurrentBlockAsync(ct);
                var list = await backend.GetNeuronsAsync(netuid, ct);
                var t = readTempo ? (await backend.GetHyperparametersAsync(netuid, ct))?.Tempo : null;
                return (Genesis(identity), head, list, t);
            }), timeout);
        var snapshot = MetagraphSnapshot.FromNeurons(network, netuid, block.Number, neurons, genesis);
        string? saveError = null;
        if (savePath is not null)
        {
            try
            {
                MetagraphStore.Save(snapshot, savePath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                saveError = $"{e.GetType().Name}: {e.Message}";
            }
        }
        return new SyncDone(snapshot, saveError, tempo);
    }

    private void OnSyncDone(SyncDone m)
    {
        _syncing = false;
        _chainSeen = true;
        if (m.Tempo is { } t) _tempo = t;
        if (m.SaveError is not null) _log.Warning("could not save metagraph snapshot {0}: {1}", _path, m.SaveError);
        // The chain is the truth even when its block is lower than a loaded file's (a reset localnet restarts at 0).
        _snapshot = m.Snapshot;
        _known = true;
        _unverified = null;
        var updated = new MetagraphUpdated(_snapshot);
        // Subscribers first: a SyncMetagraph asker answered below may rely on them having been told.
        foreach (var sub in _subscribers) sub.Tell(updated);
        Context.System.EventStream.Publish(updated);
        if (_syncAgain)
        {
            // A SyncMetagraph that arrived mid-sync wants data read after it asked: keep its waiters for the next sync.
            _syncAgain = false;
            RequestSync();
            return;
        }
        foreach (var w in _waiters) w.Tell(updated);
        _waiters.Clear();
    }

    private void OnSyncFailed(SyncFailed m)
    {
        _syncing = false;
        _blocksSinceSync = _settings.SyncEveryBlocks - 1; // retry on the next block
        if (m.Error is ChainUnavailableException)
        {
            if (_syncAgain)
            {
                // Asked again while this read failed (the chain's ChainConnected, or another SyncMetagraph): read again
                // now, for the same waiters.
                _syncAgain = false;
                RequestSync();
                return;
            }
            if (!_chainSeen)
            {
                // At start the chain actor is still connecting: not a failure. The sync its ChainConnected starts answers
                // the SyncMetagraph askers waiting now (their ask's timeout bounds the wait); failing them here made a
                // role's start fail whenever its first sync beat the chain actor's connection (seen on a busy machine).
                _log.Info("metagraph netuid {0} waits for the chain to connect", _netuid);
                return;
            }
        }
        _log.Warning("metagraph netuid {0} sync failed: {1}: {2}", _netuid, m.Error.GetType().Name, m.Error.Message);
        foreach (var w in _waiters) w.Tell(new Status.Failure(m.Error));
        _waiters.Clear();
        _syncAgain = false;
    }

    private sealed record Loaded(MetagraphSnapshot? Snapshot, string? Error);

    private sealed record SyncDone(MetagraphSnapshot Snapshot, string? SaveError, ushort? Tempo);

    private sealed record SyncFailed(Exception Error);

    private sealed record GenesisRead(string? Genesis);

    /// <summary>The chain's genesis as snapshots hold it; null for an identity without a 32-byte genesis (then nothing loaded is ever served).</summary>
    private static string? Genesis(ChainIdentity identity) =>
        identity.GenesisHash.Length == 32 ? MetagraphSnapshot.GenesisHex(identity.GenesisHash.Span) : null;
}

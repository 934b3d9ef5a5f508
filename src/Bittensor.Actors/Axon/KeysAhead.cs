using Bittensor.Core.Crypto;

namespace Bittensor.Actors.Axon;

/// <summary>
/// Builds the verifying keys' tables of the callers an axon can expect — its stake snapshot's hotkeys (the metagraph's, or
/// <c>--axon.stakes</c>), highest stake first — ahead of their first calls (<see cref="Sr25519.PrepareVerifyingKeys"/>:
/// at most 512 keys, free places of the prepared-key cache only). Without it a caller's first call is verified without
/// tables (≈ 49 µs against ≈ 19) and its second builds them (≈ 139 µs) in the call's own turn: a fresh axon's first second
/// of load from many validators (session 23, benchmarks/results/axon.md "h1-firstsec"). Runs on the thread pool, one
/// preparation at a time (a snapshot that arrives while one runs is prepared after it; keys already prepared are skipped).
/// Only the snapshot's keys are ever prepared here: callers not in it still get tables only from their second sighting.
/// </summary>
internal sealed class KeysAhead
{
    private readonly Lock _gate = new();
    private Task<int> _latest = Task.FromResult(0);

    /// <summary>The latest preparation: completes with the number of tables it built.</summary>
    public Task<int> Latest
    {
        get { lock (_gate) return _latest; }
    }

    /// <summary>Prepares the keys of <paramref name="stakes"/> (hotkey SS58 → stake), highest stake first, after any preparation still running.</summary>
    public Task<int> Schedule(IEnumerable<KeyValuePair<string, double>> stakes)
    {
        var ordered = stakes.OrderByDescending(kv => kv.Value).Select(kv => kv.Key).ToArray();
        lock (_gate)
        {
            _latest = _latest.ContinueWith(_ => Prepare(ordered), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            return _latest;
        }
    }

    /// <summary>Prepares the keys of <paramref name="hotkeys"/> in order (addresses that do not decode are skipped); returns tables built.</summary>
    internal static int Prepare(IReadOnlyList<string> hotkeys) => Sr25519.PrepareVerifyingKeys(PublicKeys(hotkeys));

    private static IEnumerable<ReadOnlyMemory<byte>> PublicKeys(IReadOnlyList<string> hotkeys)
    {
        foreach (var h in hotkeys)
            if (Ss58.TryDecode(h, out var pk, out _) && pk.Length == 32) yield return pk;
    }
}

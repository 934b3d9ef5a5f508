using System.Globalization;
using System.Text;

namespace Bittensor.Protocol;

/// <summary>
/// Last accepted nonce per caller: an LRU map bounded by capacity, with entries dropped once their nonce
/// has left the acceptance window, optionally persisted to a file. Not thread-safe; the verifier locks.
/// Nonces are kept as the ticks of the caller's wall-clock time (no zone).
/// </summary>
internal sealed class NonceStore
{
    internal const string FileHeader = "bittensor-nonces v1";
    private const long OneMs = TimeSpan.TicksPerMillisecond;

    private readonly int _capacity;
    private readonly Dictionary<string, LinkedListNode<Entry>> _map;
    private readonly LinkedList<Entry> _lru = new();

    public NonceStore(int capacity)
    {
        _capacity = capacity;
        _map = new Dictionary<string, LinkedListNode<Entry>>(Math.Min(capacity, 1024), StringComparer.Ordinal);
    }

    public int Count => _map.Count;

    /// <summary>True when <paramref name="ss58"/> has an accepted nonce remembered (it signed correctly within the window).</summary>
    public bool Contains(string ss58) => _map.ContainsKey(ss58);

    public bool IsDirty { get; set; }

    /// <summary>
    /// True when <paramref name="nonce"/> may be accepted from <paramref name="ss58"/>: at least 1 ms newer than
    /// the newest accepted; or, with a <paramref name="reorderWindow"/>, inside that window below the newest,
    /// above the entry's floor and at least 1 ms away from every nonce accepted inside the window.
    /// </summary>
    public bool IsFresh(string ss58, long nonce, long reorderWindow)
    {
        if (!_map.TryGetValue(ss58, out var node)) return true;
        var e = node.Value;
        if (nonce - e.NonceTicks >= OneMs) return true;
        if (reorderWindow <= 0 || nonce <= e.NonceTicks - reorderWindow || nonce - e.Floor < OneMs) return false;
        if (e.NonceTicks - nonce < OneMs) return false;
        for (var i = 0; i < e.RecentCount; i++)
            if (Math.Abs(nonce - e.Recent![i]) < OneMs) return false;
        return true;
    }

    /// <summary>Records an accepted nonce (checked with <see cref="IsFresh"/> under the same lock), makes the caller most recently used, and trims.</summary>
    public void Record(string ss58, long nonce, long reorderWindow, long dropBelowTicks)
    {
        if (_map.TryGetValue(ss58, out var node))
        {
            var e = node.Value;
            if (nonce > e.NonceTicks)
            {
                if (reorderWindow > 0) e.Remember(e.NonceTicks, reorderWindow, nonce);
                e.NonceTicks = nonce;
            }
            else
            {
                e.Remember(nonce, reorderWindow, e.NonceTicks);
            }
            _lru.Remove(node);
            _lru.AddFirst(node);
        }
        else
        {
            _map[ss58] = _lru.AddFirst(new Entry(ss58, nonce, 0));
        }
        IsDirty = true;
        Trim(dropBelowTicks);
    }

    /// <summary>
    /// Drops entries whose nonce is below <paramref name="dropBelowTicks"/>, then the least recently used
    /// ones beyond capacity. Dropping an expired entry is safe: a replay can only carry a nonce at or below
    /// the stored one, and any such nonce is below the window's lower edge, so the stale check rejects it
    /// without the entry. Dropping a live entry for capacity is the one way replay protection weakens:
    /// it takes <c>capacity</c> distinct signed callers inside one window to do so.
    /// </summary>
    public void Trim(long dropBelowTicks)
    {
        // LRU order approximates nonce order, so expired entries gather at the tail.
        while (_lru.Last is { } last && (last.Value.NonceTicks < dropBelowTicks || _map.Count > _capacity))
        {
            _map.Remove(last.Value.Ss58);
            _lru.RemoveLast();
            IsDirty = true;
        }
    }

    /// <summary>Entries oldest first, for writing.</summary>
    public (string Ss58, long NonceTicks)[] Snapshot()
    {
        var result = new (string, long)[_map.Count];
        var i = 0;
        for (var node = _lru.Last; node is not null; node = node.Previous) result[i++] = (node.Value.Ss58, node.Value.NonceTicks);
        return result;
    }

    /// <summary>
    /// Entries oldest first into <paramref name="buffer"/> (replaced by one twice as large, or as large as needed, when
    /// they do not fit: a kept buffer is reused, no per-snapshot array); returns how many.
    /// </summary>
    public int CopyTo(ref (string Ss58, long NonceTicks)[] buffer)
    {
        if (buffer.Length < _map.Count) buffer = new (string, long)[Math.Max(_map.Count, 2 * buffer.Length)];
        var i = 0;
        for (var node = _lru.Last; node is not null; node = node.Previous) buffer[i++] = (node.Value.Ss58, node.Value.NonceTicks);
        return i;
    }

    public static string Serialize((string Ss58, long NonceTicks)[] entries)
    {
        var sb = new StringBuilder(FileHeader.Length + 1 + entries.Length * 70);
        sb.Append(FileHeader).Append('\n');
        foreach (var (ss58, ticks) in entries)
            sb.Append(ss58).Append(' ').Append(ticks.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return sb.ToString();
    }

    /// <summary>Loads a file written by <see cref="Serialize"/>, oldest first; malformed lines are skipped.</summary>
    public void Load(string text, long dropBelowTicks)
    {
        using var reader = new StringReader(text);
        if (!string.Equals(reader.ReadLine(), FileHeader, StringComparison.Ordinal))
            throw new InvalidDataException($"not a nonce store file (expected header '{FileHeader}')");
        while (reader.ReadLine() is { } line)
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0 || space > 64) continue;
            if (!long.TryParse(line.AsSpan(space + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)) continue;
            Restore(line[..space], ticks, dropBelowTicks);
        }
        IsDirty = false;
    }

    /// <summary>
    /// Merges one persisted nonce (snapshot or journal line): keeps the newer of it and what is held. Which nonces below
    /// the newest were used is not kept on disk, so after a restart nothing at or below the newest is accepted
    /// (floor = newest).
    /// </summary>
    public void Restore(string ss58, long ticks, long dropBelowTicks)
    {
        if (_map.TryGetValue(ss58, out var existing))
        {
            if (existing.Value.NonceTicks >= ticks) return;
            _lru.Remove(existing);
            _map.Remove(ss58);
        }
        _map[ss58] = _lru.AddFirst(new Entry(ss58, ticks, ticks));
        Trim(dropBelowTicks);
    }

    private sealed class Entry(string ss58, long nonceTicks, long floor)
    {
        private const int MaxRecent = 32;

        public string Ss58 { get; } = ss58;

        /// <summary>The newest accepted nonce.</summary>
        public long NonceTicks { get; set; } = nonceTicks;

        /// <summary>Nonces at or below this count as used (raised when a remembered nonce is forgotten early).</summary>
        public long Floor { get; private set; } = floor;

        public long[]? Recent { get; private set; }

        public int RecentCount { get; private set; }

        /// <summary>Remembers an accepted nonce below the newest, forgetting those that left the window.</summary>
        public void Remember(long nonce, long reorderWindow, long newest)
        {
            Recent ??= new long[MaxRecent];
            var kept = 0;
            for (var i = 0; i < RecentCount; i++)
                if (Recent[i] > newest - reorderWindow) Recent[kept++] = Recent[i];
            RecentCount = kept;
            if (RecentCount == MaxRecent)
            {
                // Forgetting a nonce still inside the window must not reopen it: raise the floor over it.
                var min = 0;
                for (var i = 1; i < RecentCount; i++)
                    if (Recent[i] < Recent[min]) min = i;
                Floor = Math.Max(Floor, Recent[min]);
                Recent[min] = Recent[--RecentCount];
            }
            Recent[RecentCount++] = nonce;
        }
    }
}

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

    private readonly int _capacity;
    private readonly Dictionary<string, LinkedListNode<Entry>> _map;
    private readonly LinkedList<Entry> _lru = new();

    public NonceStore(int capacity)
    {
        _capacity = capacity;
        _map = new Dictionary<string, LinkedListNode<Entry>>(Math.Min(capacity, 1024), StringComparer.Ordinal);
    }

    public int Count => _map.Count;

    public bool IsDirty { get; set; }

    public bool TryGet(string ss58, out long nonceTicks)
    {
        if (_map.TryGetValue(ss58, out var node))
        {
            nonceTicks = node.Value.NonceTicks;
            return true;
        }
        nonceTicks = 0;
        return false;
    }

    /// <summary>Stores the nonce as the caller's newest, makes it most recently used, and trims.</summary>
    public void Record(string ss58, long nonceTicks, long dropBelowTicks)
    {
        if (_map.TryGetValue(ss58, out var node))
        {
            node.Value.NonceTicks = nonceTicks;
            _lru.Remove(node);
            _lru.AddFirst(node);
        }
        else
        {
            _map[ss58] = _lru.AddFirst(new Entry(ss58, nonceTicks));
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
            var ss58 = line[..space];
            if (_map.TryGetValue(ss58, out var existing) && existing.Value.NonceTicks >= ticks) continue;
            Record(ss58, ticks, dropBelowTicks);
        }
        IsDirty = false;
    }

    private sealed class Entry(string ss58, long nonceTicks)
    {
        public string Ss58 { get; } = ss58;

        public long NonceTicks { get; set; } = nonceTicks;
    }
}

using System.Buffers.Binary;
using System.Collections.Immutable;
using Bittensor.Chain.Substrate;

namespace Bittensor.Chain.Local;

/// <summary>
/// The localnet's state at one block as Substrate storage: every item <see cref="LocalnetMetadata"/> lists, under
/// its real key (<c>twox128(pallet) ‖ twox128(item) ‖ hashed keys</c>) with its SCALE value, sorted by key so that
/// <c>state_getKeysPaged</c> pages like a node. Immutable; views of successive blocks share structure (a persistent
/// sorted tree), so a new block costs only the keys it changed (see <see cref="LocalnetStorageTracker"/>).
/// Items whose value is absent are simply not present (the RPC answers null and clients apply the default).
/// </summary>
public sealed class LocalnetStorage
{
    private readonly ImmutableSortedSet<StorageEntry> _entries;

    internal LocalnetStorage(ulong number, byte[] blockHash, ImmutableSortedSet<StorageEntry> entries)
    {
        Number = number;
        BlockHash = blockHash;
        _entries = entries;
    }

    /// <summary>The block this state belongs to.</summary>
    public ulong Number { get; }

    /// <summary>That block's hash.</summary>
    public byte[] BlockHash { get; }

    /// <summary>Number of keys.</summary>
    public int Count => _entries.Count;

    /// <summary>The value under <paramref name="key"/>, or null.</summary>
    public byte[]? Get(ReadOnlySpan<byte> key) =>
        _entries.TryGetValue(new StorageEntry(key.ToArray(), null), out var e) ? e.Value : null;

    /// <summary>Up to <paramref name="count"/> keys starting with <paramref name="prefix"/>, in order, strictly after <paramref name="startKey"/> when given.</summary>
    public List<byte[]> KeysPaged(ReadOnlySpan<byte> prefix, int count, ReadOnlySpan<byte> startKey)
    {
        var result = new List<byte[]>(Math.Min(count, 1024));
        int i;
        if (startKey.Length > 0 && startKey.SequenceCompareTo(prefix) >= 0)
        {
            i = _entries.IndexOf(new StorageEntry(startKey.ToArray(), null));
            i = i >= 0 ? i + 1 : ~i;
        }
        else
        {
            i = _entries.IndexOf(new StorageEntry(prefix.ToArray(), null));
            if (i < 0) i = ~i;
        }
        for (; i < _entries.Count && result.Count < count; i++)
        {
            var key = _entries[i].Key;
            if (!key.AsSpan().StartsWith(prefix)) break;
            result.Add(key);
        }
        return result;
    }

    /// <summary>All entries in key order (tests compare views with it).</summary>
    internal IEnumerable<StorageEntry> Entries => _entries;

    /// <summary>Prefix of a storage item: <c>twox128(pallet) ‖ twox128(item)</c>.</summary>
    public static byte[] Prefix(string pallet, string item) => StorageKeys.Prefix(pallet, item);

    /// <summary>The state at <paramref name="block"/> (which <paramref name="s"/> is the state after), built from scratch (O(state)).</summary>
    internal static LocalnetStorage Build(LocalnetState s, LocalnetBlock block, LocalnetOptions options) =>
        new LocalnetStorageTracker().Next(s, block, options);

    /// <summary>The committed nonce in a <c>System.Account</c> value (its first field).</summary>
    public static uint NonceOf(byte[]? accountInfo) => accountInfo is { Length: >= 4 } ? BinaryPrimitives.ReadUInt32LittleEndian(accountInfo) : 0;
}

/// <summary>One storage key and its SCALE value (null only in lookup probes); ordered by key.</summary>
internal readonly record struct StorageEntry(byte[] Key, byte[]? Value)
{
    /// <summary>An empty set ordered by key bytes.</summary>
    public static readonly ImmutableSortedSet<StorageEntry> EmptySet = ImmutableSortedSet.Create<StorageEntry>(KeyOrder.Instance);

    private sealed class KeyOrder : IComparer<StorageEntry>
    {
        public static readonly KeyOrder Instance = new();

        public int Compare(StorageEntry x, StorageEntry y) => x.Key.AsSpan().SequenceCompareTo(y.Key);
    }
}

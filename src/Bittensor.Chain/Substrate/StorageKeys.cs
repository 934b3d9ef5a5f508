using System.Collections.Immutable;
using Bittensor.Core.Crypto;

namespace Bittensor.Chain.Substrate;

/// <summary>
/// Storage keys from metadata: <c>twox128(pallet prefix) ‖ twox128(item)</c>, then for each key part its hasher
/// applied to the part's SCALE encoding (SUBSTRATE.md §4.4). Hashers and key types come from metadata, never from
/// code, so the same call works for every runtime that has the item.
/// </summary>
public static class StorageKeys
{
    /// <summary><c>twox128(pallet) ‖ twox128(item)</c> (32 bytes); with an empty item, the 16-byte pallet prefix.</summary>
    public static byte[] Prefix(string pallet, string item)
    {
        ArgumentNullException.ThrowIfNull(pallet);
        ArgumentNullException.ThrowIfNull(item);
        var key = new byte[item.Length == 0 ? 16 : 32];
        Twox.Hash128(System.Text.Encoding.UTF8.GetBytes(pallet), key.AsSpan(0, 16));
        if (item.Length != 0) Twox.Hash128(System.Text.Encoding.UTF8.GetBytes(item), key.AsSpan(16, 16));
        return key;
    }

    /// <summary>The hasher's output for <paramref name="encodedKey"/> (for the Concat hashers, hash then key).</summary>
    public static byte[] Hash(StorageHasher hasher, ReadOnlySpan<byte> encodedKey)
    {
        switch (hasher)
        {
            case StorageHasher.Blake2_128:
                return Blake2b.Hash128(encodedKey);
            case StorageHasher.Blake2_256:
                return Blake2b.Hash256(encodedKey);
            case StorageHasher.Blake2_128Concat:
                return [.. Blake2b.Hash128(encodedKey), .. encodedKey];
            case StorageHasher.Twox128:
            {
                var o = new byte[16];
                Twox.Hash128(encodedKey, o);
                return o;
            }
            case StorageHasher.Twox256:
            {
                var o = new byte[32];
                Twox.Hash256(encodedKey, o);
                return o;
            }
            case StorageHasher.Twox64Concat:
            {
                var o = new byte[8 + encodedKey.Length];
                Twox.Hash64(encodedKey, o.AsSpan(0, 8));
                encodedKey.CopyTo(o.AsSpan(8));
                return o;
            }
            case StorageHasher.Identity:
                return encodedKey.ToArray();
            default:
                throw new ArgumentOutOfRangeException(nameof(hasher), hasher, "unknown storage hasher");
        }
    }

    /// <summary>Bytes of hash a hasher puts before the key itself (the whole output for the non-Concat hashers).</summary>
    public static int HashLength(StorageHasher hasher) => hasher switch
    {
        StorageHasher.Blake2_128 or StorageHasher.Twox128 or StorageHasher.Blake2_128Concat => 16,
        StorageHasher.Blake2_256 or StorageHasher.Twox256 => 32,
        StorageHasher.Twox64Concat => 8,
        _ => 0,
    };

    /// <summary>
    /// The key of <c>pallet.item(keys…)</c>. Fewer key parts than the map has gives a prefix (for
    /// <c>state_getKeysPaged</c>); more is an error. Throws <see cref="MetadataException"/> for an unknown item and
    /// <see cref="ArgumentException"/> when a key does not fit its type.
    /// </summary>
    public static byte[] Key(RuntimeMetadata metadata, string pallet, string item, params ScaleValue[] keys)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(keys);
        var (p, entry) = Find(metadata, pallet, item);
        if (keys.Length > entry.Hashers.Length)
            throw new ArgumentException($"{pallet}.{item} takes {entry.Hashers.Length} key(s), got {keys.Length}", nameof(keys));
        var parts = KeyTypes(metadata, pallet, entry);
        var result = new List<byte>(Prefix(p.StoragePrefix ?? p.Name, entry.Name));
        for (var i = 0; i < keys.Length; i++)
        {
            var encoded = metadata.Types.Encode(parts[i], keys[i]);
            result.AddRange(Hash(entry.Hashers[i], encoded));
        }
        return [.. result];
    }

    /// <summary>
    /// Recovers the key parts from a full storage key of <c>pallet.item</c> (as <c>state_getKeysPaged</c> lists them):
    /// decoded values for the Concat and Identity hashers, the raw hash bytes for the others.
    /// </summary>
    public static ImmutableArray<ScaleValue> DecodeKey(RuntimeMetadata metadata, string pallet, string item, ReadOnlySpan<byte> key)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var (p, entry) = Find(metadata, pallet, item);
        var prefix = Prefix(p.StoragePrefix ?? p.Name, entry.Name);
        if (!key.StartsWith(prefix)) throw new ArgumentException($"the key is not under {pallet}.{item}", nameof(key));
        var parts = KeyTypes(metadata, pallet, entry);
        var r = new Bittensor.Core.Scale.ScaleReader(key[prefix.Length..]);
        var values = ImmutableArray.CreateBuilder<ScaleValue>(parts.Length);
        for (var i = 0; i < parts.Length; i++)
        {
            var h = entry.Hashers[i];
            var hash = r.Raw(HashLength(h));
            values.Add(h is StorageHasher.Blake2_128Concat or StorageHasher.Twox64Concat or StorageHasher.Identity
                ? metadata.Types.Decode(parts[i], ref r)
                : ScaleValue.Bytes(hash));
        }
        r.EnsureEnd();
        return values.MoveToImmutable();
    }

    /// <summary>
    /// Decodes a storage value of <c>pallet.item</c>; <paramref name="raw"/> null (key absent) gives the default
    /// for a default-valued item and null for an optional one.
    /// </summary>
    public static ScaleValue? DecodeValue(RuntimeMetadata metadata, string pallet, string item, ReadOnlySpan<byte> raw, bool present = true)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var (_, entry) = Find(metadata, pallet, item);
        if (!present)
            return entry.Modifier == StorageModifier.Default ? metadata.Types.Decode(entry.ValueType, entry.Default.AsSpan()) : null;
        return metadata.Types.Decode(entry.ValueType, raw);
    }

    private static (PalletMetadata, StorageEntryMetadata) Find(RuntimeMetadata metadata, string pallet, string item)
    {
        var p = metadata.Pallet(pallet);
        var entry = p.FindStorage(item) ?? throw new MetadataException($"pallet {pallet} has no storage item '{item}'");
        return (p, entry);
    }

    private static ImmutableArray<uint> KeyTypes(RuntimeMetadata metadata, string pallet, StorageEntryMetadata entry)
    {
        if (entry.Hashers.IsEmpty || entry.KeyType is not { } kt) return [];
        if (entry.Hashers.Length == 1) return [kt];
        return metadata.Types[kt].Def is TupleDef t && t.Elements.Length == entry.Hashers.Length
            ? t.Elements
            : throw new MetadataException($"{pallet}.{entry.Name} has {entry.Hashers.Length} hashers but its key type {kt} is not a tuple of that size");
    }
}

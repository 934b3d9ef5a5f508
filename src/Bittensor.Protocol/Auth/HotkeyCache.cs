using System.Collections.Concurrent;
using Bittensor.Core.Crypto;

namespace Bittensor.Protocol;

/// <summary>
/// Decoded request hotkeys: SS58 address → 32-byte public key, so an axon does not Base58-decode and BLAKE2b-check the
/// same callers' addresses on every call. Bounded: at <see cref="Limit"/> entries it is emptied (a flood of fresh
/// addresses costs their decoding, never memory). Only valid addresses are kept; the arrays handed out are shared and
/// must not be written. Public data only. Thread-safe.
/// </summary>
internal static class HotkeyCache
{
    /// <summary>Most addresses kept.</summary>
    internal const int Limit = 4096;

    private static readonly ConcurrentDictionary<string, byte[]> Keys = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, byte[]>.AlternateLookup<ReadOnlySpan<char>> KeysBySpan = Keys.GetAlternateLookup<ReadOnlySpan<char>>();
    private static int _count;

    /// <summary>The public key of a valid SS58 address of a 32-byte account (any prefix, as <see cref="Ss58.TryDecode(string, out byte[], out ushort)"/>); false otherwise.</summary>
    internal static bool TryGet(string? ss58Address, out byte[] publicKey)
    {
        if (ss58Address is null)
        {
            publicKey = [];
            return false;
        }
        if (Keys.TryGetValue(ss58Address, out publicKey!)) return true;
        if (!Ss58.TryDecode(ss58Address, out publicKey, out _) || publicKey.Length != 32) return false;
        // ConcurrentDictionary.Count takes every lock: an own count (approximate under races, a few over at most).
        if (Volatile.Read(ref _count) >= Limit)
        {
            Keys.Clear();
            Volatile.Write(ref _count, 0);
        }
        if (Keys.TryAdd(ss58Address, publicKey)) Interlocked.Increment(ref _count);
        return true;
    }

    /// <summary>
    /// <paramref name="ss58Address"/> as a string: the one this cache holds for it when it holds it (a known caller's
    /// address is not made again per call), else a new one. Nothing is added.
    /// </summary>
    internal static string Address(ReadOnlySpan<char> ss58Address) =>
        KeysBySpan.TryGetValue(ss58Address, out var known, out _) ? known : ss58Address.ToString();

    /// <summary>Addresses held now (tests).</summary>
    internal static int Count => Keys.Count;
}

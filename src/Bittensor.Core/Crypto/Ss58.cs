using System.Diagnostics.CodeAnalysis;

namespace Bittensor.Core.Crypto;

/// <summary>SS58 addresses (Base58 with a BLAKE2b-512 "SS58PRE" checksum).</summary>
public static class Ss58
{
    /// <summary>Bittensor's network prefix.</summary>
    public const ushort BittensorPrefix = 42;

    /// <summary>The largest prefix SS58 can encode (14 bits).</summary>
    public const ushort MaxPrefix = 16383;

    private const int ChecksumLength = 2;

    /// <summary>Encodes a 32-byte public key.</summary>
    /// <exception cref="ArgumentException">The key is not 32 bytes or the prefix exceeds 16383.</exception>
    public static string Encode(ReadOnlySpan<byte> publicKey, ushort prefix = BittensorPrefix)
    {
        if (publicKey.Length != 32) throw new ArgumentException("an SS58 account key must be 32 bytes", nameof(publicKey));
        if (prefix > MaxPrefix) throw new ArgumentException("an SS58 prefix must be 0..16383", nameof(prefix));
        Span<byte> payload = stackalloc byte[2 + 32 + ChecksumLength];
        int prefixLength;
        if (prefix < 64)
        {
            payload[0] = (byte)prefix;
            prefixLength = 1;
        }
        else
        {
            payload[0] = (byte)(((prefix & 0xFC) >> 2) | 0x40);
            payload[1] = (byte)((prefix >> 8) | ((prefix & 3) << 6));
            prefixLength = 2;
        }
        publicKey.CopyTo(payload[prefixLength..]);
        var body = payload[..(prefixLength + 32)];
        Checksum(body, payload.Slice(prefixLength + 32, ChecksumLength));
        return Base58.Encode(payload[..(prefixLength + 32 + ChecksumLength)]);
    }

    /// <summary>Decodes an address; false on bad Base58, length, or checksum.</summary>
    public static bool TryDecode(string address, out byte[] publicKey, out ushort prefix) =>
        TryDecode(address, out publicKey, out prefix, out _);

    /// <summary>Decodes an address or throws <see cref="FormatException"/> with a readable reason.</summary>
    public static byte[] Decode(string address)
    {
        if (!TryDecode(address, out var key, out _, out var error)) throw new FormatException(error);
        return key;
    }

    /// <summary>True when <paramref name="address"/> is a well-formed SS58 address of a 32-byte account.</summary>
    public static bool IsValid(string? address) => address is not null && TryDecode(address, out _, out _, out _);

    private static bool TryDecode(string? address, out byte[] publicKey, out ushort prefix, [NotNullWhen(false)] out string? error)
    {
        publicKey = [];
        prefix = 0;
        if (string.IsNullOrEmpty(address)) { error = "SS58 address is empty"; return false; }
        // 2-byte prefix + 32 + 2 checksum = 36 bytes → at most 50 Base58 characters.
        if (address.Length > 50) { error = "SS58 address is too long"; return false; }
        Span<byte> data = stackalloc byte[64];
        if (!Base58.TryDecode(address, data, out var n)) { error = "SS58 address is not valid Base58"; return false; }
        data = data[..n];
        if (n != 1 + 32 + ChecksumLength && n != 2 + 32 + ChecksumLength)
        {
            error = "SS58 address does not hold a 32-byte account key";
            return false;
        }
        int prefixLength;
        if (data[0] < 64)
        {
            prefixLength = 1;
            prefix = data[0];
        }
        else if (data[0] < 128)
        {
            prefixLength = 2;
            var lower = (byte)((data[0] << 2) | (data[1] >> 6));
            var upper = (byte)(data[1] & 0x3F);
            prefix = (ushort)(lower | (upper << 8));
        }
        else
        {
            error = "SS58 address has an invalid prefix byte";
            return false;
        }
        if (n != prefixLength + 32 + ChecksumLength)
        {
            error = "SS58 address does not hold a 32-byte account key";
            return false;
        }
        Span<byte> check = stackalloc byte[ChecksumLength];
        Checksum(data[..(prefixLength + 32)], check);
        if (!check.SequenceEqual(data[(prefixLength + 32)..]))
        {
            error = "SS58 address checksum mismatch";
            return false;
        }
        publicKey = data.Slice(prefixLength, 32).ToArray();
        error = null;
        return true;
    }

    private static void Checksum(ReadOnlySpan<byte> body, Span<byte> output)
    {
        Span<byte> pre = stackalloc byte[7 + 2 + 32];
        "SS58PRE"u8.CopyTo(pre);
        body.CopyTo(pre[7..]);
        Span<byte> hash = stackalloc byte[64];
        Blake2b.Hash(pre[..(7 + body.Length)], hash);
        hash[..output.Length].CopyTo(output);
    }
}

/// <summary>
/// Bitcoin-alphabet Base58 for short payloads (addresses). The big-number conversion works on limbs of
/// 58^5 (encode) and 2^32 (decode), so a 35-byte address takes ~100 divisions instead of ~1700.
/// </summary>
internal static class Base58
{
    private const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    private const ulong Base5 = 58UL * 58 * 58 * 58 * 58; // 656 356 768 < 2^30

    private static readonly sbyte[] Index = BuildIndex();

    private static sbyte[] BuildIndex()
    {
        var index = new sbyte[128];
        Array.Fill(index, (sbyte)-1);
        for (var i = 0; i < Alphabet.Length; i++) index[Alphabet[i]] = (sbyte)i;
        return index;
    }

    internal static string Encode(ReadOnlySpan<byte> data)
    {
        var zeros = 0;
        while (zeros < data.Length && data[zeros] == 0) zeros++;
        var rest = data[zeros..];
        var maxLimbs = rest.Length * 138 / 500 + 2;
        Span<ulong> limbs = maxLimbs <= 64 ? stackalloc ulong[maxLimbs] : new ulong[maxLimbs]; // little-endian, base 58^5
        var count = 0;
        var offset = 0;
        while (offset < rest.Length)
        {
            var chunk = offset == 0 && rest.Length % 4 != 0 ? rest.Length % 4 : 4;
            ulong carry = 0;
            for (var i = 0; i < chunk; i++) carry = (carry << 8) | rest[offset + i];
            offset += chunk;
            var shift = 8 * chunk;
            for (var i = 0; i < count; i++)
            {
                var t = (limbs[i] << shift) + carry;
                limbs[i] = t % Base5;
                carry = t / Base5;
            }
            while (carry != 0)
            {
                limbs[count++] = carry % Base5;
                carry /= Base5;
            }
        }
        var maxDigits = zeros + count * 5;
        Span<char> chars = maxDigits <= 256 ? stackalloc char[maxDigits] : new char[maxDigits];
        var pos = maxDigits;
        for (var i = 0; i < count; i++)
        {
            var limb = limbs[i];
            var last = i == count - 1;
            for (var d = 0; d < 5; d++)
            {
                if (last && limb == 0) break;
                chars[--pos] = Alphabet[(int)(limb % 58)];
                limb /= 58;
            }
        }
        for (var i = 0; i < zeros; i++) chars[--pos] = '1';
        return new string(chars[pos..]);
    }

    internal static bool TryDecode(ReadOnlySpan<char> text, Span<byte> output, out int written)
    {
        written = 0;
        var zeros = 0;
        while (zeros < text.Length && text[zeros] == '1') zeros++;
        var rest = text[zeros..];
        var maxLimbs = rest.Length * 733 / 4000 + 2;
        Span<ulong> limbs = maxLimbs <= 64 ? stackalloc ulong[maxLimbs] : new ulong[maxLimbs]; // little-endian, base 2^32
        var count = 0;
        var offset = 0;
        while (offset < rest.Length)
        {
            var chunk = offset == 0 && rest.Length % 5 != 0 ? rest.Length % 5 : 5;
            ulong carry = 0;
            ulong multiplier = 1;
            for (var i = 0; i < chunk; i++)
            {
                var c = rest[offset + i];
                if (c >= 128 || Index[c] < 0) return false;
                carry = carry * 58 + (ulong)Index[c];
                multiplier *= 58;
            }
            offset += chunk;
            for (var i = 0; i < count; i++)
            {
                var t = limbs[i] * multiplier + carry;
                limbs[i] = t & 0xFFFFFFFF;
                carry = t >> 32;
            }
            while (carry != 0)
            {
                limbs[count++] = carry & 0xFFFFFFFF;
                carry >>= 32;
            }
        }
        var top = count == 0 ? 0u : (uint)limbs[count - 1];
        var topBytes = top == 0 ? 0 : (32 - System.Numerics.BitOperations.LeadingZeroCount(top) + 7) / 8;
        var total = zeros + (count == 0 ? 0 : (count - 1) * 4 + topBytes);
        if (total > output.Length) return false;
        output[..zeros].Clear();
        var pos = total;
        for (var i = 0; i < count; i++)
        {
            var limb = (uint)limbs[i];
            var bytes = i == count - 1 ? topBytes : 4;
            for (var b = 0; b < bytes; b++)
            {
                output[--pos] = (byte)limb;
                limb >>= 8;
            }
        }
        written = total;
        return true;
    }
}

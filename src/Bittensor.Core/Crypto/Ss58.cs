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

/// <summary>Bitcoin-alphabet Base58 for short payloads (addresses).</summary>
internal static class Base58
{
    private const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

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
        // log(256)/log(58) ≈ 1.366
        var size = (data.Length - zeros) * 138 / 100 + 1;
        Span<byte> b58 = size <= 128 ? stackalloc byte[size] : new byte[size];
        b58.Clear();
        var length = 0;
        for (var i = zeros; i < data.Length; i++)
        {
            int carry = data[i];
            var j = 0;
            for (var k = size - 1; (carry != 0 || j < length) && k >= 0; k--, j++)
            {
                carry += 256 * b58[k];
                b58[k] = (byte)(carry % 58);
                carry /= 58;
            }
            length = j;
        }
        var start = size - length;
        while (start < size && b58[start] == 0) start++;
        var total = zeros + size - start;
        Span<char> chars = total <= 256 ? stackalloc char[total] : new char[total];
        chars[..zeros].Fill('1');
        for (var i = start; i < size; i++) chars[zeros + i - start] = Alphabet[b58[i]];
        return new string(chars);
    }

    internal static bool TryDecode(ReadOnlySpan<char> text, Span<byte> output, out int written)
    {
        written = 0;
        var zeros = 0;
        while (zeros < text.Length && text[zeros] == '1') zeros++;
        // log(58)/log(256) ≈ 0.733
        var size = (text.Length - zeros) * 733 / 1000 + 1;
        Span<byte> b256 = size <= 128 ? stackalloc byte[size] : new byte[size];
        b256.Clear();
        var length = 0;
        for (var i = zeros; i < text.Length; i++)
        {
            var c = text[i];
            if (c >= 128 || Index[c] < 0) return false;
            int carry = Index[c];
            var j = 0;
            for (var k = size - 1; (carry != 0 || j < length) && k >= 0; k--, j++)
            {
                carry += 58 * b256[k];
                b256[k] = (byte)(carry & 0xFF);
                carry >>= 8;
            }
            length = j;
        }
        var start = size - length;
        while (start < size && b256[start] == 0) start++;
        var total = zeros + size - start;
        if (total > output.Length) return false;
        output[..zeros].Clear();
        b256[start..].CopyTo(output[zeros..]);
        written = total;
        return true;
    }
}

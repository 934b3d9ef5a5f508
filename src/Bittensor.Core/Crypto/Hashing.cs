using System.Buffers.Binary;
using System.IO.Hashing;
using System.Numerics;

namespace Bittensor.Core.Crypto;

/// <summary>BLAKE2b with any output length 1..64 bytes (Substrate uses 16, 32, 64).</summary>
public static class Blake2b
{
    /// <summary>Hashes <paramref name="data"/> into <paramref name="output"/> (its length is the digest size).</summary>
    /// <exception cref="ArgumentException">The output is empty or longer than 64 bytes.</exception>
    public static unsafe void Hash(ReadOnlySpan<byte> data, Span<byte> output)
    {
        if (output.Length is < 1 or > 64) throw new ArgumentException("BLAKE2b output must be 1..64 bytes", nameof(output));
        if (output.Length < 16)
        {
            // libsodium's crypto_generichash refuses digests shorter than 16 bytes.
            Blake2bManaged.Hash(data, output);
            return;
        }
        Sodium.EnsureInitialised();
        byte dummy = 0;
        fixed (byte* input = data)
        fixed (byte* o = output)
        {
            if (SodiumNative.crypto_generichash(o, (nuint)output.Length, input == null ? &dummy : input, (ulong)data.Length, null, 0) != 0)
                throw new InvalidOperationException("crypto_generichash failed");
        }
    }

    /// <summary>BLAKE2b-256.</summary>
    public static byte[] Hash256(ReadOnlySpan<byte> data)
    {
        var output = new byte[32];
        Hash(data, output);
        return output;
    }

    /// <summary>BLAKE2b-128.</summary>
    public static byte[] Hash128(ReadOnlySpan<byte> data)
    {
        var output = new byte[16];
        Hash(data, output);
        return output;
    }

    /// <summary>BLAKE2b-512.</summary>
    public static byte[] Hash512(ReadOnlySpan<byte> data)
    {
        var output = new byte[64];
        Hash(data, output);
        return output;
    }
}

/// <summary>Substrate's xxHash "twox" hashers, little-endian.</summary>
public static class Twox
{
    /// <summary>twox64: xxh64(seed 0) as 8 little-endian bytes.</summary>
    public static void Hash64(ReadOnlySpan<byte> data, Span<byte> output8) => Hash(data, output8, 1);

    /// <summary>twox128: xxh64 seeds 0 and 1, each little-endian.</summary>
    public static void Hash128(ReadOnlySpan<byte> data, Span<byte> output16) => Hash(data, output16, 2);

    /// <summary>twox256: xxh64 seeds 0..3, each little-endian.</summary>
    public static void Hash256(ReadOnlySpan<byte> data, Span<byte> output32) => Hash(data, output32, 4);

    private static void Hash(ReadOnlySpan<byte> data, Span<byte> output, int lanes)
    {
        if (output.Length != 8 * lanes) throw new ArgumentException($"twox{64 * lanes} output must be {8 * lanes} bytes", nameof(output));
        for (var seed = 0; seed < lanes; seed++)
        {
            // XxHash64's byte output is big-endian; Substrate writes the u64 little-endian.
            BinaryPrimitives.WriteUInt64LittleEndian(output.Slice(8 * seed, 8), XxHash64.HashToUInt64(data, seed));
        }
    }
}

/// <summary>
/// A plain managed BLAKE2b (RFC 7693), unkeyed. Used for digests shorter than 16 bytes, which libsodium
/// refuses; also lets tests cross-check libsodium.
/// </summary>
internal static class Blake2bManaged
{
    private static ReadOnlySpan<ulong> Iv =>
    [
        0x6a09e667f3bcc908UL, 0xbb67ae8584caa73bUL, 0x3c6ef372fe94f82bUL, 0xa54ff53a5f1d36f1UL,
        0x510e527fade682d1UL, 0x9b05688c2b3e6c1fUL, 0x1f83d9abfb41bd6bUL, 0x5be0cd19137e2179UL,
    ];

    private static ReadOnlySpan<byte> Sigma =>
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
        11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
        7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
        9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
        2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
        12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
        13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
        6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
        10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
    ];

    internal static void Hash(ReadOnlySpan<byte> data, Span<byte> output)
    {
        if (output.Length is < 1 or > 64) throw new ArgumentException("BLAKE2b output must be 1..64 bytes", nameof(output));
        Span<ulong> h = stackalloc ulong[8];
        Iv.CopyTo(h);
        h[0] ^= 0x01010000UL ^ (ulong)output.Length;
        Span<byte> block = stackalloc byte[128];
        ulong counter = 0;
        var offset = 0;
        while (data.Length - offset > 128)
        {
            counter += 128;
            Compress(h, data.Slice(offset, 128), counter, false);
            offset += 128;
        }
        block.Clear();
        var rest = data[offset..];
        rest.CopyTo(block);
        counter += (ulong)rest.Length;
        Compress(h, block, counter, true);
        Span<byte> full = stackalloc byte[64];
        for (var i = 0; i < 8; i++) BinaryPrimitives.WriteUInt64LittleEndian(full.Slice(8 * i, 8), h[i]);
        full[..output.Length].CopyTo(output);
    }

    private static void Compress(Span<ulong> h, ReadOnlySpan<byte> block, ulong counter, bool last)
    {
        Span<ulong> m = stackalloc ulong[16];
        for (var i = 0; i < 16; i++) m[i] = BinaryPrimitives.ReadUInt64LittleEndian(block.Slice(8 * i, 8));
        Span<ulong> v = stackalloc ulong[16];
        h.CopyTo(v);
        Iv.CopyTo(v[8..]);
        v[12] ^= counter;
        if (last) v[14] = ~v[14];
        for (var r = 0; r < 12; r++)
        {
            var s = Sigma.Slice(16 * (r % 10), 16);
            G(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
            G(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
            G(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
            G(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
            G(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
            G(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
            G(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
            G(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
        }
        for (var i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
    }

    private static void G(Span<ulong> v, int a, int b, int c, int d, ulong x, ulong y)
    {
        v[a] = v[a] + v[b] + x;
        v[d] = BitOperations.RotateRight(v[d] ^ v[a], 32);
        v[c] = v[c] + v[d];
        v[b] = BitOperations.RotateRight(v[b] ^ v[c], 24);
        v[a] = v[a] + v[b] + y;
        v[d] = BitOperations.RotateRight(v[d] ^ v[a], 16);
        v[c] = v[c] + v[d];
        v[b] = BitOperations.RotateRight(v[b] ^ v[c], 63);
    }
}

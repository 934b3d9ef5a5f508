namespace Bittensor.Core.Crypto;

/// <summary>BLAKE2b with any output length 1..64 bytes (Substrate uses 16, 32, 64).</summary>
public static class Blake2b
{
    /// <summary>Hashes <paramref name="data"/> into <paramref name="output"/> (its length is the digest size).</summary>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> output) => throw new NotImplementedException();

    /// <summary>BLAKE2b-256.</summary>
    public static byte[] Hash256(ReadOnlySpan<byte> data) => throw new NotImplementedException();

    /// <summary>BLAKE2b-128.</summary>
    public static byte[] Hash128(ReadOnlySpan<byte> data) => throw new NotImplementedException();
}

/// <summary>Substrate's xxHash "twox" hashers, little-endian.</summary>
public static class Twox
{
    /// <summary>twox64: xxh64(seed 0) as 8 little-endian bytes.</summary>
    public static void Hash64(ReadOnlySpan<byte> data, Span<byte> output8) => throw new NotImplementedException();

    /// <summary>twox128: xxh64 seeds 0 and 1, each little-endian.</summary>
    public static void Hash128(ReadOnlySpan<byte> data, Span<byte> output16) => throw new NotImplementedException();

    /// <summary>twox256: xxh64 seeds 0..3, each little-endian.</summary>
    public static void Hash256(ReadOnlySpan<byte> data, Span<byte> output32) => throw new NotImplementedException();
}

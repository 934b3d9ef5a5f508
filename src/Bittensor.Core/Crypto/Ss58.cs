namespace Bittensor.Core.Crypto;

/// <summary>SS58 addresses (Base58 with a BLAKE2b-512 "SS58PRE" checksum).</summary>
public static class Ss58
{
    /// <summary>Bittensor's network prefix.</summary>
    public const ushort BittensorPrefix = 42;

    /// <summary>Encodes a 32-byte public key.</summary>
    public static string Encode(ReadOnlySpan<byte> publicKey, ushort prefix = BittensorPrefix) => throw new NotImplementedException();

    /// <summary>Decodes an address; false on bad Base58, length, or checksum.</summary>
    public static bool TryDecode(string address, out byte[] publicKey, out ushort prefix) => throw new NotImplementedException();

    /// <summary>Decodes an address or throws <see cref="FormatException"/> with a readable reason.</summary>
    public static byte[] Decode(string address) => throw new NotImplementedException();
}

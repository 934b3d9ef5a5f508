using System.Runtime.InteropServices;

namespace Bittensor.Wallet.Internal;

/// <summary>
/// The few libsodium calls the keyfile format needs (Argon2i, XSalsa20-Poly1305 secretbox, CSPRNG).
/// The native library comes from the <c>libsodium</c> package referenced by Bittensor.Core.
/// </summary>
internal static unsafe partial class NativeSodium
{
    private const string Lib = "libsodium";

    public const int SecretBoxKeyBytes = 32;
    public const int SecretBoxNonceBytes = 24;
    public const int SecretBoxMacBytes = 16;
    public const int Argon2I13 = 1;

    // Argon2i with 512 MiB per call: run one at a time so parallel unlocks cannot multiply the peak memory.
    private static readonly SemaphoreSlim OneAtATime = new(1, 1);
    private static readonly Lazy<int> Init = new(() => sodium_init());

    [LibraryImport(Lib)]
    private static partial int sodium_init();

    [LibraryImport(Lib)]
    private static partial int crypto_pwhash(byte* output, ulong outputLength, byte* password, ulong passwordLength,
        byte* salt, ulong opsLimit, nuint memLimit, int algorithm);

    [LibraryImport(Lib)]
    private static partial int crypto_secretbox_easy(byte* c, byte* m, ulong mlen, byte* n, byte* k);

    [LibraryImport(Lib)]
    private static partial int crypto_secretbox_open_easy(byte* m, byte* c, ulong clen, byte* n, byte* k);

    [LibraryImport(Lib)]
    private static partial void randombytes_buf(byte* buffer, nuint size);

    private static void EnsureInit()
    {
        if (Init.Value < 0) throw new InvalidOperationException("libsodium failed to initialise");
    }

    public static void Argon2i(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt16, ulong opsLimit, nuint memLimit, Span<byte> key)
    {
        if (salt16.Length != 16) throw new ArgumentException("salt must be 16 bytes", nameof(salt16));
        EnsureInit();
        OneAtATime.Wait();
        try
        {
            fixed (byte* k = key)
            fixed (byte* p = password)
            fixed (byte* s = salt16)
            {
                if (crypto_pwhash(k, (ulong)key.Length, p, (ulong)password.Length, s, opsLimit, memLimit, Argon2I13) != 0)
                    throw new InvalidOperationException("Argon2i failed (not enough memory for 512 MiB?)");
            }
        }
        finally
        {
            OneAtATime.Release();
        }
    }

    public static byte[] SecretBoxSeal(ReadOnlySpan<byte> message, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> key)
    {
        EnsureInit();
        var output = new byte[message.Length + SecretBoxMacBytes];
        fixed (byte* c = output)
        fixed (byte* m = message)
        fixed (byte* n = nonce)
        fixed (byte* k = key)
        {
            if (crypto_secretbox_easy(c, m, (ulong)message.Length, n, k) != 0)
                throw new InvalidOperationException("secretbox failed");
        }
        return output;
    }

    public static bool SecretBoxOpen(ReadOnlySpan<byte> cipher, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> key, Span<byte> message)
    {
        EnsureInit();
        if (cipher.Length < SecretBoxMacBytes || message.Length != cipher.Length - SecretBoxMacBytes) return false;
        fixed (byte* m = message)
        fixed (byte* c = cipher)
        fixed (byte* n = nonce)
        fixed (byte* k = key)
        {
            return crypto_secretbox_open_easy(m, c, (ulong)cipher.Length, n, k) == 0;
        }
    }

    public static void RandomBytes(Span<byte> buffer)
    {
        EnsureInit();
        fixed (byte* b = buffer) randombytes_buf(b, (nuint)buffer.Length);
    }
}

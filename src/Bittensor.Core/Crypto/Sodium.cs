using System.Security.Cryptography;

namespace Bittensor.Core.Crypto;

/// <summary>
/// The libsodium primitives the wallet needs beyond sr25519: Argon2i key derivation, XSalsa20-Poly1305
/// secretbox, the OS CSPRNG and guaranteed zeroing. Span-based; nothing here allocates secret copies.
/// </summary>
public static class Sodium
{
    /// <summary>libsodium's <c>crypto_pwhash_ALG_ARGON2I13</c>.</summary>
    private const int AlgArgon2I13 = 1;

    /// <summary>Secretbox key length (XSalsa20-Poly1305), bytes.</summary>
    public const int SecretBoxKeyBytes = 32;

    /// <summary>Secretbox nonce length, bytes.</summary>
    public const int SecretBoxNonceBytes = 24;

    /// <summary>Secretbox authentication tag length (Poly1305), bytes; it precedes the ciphertext.</summary>
    public const int SecretBoxMacBytes = 16;

    /// <summary>Argon2i salt length, bytes.</summary>
    public const int Argon2SaltBytes = 16;

    private static readonly Lazy<bool> Initialised = new(() =>
    {
        var rc = SodiumNative.sodium_init();
        if (rc < 0) throw new InvalidOperationException("libsodium failed to initialise (sodium_init returned -1)");
        return true;
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Runs <c>sodium_init</c> once per process; every entry point that calls libsodium calls this first.</summary>
    internal static void EnsureInitialised() => _ = Initialised.Value;

    /// <summary>
    /// Argon2i v1.3 (libsodium <c>crypto_pwhash</c> with <c>ALG_ARGON2I13</c>, one lane) of
    /// <paramref name="password"/> with a 16-byte salt into a 32-byte key.
    /// </summary>
    /// <exception cref="ArgumentException">Salt not 16 bytes or key not 32 bytes.</exception>
    /// <exception cref="CryptographicException">libsodium refused (e.g. out of memory for <paramref name="memLimit"/>).</exception>
    public static unsafe void Argon2i(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt16, ulong opsLimit, nuint memLimit, Span<byte> key32)
    {
        if (salt16.Length != Argon2SaltBytes) throw new ArgumentException("Argon2i salt must be 16 bytes", nameof(salt16));
        if (key32.Length != 32) throw new ArgumentException("Argon2i output must be 32 bytes", nameof(key32));
        EnsureInitialised();
        int rc;
        // A non-null pointer is needed even for an empty password.
        byte dummy = 0;
        fixed (byte* pw = password)
        fixed (byte* s = salt16)
        fixed (byte* k = key32)
        {
            rc = SodiumNative.crypto_pwhash(k, (ulong)key32.Length, pw == null ? &dummy : pw, (ulong)password.Length, s,
                opsLimit, memLimit, AlgArgon2I13);
        }
        if (rc != 0)
        {
            CryptographicOperations.ZeroMemory(key32);
            throw new CryptographicException("Argon2i key derivation failed (not enough memory or limits out of range)");
        }
    }

    /// <summary>
    /// XSalsa20-Poly1305 "easy" secretbox: writes tag (16 bytes) ‖ ciphertext into <paramref name="output"/>,
    /// which must be exactly <c>plaintext.Length + 16</c> bytes.
    /// </summary>
    public static unsafe void SecretBoxSeal(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> nonce24, ReadOnlySpan<byte> key32, Span<byte> output)
    {
        CheckBoxArgs(nonce24, key32);
        if (output.Length != plaintext.Length + SecretBoxMacBytes)
            throw new ArgumentException("secretbox output must be plaintext length + 16", nameof(output));
        EnsureInitialised();
        byte dummy = 0;
        fixed (byte* m = plaintext)
        fixed (byte* n = nonce24)
        fixed (byte* k = key32)
        fixed (byte* c = output)
        {
            if (SodiumNative.crypto_secretbox_easy(c, m == null ? &dummy : m, (ulong)plaintext.Length, n, k) != 0)
                throw new CryptographicException("secretbox encryption failed");
        }
    }

    /// <summary>
    /// Opens a secretbox (tag ‖ ciphertext) into <paramref name="plaintext"/> (exactly <c>box.Length - 16</c>
    /// bytes). Returns false when the box is too short or authentication fails (wrong key or tampered data);
    /// the output is zeroed in that case.
    /// </summary>
    public static unsafe bool SecretBoxOpen(ReadOnlySpan<byte> box, ReadOnlySpan<byte> nonce24, ReadOnlySpan<byte> key32, Span<byte> plaintext)
    {
        CheckBoxArgs(nonce24, key32);
        if (box.Length < SecretBoxMacBytes) return false;
        if (plaintext.Length != box.Length - SecretBoxMacBytes)
            throw new ArgumentException("secretbox plaintext must be box length - 16", nameof(plaintext));
        EnsureInitialised();
        byte dummy = 0;
        int rc;
        fixed (byte* c = box)
        fixed (byte* n = nonce24)
        fixed (byte* k = key32)
        fixed (byte* m = plaintext)
        {
            rc = SodiumNative.crypto_secretbox_open_easy(m == null ? &dummy : m, c, (ulong)box.Length, n, k);
        }
        if (rc != 0)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return false;
        }
        return true;
    }

    /// <summary>Fills <paramref name="buffer"/> with bytes from libsodium's CSPRNG (the OS generator).</summary>
    public static unsafe void RandomBytes(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return;
        EnsureInitialised();
        fixed (byte* b = buffer) SodiumNative.randombytes_buf(b, (nuint)buffer.Length);
    }

    /// <summary>Zeroes <paramref name="buffer"/> in a way the compiler cannot optimise away.</summary>
    public static unsafe void MemZero(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return;
        EnsureInitialised();
        fixed (byte* b = buffer) SodiumNative.sodium_memzero(b, (nuint)buffer.Length);
    }

    private static void CheckBoxArgs(ReadOnlySpan<byte> nonce24, ReadOnlySpan<byte> key32)
    {
        if (nonce24.Length != SecretBoxNonceBytes) throw new ArgumentException("secretbox nonce must be 24 bytes", nameof(nonce24));
        if (key32.Length != SecretBoxKeyBytes) throw new ArgumentException("secretbox key must be 32 bytes", nameof(key32));
    }
}

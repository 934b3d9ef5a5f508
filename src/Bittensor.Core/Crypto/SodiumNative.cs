using System.Runtime.InteropServices;

namespace Bittensor.Core.Crypto;

/// <summary>
/// Raw P/Invoke declarations for the native libsodium shipped by the NuGet package <c>libsodium</c>
/// (runtimes/&lt;rid&gt;/native). Callers go through <see cref="Sodium"/> or the sr25519 code, which make sure
/// <c>sodium_init</c> ran once and that every span has the length the C function expects.
/// </summary>
internal static unsafe partial class SodiumNative
{
    private const string Lib = "libsodium";

    [LibraryImport(Lib, EntryPoint = "sodium_init")]
    internal static partial int sodium_init();

    [LibraryImport(Lib, EntryPoint = "sodium_memzero")]
    internal static partial void sodium_memzero(byte* pnt, nuint len);

    [LibraryImport(Lib, EntryPoint = "randombytes_buf")]
    internal static partial void randombytes_buf(byte* buf, nuint size);

    // Argon2i / secretbox
    [LibraryImport(Lib, EntryPoint = "crypto_pwhash")]
    internal static partial int crypto_pwhash(byte* output, ulong outlen, byte* passwd, ulong passwdlen, byte* salt,
        ulong opslimit, nuint memlimit, int alg);

    [LibraryImport(Lib, EntryPoint = "crypto_secretbox_easy")]
    internal static partial int crypto_secretbox_easy(byte* c, byte* m, ulong mlen, byte* n, byte* k);

    [LibraryImport(Lib, EntryPoint = "crypto_secretbox_open_easy")]
    internal static partial int crypto_secretbox_open_easy(byte* m, byte* c, ulong clen, byte* n, byte* k);

    // BLAKE2b
    [LibraryImport(Lib, EntryPoint = "crypto_generichash")]
    internal static partial int crypto_generichash(byte* output, nuint outlen, byte* input, ulong inlen, byte* key, nuint keylen);

    // Ed25519
    [LibraryImport(Lib, EntryPoint = "crypto_sign_seed_keypair")]
    internal static partial int crypto_sign_seed_keypair(byte* pk, byte* sk, byte* seed);

    [LibraryImport(Lib, EntryPoint = "crypto_sign_detached")]
    internal static partial int crypto_sign_detached(byte* sig, ulong* siglen, byte* m, ulong mlen, byte* sk);

    [LibraryImport(Lib, EntryPoint = "crypto_sign_verify_detached")]
    internal static partial int crypto_sign_verify_detached(byte* sig, byte* m, ulong mlen, byte* pk);

    // ristretto255
    [LibraryImport(Lib, EntryPoint = "crypto_scalarmult_ristretto255_base")]
    internal static partial int crypto_scalarmult_ristretto255_base(byte* q, byte* n);

    [LibraryImport(Lib, EntryPoint = "crypto_scalarmult_ristretto255")]
    internal static partial int crypto_scalarmult_ristretto255(byte* q, byte* n, byte* p);

    [LibraryImport(Lib, EntryPoint = "crypto_core_ristretto255_is_valid_point")]
    internal static partial int crypto_core_ristretto255_is_valid_point(byte* p);

    [LibraryImport(Lib, EntryPoint = "crypto_core_ristretto255_add")]
    internal static partial int crypto_core_ristretto255_add(byte* r, byte* p, byte* q);

    [LibraryImport(Lib, EntryPoint = "crypto_core_ristretto255_sub")]
    internal static partial int crypto_core_ristretto255_sub(byte* r, byte* p, byte* q);

    [LibraryImport(Lib, EntryPoint = "crypto_core_ristretto255_scalar_reduce")]
    internal static partial void crypto_core_ristretto255_scalar_reduce(byte* r, byte* s);

    [LibraryImport(Lib, EntryPoint = "crypto_core_ristretto255_scalar_add")]
    internal static partial void crypto_core_ristretto255_scalar_add(byte* z, byte* x, byte* y);

    [LibraryImport(Lib, EntryPoint = "crypto_core_ristretto255_scalar_mul")]
    internal static partial void crypto_core_ristretto255_scalar_mul(byte* z, byte* x, byte* y);
}

using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Bittensor.Core.Crypto;

/// <summary>
/// An sr25519 (schnorrkel over ristretto255) key pair: the secret scalar, the 32-byte nonce seed and the
/// 32-byte public key (the AccountId32 on chain). Secret material is zeroed on <see cref="Dispose"/>.
/// </summary>
public sealed class Sr25519KeyPair : IDisposable
{
    /// <summary>Length of a public key, a mini secret and a chain code.</summary>
    public const int KeyLength = 32;

    /// <summary>Length of a signature and of a 64-byte secret key.</summary>
    public const int SignatureLength = 64;

    private readonly byte[] key;       // canonical scalar, little-endian, < ℓ
    private readonly byte[] nonce;     // 32-byte nonce seed
    private readonly byte[] publicKey; // compressed ristretto
    private readonly byte[]? mini;
    private bool disposed;

    private Sr25519KeyPair(byte[] key, byte[] nonce, byte[] publicKey, byte[]? mini)
    {
        this.key = key;
        this.nonce = nonce;
        this.publicKey = publicKey;
        this.mini = mini;
    }

    /// <summary>The 32-byte compressed Ristretto public key.</summary>
    public ReadOnlyMemory<byte> PublicKey => publicKey;

    /// <summary>The 32-byte mini secret this pair was expanded from, when known (null after HDKD soft or from a 64-byte secret).</summary>
    public ReadOnlyMemory<byte>? MiniSecret
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (mini is null) return null;
            return new ReadOnlyMemory<byte>(mini);
        }
    }

    /// <summary>Expands a 32-byte mini secret in Ed25519 mode (the mode Substrate uses).</summary>
    /// <exception cref="ArgumentException">The mini secret is not 32 bytes.</exception>
    public static Sr25519KeyPair FromMiniSecret(ReadOnlySpan<byte> miniSecret)
    {
        if (miniSecret.Length != KeyLength) throw new ArgumentException("an sr25519 mini secret must be 32 bytes", nameof(miniSecret));
        Span<byte> h = stackalloc byte[64];
        SHA512.HashData(miniSecret, h);
        var key = new byte[32];
        var nonce = new byte[32];
        h[..32].CopyTo(key);
        h[32..].CopyTo(nonce);
        CryptographicOperations.ZeroMemory(h);
        key[0] &= 248;
        key[31] &= 63;
        key[31] |= 64;
        ShiftRight3(key); // divide by the cofactor: < 2^251 < ℓ, already canonical
        return Create(key, nonce, miniSecret.ToArray());
    }

    /// <summary>From the canonical 64-byte secret (scalar ‖ nonce), as bittensor keyfiles store <c>privateKey</c>.</summary>
    /// <exception cref="ArgumentException">Not 64 bytes, the scalar is not canonical (≥ ℓ) or zero.</exception>
    public static Sr25519KeyPair FromCanonicalSecret(ReadOnlySpan<byte> secret64)
    {
        if (secret64.Length != SignatureLength) throw new ArgumentException("an sr25519 secret key must be 64 bytes", nameof(secret64));
        if (!Ristretto.IsCanonicalScalar(secret64[..32]))
            throw new ArgumentException("the secret scalar is not canonical (is this the polkadot-js scalar·8 form?)", nameof(secret64));
        return Create(secret64[..32].ToArray(), secret64[32..].ToArray(), null);
    }

    /// <summary>From the Ed25519-form 64-byte secret (scalar·8 ‖ nonce), as polkadot-js stores it.</summary>
    /// <exception cref="ArgumentException">Not 64 bytes or the scalar is zero.</exception>
    public static Sr25519KeyPair FromEd25519Secret(ReadOnlySpan<byte> secret64)
    {
        if (secret64.Length != SignatureLength) throw new ArgumentException("an sr25519 secret key must be 64 bytes", nameof(secret64));
        Span<byte> k = stackalloc byte[32];
        secret64[..32].CopyTo(k);
        ShiftRight3(k);
        var key = new byte[32];
        Ristretto.Reduce32(k, key);
        CryptographicOperations.ZeroMemory(k);
        return Create(key, secret64[32..].ToArray(), null);
    }

    private static Sr25519KeyPair Create(byte[] key, byte[] nonce, byte[]? mini)
    {
        var pub = new byte[32];
        if (!Ristretto.ScalarMultBase(key, pub))
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(nonce);
            if (mini is not null) CryptographicOperations.ZeroMemory(mini);
            throw new ArgumentException("the secret scalar is zero");
        }
        return new Sr25519KeyPair(key, nonce, pub, mini);
    }

    /// <summary>The canonical 64-byte secret (scalar ‖ nonce). The caller owns and must zero the array.</summary>
    public byte[] ToCanonicalSecret()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var s = new byte[64];
        key.CopyTo(s, 0);
        nonce.CopyTo(s, 32);
        return s;
    }

    /// <summary>The Ed25519-form 64-byte secret (scalar·8 ‖ nonce). The caller owns and must zero the array.</summary>
    public byte[] ToEd25519Secret()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var s = new byte[64];
        key.CopyTo(s, 0);
        ShiftLeft3(s.AsSpan(0, 32)); // key < ℓ < 2^253, so key·8 fits in 256 bits
        nonce.CopyTo(s, 32);
        return s;
    }

    /// <summary>Signs with signing context <c>substrate</c>; returns 64 bytes (R ‖ s with the 0x80 marker).</summary>
    public byte[] Sign(ReadOnlySpan<byte> message)
    {
        Span<byte> random = stackalloc byte[32];
        WitnessRandom.Fill(random);
        try { return Sign(message, random); }
        finally { CryptographicOperations.ZeroMemory(random); }
    }

    /// <summary>
    /// Signing with caller-supplied witness randomness (32 bytes), for deterministic test vectors
    /// (@scure/sr25519 <c>sign(sk, msg, rng)</c> does the same). Never use fixed randomness in production.
    /// </summary>
    internal byte[] Sign(ReadOnlySpan<byte> message, ReadOnlySpan<byte> random32)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (random32.Length != 32) throw new ArgumentException("witness randomness must be 32 bytes", nameof(random32));
        var t = Sr25519.SigningTranscript(message);
        t.AppendMessage("proto-name"u8, "Schnorr-sig"u8);
        t.AppendMessage("sign:pk"u8, publicKey);

        Span<byte> wide = stackalloc byte[64];
        Span<byte> r = stackalloc byte[32];
        Span<byte> k = stackalloc byte[32];
        var signature = new byte[64];
        try
        {
            using (var rng = t.BuildRng("signing"u8, nonce, random32)) rng.FillBytes(wide);
            Ristretto.Reduce64(wide, r);
            if (!Ristretto.ScalarMultBase(r, signature.AsSpan(0, 32)))
                throw new CryptographicException("sr25519 signing produced a zero nonce");
            t.AppendMessage("sign:R"u8, signature.AsSpan(0, 32));
            t.ChallengeBytes("sign:c"u8, wide);
            Ristretto.Reduce64(wide, k);
            Span<byte> s = signature.AsSpan(32, 32);
            Ristretto.ScalarMul(k, key, s);
            Ristretto.ScalarAdd(s, r, s);
            signature[63] |= 0x80;
            return signature;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(wide);
            CryptographicOperations.ZeroMemory(r);
            t.Clear();
        }
    }

    /// <summary>
    /// Hard derivation (<c>//junction</c>): a new mini secret from this secret key and the 32-byte chain
    /// code, expanded in Ed25519 mode. Deterministic.
    /// </summary>
    public Sr25519KeyPair DeriveHard(ReadOnlySpan<byte> chainCode)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (chainCode.Length != KeyLength) throw new ArgumentException("a chain code must be 32 bytes", nameof(chainCode));
        var t = new MerlinTranscript("SchnorrRistrettoHDKD"u8);
        t.AppendMessage("sign-bytes"u8, ReadOnlySpan<byte>.Empty);
        t.AppendMessage("chain-code"u8, chainCode);
        t.AppendMessage("secret-key"u8, key);
        Span<byte> newMini = stackalloc byte[32];
        try
        {
            t.ChallengeBytes("HDKD-hard"u8, newMini);
            return FromMiniSecret(newMini);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(newMini);
            t.Clear();
        }
    }

    /// <summary>
    /// Soft derivation (<c>/junction</c>): scalar + δ and public + δ·B, where δ depends only on the public key
    /// and the chain code. The new nonce mixes in fresh randomness, so only the public key is reproducible.
    /// </summary>
    public Sr25519KeyPair DeriveSoft(ReadOnlySpan<byte> chainCode)
    {
        Span<byte> random = stackalloc byte[32];
        WitnessRandom.Fill(random);
        try { return DeriveSoft(chainCode, random); }
        finally { CryptographicOperations.ZeroMemory(random); }
    }

    internal Sr25519KeyPair DeriveSoft(ReadOnlySpan<byte> chainCode, ReadOnlySpan<byte> random32)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (chainCode.Length != KeyLength) throw new ArgumentException("a chain code must be 32 bytes", nameof(chainCode));
        Span<byte> delta = stackalloc byte[32];
        var t = Sr25519.SoftDeriveScalar(publicKey, chainCode, delta);
        var newKey = new byte[32];
        var newNonce = new byte[32];
        var secret = ToCanonicalSecret();
        try
        {
            Ristretto.ScalarAdd(key, delta, newKey);
            using (var rng = t.BuildRng("HDKD-nonce"u8, nonce, secret, true, random32)) rng.FillBytes(newNonce);
            return Create(newKey, newNonce, null);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
            CryptographicOperations.ZeroMemory(delta);
            t.Clear();
        }
    }

    /// <summary>SS58 address of the public key (prefix 42 by default).</summary>
    public string ToSs58(ushort prefix = Ss58.BittensorPrefix) => Ss58.Encode(publicKey, prefix);

    /// <summary>Shows the SS58 address only; never secret material.</summary>
    public override string ToString() => $"Sr25519KeyPair({ToSs58()})";

    /// <summary>Zeroes the secret material.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        CryptographicOperations.ZeroMemory(key);
        CryptographicOperations.ZeroMemory(nonce);
        if (mini is not null) CryptographicOperations.ZeroMemory(mini);
    }

    internal static void ShiftRight3(Span<byte> k)
    {
        byte low = 0;
        for (var i = 31; i >= 0; i--)
        {
            var b = k[i];
            k[i] = (byte)((b >> 3) | low);
            low = (byte)(b << 5);
        }
    }

    internal static void ShiftLeft3(Span<byte> k)
    {
        byte high = 0;
        for (var i = 0; i < 32; i++)
        {
            var b = k[i];
            k[i] = (byte)((b << 3) | high);
            high = (byte)(b >> 5);
        }
    }
}

/// <summary>A 32-byte scalar held inline (no allocation).</summary>
[System.Runtime.CompilerServices.InlineArray(32)]
internal struct ScalarBytes
{
    private byte element0;
}

/// <summary>One signature of a batch for <see cref="Sr25519.VerifyEach"/>: the 32-byte public key, the message and the 64-byte signature.</summary>
public readonly record struct Sr25519BatchItem(ReadOnlyMemory<byte> PublicKey, ReadOnlyMemory<byte> Message, ReadOnlyMemory<byte> Signature);

/// <summary>sr25519 verification (signing context <c>substrate</c>).</summary>
public static partial class Sr25519
{
    // Merlin "SigningContext" transcript after append("", "substrate"); cloned for every signature.
    private static readonly MerlinTranscript SubstrateContext = CreateContext();

    private static MerlinTranscript CreateContext()
    {
        var t = new MerlinTranscript("SigningContext"u8);
        t.AppendMessage(ReadOnlySpan<byte>.Empty, "substrate"u8);
        return t;
    }

    internal static MerlinTranscript SigningTranscript(ReadOnlySpan<byte> message)
    {
        var t = SubstrateContext.Clone();
        t.AppendMessage("sign-bytes"u8, message);
        return t;
    }

    // The verify's transcript, one per thread and reset from SubstrateContext for every challenge: it absorbs only public
    // data (message, key, R), so unlike the signer's it need not be a fresh object (an axon verified 224 B per call).
    [ThreadStatic]
    private static MerlinTranscript? t_challenge;

    /// <summary>
    /// The shared prepared-key cache's work so far (diagnostics: the lean server's shed probe): key tables built, and lookups
    /// that found no tables (those signatures verified by the plain double-scalar multiplication).
    /// </summary>
    public static (long TablesBuilt, long VerifiedWithoutTables) PreparedKeyCounts =>
        (Curve25519.PreparedKeyCache.Shared.Built, Curve25519.PreparedKeyCache.Shared.WithoutTables);

    /// <summary>
    /// Prepares the verification tables of public keys expected to call, highest priority first (the axon: its stake
    /// snapshot's hotkeys, highest stake first), ahead of their first call, so their first calls are verified over the tables
    /// rather than without them and then paying for the tables inside a call. At most half the shared prepared-key cache
    /// (512 keys) per call, in its free places only: never displaces a prepared key. Returns how many tables were built.
    /// Public data only.
    /// </summary>
    public static int PrepareVerifyingKeys(IEnumerable<ReadOnlyMemory<byte>> publicKeys)
    {
        ArgumentNullException.ThrowIfNull(publicKeys);
        var cache = Curve25519.PreparedKeyCache.Shared;
        return cache.PrepareAhead(publicKeys, cache.Capacity / 2);
    }

    /// <summary>
    /// Drops a public key from the shared prepared-key cache and frees its place at once (<see cref="PrepareVerifyingKeys"/>'s
    /// cache): for a key that will not call again (the axon's warm-up key), so its place is not held for the cache's idle
    /// time. True when it was prepared. Public data only.
    /// </summary>
    public static bool ForgetVerifyingKey(ReadOnlySpan<byte> publicKey) => Curve25519.PreparedKeyCache.Shared.Forget(publicKey);

    /// <summary>True when <paramref name="publicKey"/>'s verification tables are in the shared prepared-key cache now (tests).</summary>
    internal static bool IsVerifyingKeyPrepared(ReadOnlySpan<byte> publicKey) => Curve25519.PreparedKeyCache.Shared.Holds(publicKey);

    /// <summary>
    /// True only for a valid 64-byte schnorrkel signature (marker bit set, s &lt; ℓ, valid points). Checks
    /// R == s·B − k·A with a variable-time double-scalar multiplication (<see cref="Curve25519.RistrettoVartime"/>):
    /// every input is public, so timing leaks nothing. Accepts and rejects exactly what
    /// <see cref="VerifyWithLibsodium"/> does.
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (!CheckEncoding(publicKey, signature, out var s)) return false;
        if (!Curve25519.PreparedKeyCache.Shared.Lookup(publicKey, out var key, out var negA)) return false;
        var rBytes = signature[..32];
        if (!Curve25519.RistrettoVartime.TryDecode(rBytes, out var r)) return false;

        Span<byte> k = stackalloc byte[32];
        if (!Challenge(publicKey, message, rBytes, k)) return false;
        return Combination(k, key, negA, s).RistrettoEquals(r);
    }

    // s·B − k·A == R  ⇔  k·(−A) + s·B == R (ristretto equality, no encoding needed): over the key's prepared tables when it
    // has them (≤ 16 doublings), else the plain double-scalar multiplication of −A (253 doublings; a key not prepared: seen
    // once, or the cache full of callers in use, PreparedKeyCache).
    private static Curve25519.ProjectivePoint Combination(ReadOnlySpan<byte> k, Curve25519.VerifyingKey? key, in Curve25519.ExtendedPoint negA, ReadOnlySpan<byte> s) =>
        key is not null
            ? Curve25519.RistrettoVartime.VerifyCombination(k, key, s)
            : Curve25519.RistrettoVartime.DoubleScalarMulBase(k, negA, s);

    /// <summary>
    /// Batch verification (schnorrkel <c>verify_batch</c>): true only when every signature is valid for its key
    /// and message. One multiscalar multiplication checks Σ zᵢ·(sᵢ·B − kᵢ·Aᵢ − Rᵢ) == identity with fresh random
    /// 128-bit zᵢ, so a batch with any invalid signature is rejected except with probability ≈ 2^-128. Cheaper per
    /// signature than <see cref="Verify"/> from a few signatures up; <see cref="VerifyEach"/> tells which ones fail.
    /// An empty batch is valid.
    /// </summary>
    /// <exception cref="ArgumentException">The three lists differ in length.</exception>
    public static bool VerifyBatch(IReadOnlyList<ReadOnlyMemory<byte>> publicKeys, IReadOnlyList<ReadOnlyMemory<byte>> messages,
        IReadOnlyList<ReadOnlyMemory<byte>> signatures)
    {
        ArgumentNullException.ThrowIfNull(publicKeys);
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(signatures);
        var n = publicKeys.Count;
        if (messages.Count != n || signatures.Count != n)
            throw new ArgumentException("a batch needs as many messages and signatures as public keys");
        if (n == 0) return true;
        var items = new Sr25519BatchItem[n];
        for (var i = 0; i < n; i++) items[i] = new Sr25519BatchItem(publicKeys[i], messages[i], signatures[i]);
        var valid = new bool[n];
        VerifyEach(items, valid);
        return Array.TrueForAll(valid, v => v);
    }

    /// <summary>
    /// Verifies every signature of a batch and writes each one's own result to <paramref name="valid"/>, exactly what
    /// <see cref="Verify"/> would answer for it. Signatures that fail the cheap checks (encoding, marker bit,
    /// s ≥ ℓ, points that do not decode) are refused at once and left out; the rest are checked together with one
    /// multiscalar multiplication (schnorrkel <c>verify_batch</c>: fresh random 128-bit coefficients from the
    /// operating system's CSPRNG) when that costs less than verifying them singly (<see cref="BatchPays(int, int)"/>:
    /// six signatures by one key; distinct keys only beyond the batcher's 64). When that equation fails the batch is bisected: each
    /// half is checked by its own equation (fresh coefficients) as long as that pays, and only halves too small for an
    /// equation to pay are verified singly, so a bad signature never fails a good one, and one bad signature among 64 by
    /// distinct keys costs two or three more equations and 16 single verifications instead of 64 (at most ≈ 21 per bad signature:
    /// the smallest range an equation pays for, split once). Returns false when a signature that
    /// passed the cheap checks was refused, true otherwise.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="valid"/> is shorter than <paramref name="items"/>.</exception>
    public static bool VerifyEach(ReadOnlySpan<Sr25519BatchItem> items, Span<bool> valid) => VerifyEachCounted(items, valid, out _);

    /// <summary>As <see cref="VerifyEach(ReadOnlySpan{Sr25519BatchItem}, Span{bool})"/>, telling how much work it took.</summary>
    internal static bool VerifyEachCounted(ReadOnlySpan<Sr25519BatchItem> items, Span<bool> valid, out BatchWork work) =>
        VerifyEachCounted(items, valid, out work, Curve25519.PreparedKeyCache.Shared);

    /// <summary>As <see cref="VerifyEachCounted(ReadOnlySpan{Sr25519BatchItem}, Span{bool}, out BatchWork)"/> over <paramref name="keys"/> (tests: a cache of their own).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static bool VerifyEachCounted(ReadOnlySpan<Sr25519BatchItem> items, Span<bool> valid, out BatchWork work, Curve25519.PreparedKeyCache keys)
    {
        work = default;
        var n = items.Length;
        if (valid.Length < n) throw new ArgumentException("one result per item is needed", nameof(valid));
        if (n == 0) return true;
        var scratch = BatchScratch.Get(n);
        var included = 0;
        var unpreparedFailed = false;
        for (var i = 0; i < n; i++)
        {
            valid[i] = false;
            ref readonly var item = ref items[i];
            var pub = item.PublicKey.Span;
            var sig = item.Signature.Span;
            if (!CheckEncoding(pub, sig, out var s)) continue;
            if (!keys.Lookup(pub, out var key, out var negA)) continue;
            var rBytes = sig[..32];
            if (!Curve25519.RistrettoVartime.TryDecode(rBytes, out var r)) continue;
            var k = scratch.K.AsSpan(32 * included, 32);
            if (!Challenge(pub, item.Message.Span, rBytes, k)) continue;
            if (key is null)
            {
                // A key without prepared tables (first sighting, or no room): verified on its own, outside the equation.
                valid[i] = Combination(k, null, negA, s).RistrettoEquals(r);
                work = work with { Singles = work.Singles + 1 };
                if (!valid[i]) unpreparedFailed = true;
                continue;
            }
            ((ReadOnlySpan<byte>)s).CopyTo(scratch.S.AsSpan(32 * included, 32));
            scratch.Keys[included] = key;
            scratch.R[included] = r;
            scratch.Index[included] = i;
            included++;
        }
        if (included == 0) return !unpreparedFailed;
        try
        {
            return Settle(scratch, 0, included, knownBad: false, valid, ref work) && !unpreparedFailed;
        }
        finally
        {
            Array.Clear(scratch.Keys, 0, included);
        }
    }

    /// <summary>Work done by one <see cref="VerifyEachCounted(ReadOnlySpan{Sr25519BatchItem}, Span{bool}, out BatchWork)"/>.</summary>
    /// <param name="Equations">Batch equations evaluated (the first over the whole batch, then over halves).</param>
    /// <param name="FailedEquations">Of those, the ones that failed (each proves a bad signature in its range).</param>
    /// <param name="Singles">Signatures verified singly.</param>
    internal readonly record struct BatchWork(int Equations, int FailedEquations, int Singles);

    // Settles the prepared signatures [start, start + count): one batch equation when it pays, else each singly. A failed
    // equation proves a bad signature in the range (a range of valid signatures satisfies it for every coefficient), so
    // the range is halved; a half whose sibling held must hold the bad one (knownBad) and skips straight to its halves.
    // An equation that holds accepts its range except with probability ≈ 2^-128, as the whole batch's would.
    [MethodImpl(JitOptions.Hot)]
    private static bool Settle(BatchScratch scratch, int start, int count, bool knownBad, Span<bool> valid, ref BatchWork work)
    {
        if (BatchPays(scratch, start, count))
        {
            if (!knownBad)
            {
                var holds = BatchEquationHolds(scratch, start, count);
                work = work with { Equations = work.Equations + 1, FailedEquations = work.FailedEquations + (holds ? 0 : 1) };
                if (holds)
                {
                    for (var j = start; j < start + count; j++) valid[scratch.Index[j]] = true;
                    return true;
                }
            }
            var half = count / 2;
            var firstHolds = Settle(scratch, start, half, knownBad: false, valid, ref work);
            Settle(scratch, start + half, count - half, knownBad: firstHolds, valid, ref work);
            return false;
        }
        var allValid = true;
        for (var j = start; j < start + count; j++)
        {
            var computed = Curve25519.RistrettoVartime.VerifyCombination(scratch.K.AsSpan(32 * j, 32), scratch.Keys[j]!, scratch.S.AsSpan(32 * j, 32));
            allValid &= valid[scratch.Index[j]] = computed.RistrettoEquals(scratch.R[j]);
        }
        work = work with { Singles = work.Singles + count };
        return allValid;
    }

    /// <summary>
    /// Whether the batch equation is expected to cost less than verifying the <paramref name="signatures"/> singly. A
    /// single verification over a prepared key costs ≈ 600 field multiplications (16 doublings, ≈ 70 table additions);
    /// in a batch each distinct key costs its ≈ 42 additions (≈ 300), each signature its R term (a table and ≈ 21
    /// additions, ≈ 240, plus the scalar products), and the batch once its 129 doublings and the basepoint (≈ 1 100).
    /// Signatures by one key pay from six. With every key distinct the batch only breaks even at the batcher's limit
    /// of 64 (session 11, quiet `verify-cpu`: 16 distinct keys 31.9 µs per signature against 29.9 singly, 64 distinct
    /// 30.7; 16 signatures by one key 20.9), since a prepared key's single verification already shares its doublings.
    /// </summary>
    internal static bool BatchPays(int signatures, int distinctKeys) =>
        signatures > 1 && (600 * signatures) > (300 * distinctKeys) + (280 * signatures) + 1_300;

    private static bool BatchPays(BatchScratch scratch, int start, int n)
    {
        if (n < 2) return false;
        var unique = 0;
        var keys = scratch.UniqueKeys;
        for (var i = start; i < start + n; i++)
        {
            var key = scratch.Keys[i]!;
            var slot = 0;
            while (slot < unique && !ReferenceEquals(keys[slot], key)) slot++;
            if (slot == unique) keys[unique++] = key;
        }
        Array.Clear(keys, 0, unique);
        return BatchPays(n, unique);
    }

    // Σ (zᵢ·kᵢ)·(−Aᵢ) + Σ zᵢ·(−Rᵢ) + (Σ zᵢ·sᵢ)·B == identity, signatures by the same key summed into one scalar.
    // Over the prepared signatures [start, start + n); writes only the scratch's equation buffers (from 0), so the
    // prepared inputs survive for the halves of a failed equation.
    [MethodImpl(JitOptions.Hot)]
    private static bool BatchEquationHolds(BatchScratch scratch, int start, int n)
    {
        var z = scratch.Z.AsSpan(0, 16 * n);
        System.Security.Cryptography.RandomNumberGenerator.Fill(z);
        var keys = scratch.UniqueKeys;
        var keyScalars = scratch.KeyScalars.AsSpan(0, 32 * n);
        keyScalars.Clear();
        var pointScalars = scratch.PointScalars.AsSpan(0, 32 * n);
        pointScalars.Clear();
        Span<byte> baseScalar = stackalloc byte[32];
        baseScalar.Clear();
        Span<byte> product = stackalloc byte[32];
        var unique = 0;
        for (var i = 0; i < n; i++)
        {
            var at = start + i;
            var zi = pointScalars.Slice(32 * i, 32);
            z.Slice(16 * i, 16).CopyTo(zi);
            zi[0] |= 1; // never zero
            var key = scratch.Keys[at]!;
            var slot = 0;
            while (slot < unique && !ReferenceEquals(keys[slot], key)) slot++;
            if (slot == unique) keys[unique++] = key;
            var keyScalar = keyScalars.Slice(32 * slot, 32);
            Ristretto.ScalarMul(zi, scratch.K.AsSpan(32 * at, 32), product);
            Ristretto.ScalarAdd(keyScalar, product, keyScalar);     // Σ zᵢ·kᵢ for −A
            scratch.NegR[i] = scratch.R[at].Negate();               // zᵢ for −Rᵢ
            Ristretto.ScalarMul(zi, scratch.S.AsSpan(32 * at, 32), product);
            Ristretto.ScalarAdd(baseScalar, product, baseScalar);   // Σ zᵢ·sᵢ for B
        }
        var holds = Curve25519.RistrettoVartime.BatchCombination(keyScalars[..(32 * unique)], keys.AsSpan(0, unique), pointScalars,
            scratch.NegR.AsSpan(0, n), baseScalar).IsRistrettoIdentity;
        Array.Clear(keys, 0, unique);
        return holds;
    }

    /// <summary>Per-thread buffers of <see cref="VerifyEach"/>, grown to the largest batch seen (no allocation per batch).</summary>
    private sealed class BatchScratch
    {
        [ThreadStatic] private static BatchScratch? current;

        internal Curve25519.VerifyingKey?[] Keys = [];
        internal Curve25519.VerifyingKey[] UniqueKeys = [];
        internal Curve25519.ExtendedPoint[] R = [];
        internal Curve25519.ExtendedPoint[] NegR = [];
        internal int[] Index = [];
        internal byte[] K = [];
        internal byte[] S = [];
        internal byte[] Z = [];
        internal byte[] KeyScalars = [];
        internal byte[] PointScalars = [];

        internal static BatchScratch Get(int n)
        {
            var s = current ??= new BatchScratch();
            if (s.Keys.Length < n)
            {
                s.Keys = new Curve25519.VerifyingKey?[n];
                s.UniqueKeys = new Curve25519.VerifyingKey[n];
                s.R = new Curve25519.ExtendedPoint[n];
                s.NegR = new Curve25519.ExtendedPoint[n];
                s.Index = new int[n];
                s.K = new byte[32 * n];
                s.S = new byte[32 * n];
                s.Z = new byte[16 * n];
                s.KeyScalars = new byte[32 * n];
                s.PointScalars = new byte[32 * n];
            }
            return s;
        }
    }

    /// <summary>
    /// The previous verification, on libsodium's constant-time ristretto255 arithmetic (three scalar
    /// multiplications and an encoding). Kept as a cross-check for <see cref="Verify"/>; same accept/reject set.
    /// </summary>
    public static bool VerifyWithLibsodium(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (!CheckEncoding(publicKey, signature, out var s)) return false;
        var rBytes = signature[..32];
        Span<byte> k = stackalloc byte[32];
        if (!Challenge(publicKey, message, rBytes, k)) return false;

        // Invalid encodings need no separate (costly) decode: libsodium's scalarmult refuses an invalid A,
        // and a non-canonical R can never equal the canonical encoding computed below.
        Span<byte> sB = stackalloc byte[32];
        Span<byte> kA = stackalloc byte[32];
        Span<byte> expected = stackalloc byte[32];
        if (!Ristretto.ScalarMultBase(s, sB)) return false;
        if (!Ristretto.ScalarMult(k, publicKey, kA)) return false;
        if (!Ristretto.Sub(sB, kA, expected)) return false;
        return expected.SequenceEqual(rBytes);
    }

    /// <summary>
    /// Lengths, the schnorrkel marker bit, s &lt; ℓ; then the identity rejections of the libsodium path
    /// (s = 0, A or R the identity encoding), which <see cref="Verify"/> keeps so both paths agree.
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    private static bool CheckEncoding(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> signature, out ScalarBytes s)
    {
        s = default;
        if (publicKey.Length != 32 || signature.Length != 64) return false;
        if ((signature[63] & 0x80) == 0) return false;
        Span<byte> sSpan = s;
        signature[32..].CopyTo(sSpan);
        sSpan[31] &= 0x7f;
        if (!Ristretto.IsCanonicalScalar(sSpan)) return false;
        if (sSpan.IndexOfAnyExcept((byte)0) < 0) return false;
        return !Ristretto.IsIdentity(publicKey) && !Ristretto.IsIdentity(signature[..32]);
    }

    /// <summary>k = challenge("sign:c") mod ℓ over the substrate signing transcript; false when k = 0.</summary>
    [MethodImpl(JitOptions.Hot)]
    private static bool Challenge(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> rBytes, Span<byte> k)
    {
        var t = t_challenge ??= SubstrateContext.Clone();
        t.CopyFrom(SubstrateContext);
        t.AppendMessage("sign-bytes"u8, message);
        t.AppendMessage("proto-name"u8, "Schnorr-sig"u8);
        t.AppendMessage("sign:pk"u8, publicKey);
        t.AppendMessage("sign:R"u8, rBytes);
        Span<byte> wide = stackalloc byte[64];
        t.ChallengeBytes("sign:c"u8, wide);
        Ristretto.Reduce64(wide, k);
        return k.IndexOfAnyExcept((byte)0) >= 0;
    }

    /// <summary>
    /// Like <see cref="Verify"/>, but also accepts a signature over <c>&lt;Bytes&gt;</c> + message +
    /// <c>&lt;/Bytes&gt;</c>, the wrapping polkadot-js <c>signRaw</c> (browser extensions) applies; bittensor's
    /// <c>Keypair.verify</c> accepts both.
    /// </summary>
    public static bool VerifyRawOrBytesWrapped(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (Verify(publicKey, message, signature)) return true;
        if (message.StartsWith("<Bytes>"u8) && message.EndsWith("</Bytes>"u8)) return false;
        var wrapped = new byte[7 + message.Length + 8];
        "<Bytes>"u8.CopyTo(wrapped);
        message.CopyTo(wrapped.AsSpan(7));
        "</Bytes>"u8.CopyTo(wrapped.AsSpan(7 + message.Length));
        return Verify(publicKey, wrapped, signature);
    }

    /// <summary>
    /// The public key of a soft derivation (<c>/junction</c>) computed from the parent public key alone:
    /// A + δ·B with δ = HDKD-scalar(A, chain code). Throws <see cref="ArgumentException"/> on a bad key.
    /// </summary>
    public static byte[] DerivePublicSoft(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> chainCode)
    {
        if (publicKey.Length != 32 || !Ristretto.IsValidPoint(publicKey)) throw new ArgumentException("not a valid sr25519 public key", nameof(publicKey));
        if (chainCode.Length != 32) throw new ArgumentException("a chain code must be 32 bytes", nameof(chainCode));
        Span<byte> delta = stackalloc byte[32];
        SoftDeriveScalar(publicKey, chainCode, delta);
        Span<byte> dB = stackalloc byte[32];
        var result = new byte[32];
        if (!Ristretto.ScalarMultBase(delta, dB) || !Ristretto.Add(publicKey, dB, result))
            throw new ArgumentException("soft derivation failed for this public key", nameof(publicKey));
        return result;
    }

    /// <summary>Runs the HDKD transcript for a soft junction; writes δ and returns the transcript (for the nonce RNG).</summary>
    internal static MerlinTranscript SoftDeriveScalar(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> chainCode, Span<byte> delta)
    {
        var t = new MerlinTranscript("SchnorrRistrettoHDKD"u8);
        t.AppendMessage("sign-bytes"u8, ReadOnlySpan<byte>.Empty);
        t.AppendMessage("chain-code"u8, chainCode);
        t.AppendMessage("public-key"u8, publicKey);
        Span<byte> wide = stackalloc byte[64];
        t.ChallengeBytes("HDKD-scalar"u8, wide);
        Ristretto.Reduce64(wide, delta);
        Span<byte> unusedChainCode = stackalloc byte[32];
        t.ChallengeBytes("HDKD-chaincode"u8, unusedChainCode);
        return t;
    }
}

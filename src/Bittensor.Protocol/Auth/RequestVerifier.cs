using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>
/// The axon side of request authentication. Reads the three headers by name, checks the version rule and
/// the nonce's skew window, verifies the sr25519 signature over UTF-8(nonce + ss58), and only then records the
/// nonce, which must be at least 1 ms newer than the caller's last accepted one. Unlike the 2021 axon, an
/// unsigned request can therefore never move a caller's nonce (no lock-out by far-future nonces) and the store
/// is bounded. With <see cref="RequestVerifierOptions.NonceFilePath"/> set the store is write-ahead: an accepted
/// nonce is written to the journal (group-committed; with fsync on, covered by a reservation on disk) before
/// <see cref="VerifyAsync(Metadata)"/> answers Accept, so no restart, <c>kill -9</c> and power loss included, accepts a
/// request accepted before it (docs/axon.md, "Replay after a restart").
/// Thread-safe: gRPC calls it from many threads.
/// </summary>
public sealed class RequestVerifier : IDisposable
{
    private const int MaxSignatureHeaderLength = 512;
    private const string BadSignature = "signature does not verify for this hotkey";
    private const string NotFresh = "nonce is not at least 1 ms newer than the last accepted from this caller (replay?)";
    private const string TooManyNewCallers = "too many new callers to verify right now; retry in a second";
    private const string HeldAfterBadSignature =
        "a call under this hotkey from this address just failed its signature check, and too many callers await one right now; retry in a second";
    private const string HeldEverywhereAfterBadSignatures =
        "calls under this hotkey from several addresses just failed their signature check, and too many callers await one right now; retry in a second";
    private static readonly long QuarterHour = TimeSpan.FromMinutes(15).Ticks;
    private static readonly long MinOffset = TimeSpan.FromHours(-12).Ticks;
    private static readonly long MaxOffset = TimeSpan.FromHours(14).Ticks;

    private readonly RequestVerifierOptions _options;
    private readonly ISignatureVerifier _signatures;
    private readonly TimeProvider _clock;
    private readonly NonceStore _store;
    private readonly Lock _gate = new();
    private readonly NonceJournal? _journal;

    /// <summary>The write-ahead journal (null without a nonce file); tests hold its writes.</summary>
    internal NonceJournal? Journal => _journal;
    private bool _disposed;

    // Token bucket of verifications for callers with no remembered nonce (NewCallerVerifiesPerSecond); under _gate.
    private double _newCallerTokens;
    private long _newCallerRefilledAt;

    // Known hotkeys held after a failed signature check (FailedSignatureHold), per (hotkey, peer address); under _gate.
    // A hold binds only calls from the address (IPv6: its /64) the bad signature came from, so an impersonator of a known
    // hotkey cannot get the real owner's calls from elsewhere refused, until bad signatures under one hotkey came from
    // HeldAddressesBeforeAll addresses within the hold: then the hotkey is held from every address (a flood from many
    // addresses would otherwise buy a verify per address per hold). Only remembered callers get an entry; hotkeys whose
    // holds have all ended are pruned when the table has doubled since the last prune.
    private readonly Dictionary<string, HotkeyHolds> _held = new(StringComparer.Ordinal);
    private readonly long _holdTicks;
    private int _pruneHeldAt = 1024;

    /// <summary>
    /// Creates a verifier. With a nonce file, loads its snapshot and journal (throws <see cref="InvalidDataException"/>
    /// if they are not a nonce store, rather than silently forgetting nonces, and <see cref="IOException"/> when another
    /// process holds the store).
    /// </summary>
    /// <param name="options">Windows, capacity and file; validated.</param>
    /// <param name="signatures">The signature check; <see cref="Sr25519SignatureVerifier.Instance"/> by default.</param>
    /// <param name="clock">Time source for the skew window; the system clock by default.</param>
    public RequestVerifier(RequestVerifierOptions? options = null, ISignatureVerifier? signatures = null, TimeProvider? clock = null)
    {
        _options = (options ?? RequestVerifierOptions.Default).Validate();
        _signatures = signatures ?? Sr25519SignatureVerifier.Instance;
        _clock = clock ?? TimeProvider.System;
        _store = new NonceStore(_options.NonceCapacity);
        _newCallerTokens = Math.Max(1, _options.NewCallerVerifiesPerSecond);
        _newCallerRefilledAt = _clock.GetTimestamp();
        _holdTicks = (long)(_options.FailedSignatureHold.TotalSeconds * _clock.TimestampFrequency);
        if (_options.NonceFilePath is { } path)
            _journal = NonceJournal.Open(path, _options.NonceFileSync, _store, DropBelowTicks(), SnapshotEntries, _options.OnNonceFileProblem,
                _options.BootId is { } boot ? boot() : NonceJournal.KernelBootId());
    }

    /// <summary>Number of callers whose last nonce is currently remembered.</summary>
    public int TrackedCallers
    {
        get { lock (_gate) return _store.Count; }
    }

    /// <summary>
    /// Checks a call's request headers (looked up by name; position does not matter here). With a nonce file an Accept
    /// completes only once the nonce is in the journal; without one the task is already complete.
    /// </summary>
    public ValueTask<AuthResult> VerifyAsync(Metadata requestHeaders) => VerifyAsync(requestHeaders, null);

    /// <summary>
    /// As <see cref="VerifyAsync(Metadata)"/> for a call from <paramref name="peer"/> (the connection's remote address; null
    /// when unknown): a failed signature holds its hotkey (<see cref="RequestVerifierOptions.FailedSignatureHold"/>) for
    /// calls from that address only (IPv6: its /64).
    /// </summary>
    public ValueTask<AuthResult> VerifyAsync(Metadata requestHeaders, IPAddress? peer)
    {
        ArgumentNullException.ThrowIfNull(requestHeaders);
        return VerifyAsync(
            requestHeaders.GetValue(AuthHeaders.AuthName),
            requestHeaders.GetValue(AuthHeaders.SignatureName),
            requestHeaders.GetValue(AuthHeaders.VersionName),
            peer);
    }

    /// <summary>
    /// Checks the three header values; null means the header was absent. Never throws on bad input. With an
    /// <see cref="IAsyncSignatureVerifier"/> (the batching <see cref="Sr25519BatchVerifier"/>) the signature check may
    /// complete later, together with other calls' signatures. <paramref name="peer"/>: the caller's address (null:
    /// unknown), the scope of a hold after a failed signature.
    /// </summary>
    public ValueTask<AuthResult> VerifyAsync(string? authHeader, string? signatureHeader, string? versionHeader, IPAddress? peer = null)
    {
        var rejected = Precheck(authHeader, signatureHeader, versionHeader, peer, out var call);
        if (rejected is { } refused) return ValueTask.FromResult(refused);
        if (_signatures is IAsyncSignatureVerifier batched)
        {
            ValueTask<bool> pending;
            try
            {
                pending = batched.VerifyAsync(call.Ss58, call.Message, call.Signature);
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException)
            {
                return ValueTask.FromResult(Reject(BadSignature, call.Ss58));
            }
            return pending.IsCompletedSuccessfully ? Conclude(call, pending.Result) : AwaitSignature(pending, call);
        }
        bool valid;
        try
        {
            valid = _signatures.Verify(call.Ss58, call.Message, call.Signature);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            valid = false;
        }
        return Conclude(call, valid);
    }

    /// <summary>The signature verifier in use (a <see cref="Sr25519BatchVerifier"/> when calls are verified in batches).</summary>
    public ISignatureVerifier SignatureVerifier => _signatures;

    /// <summary>As <see cref="VerifyAsync(Metadata)"/>, blocking the calling thread until the nonce is durable (tools and tests; servers use the async form).</summary>
    public AuthResult Verify(Metadata requestHeaders)
    {
        ArgumentNullException.ThrowIfNull(requestHeaders);
        return Verify(
            requestHeaders.GetValue(AuthHeaders.AuthName),
            requestHeaders.GetValue(AuthHeaders.SignatureName),
            requestHeaders.GetValue(AuthHeaders.VersionName));
    }

    /// <summary>As <see cref="VerifyAsync(string, string, string, IPAddress)"/>, blocking until the nonce is durable.</summary>
    public AuthResult Verify(string? authHeader, string? signatureHeader, string? versionHeader)
    {
        var pending = VerifyAsync(authHeader, signatureHeader, versionHeader);
        return pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    private static async ValueTask<AuthResult> AwaitDurable(AuthResult accepted, Task durable)
    {
        try
        {
            await durable.ConfigureAwait(false);
            return accepted;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            // Fail closed: a request whose nonce may not be on disk could be replayed after a restart.
            return AuthResult.Rejected(ReturnCode.UnknownException, "this axon cannot record nonces right now (nonce store not writable)", accepted.Hotkey);
        }
    }

    private async ValueTask<AuthResult> AwaitSignature(ValueTask<bool> pending, SignedCall call)
    {
        bool valid;
        try
        {
            valid = await pending.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            valid = false; // fail closed: a signature that could not be checked is not accepted
        }
        return await Conclude(call, valid).ConfigureAwait(false);
    }

    private ValueTask<AuthResult> Conclude(SignedCall call, bool valid)
    {
        if (!valid)
        {
            if (_holdTicks > 0)
            {
                lock (_gate)
                {
                    if (_store.Contains(call.Ss58)) Hold(call.Ss58, call.Peer);
                }
            }
            return ValueTask.FromResult(Reject(BadSignature, call.Ss58));
        }

        // Recorded only after the signature holds, and re-checked under the lock: of two concurrent
        // copies of one signed request exactly one passes.
        // With a file, the nonce is queued for the journal inside the same lock, and the Accept waits for the write.
        Task? durable;
        var reorder = _options.ReorderWindow.Ticks;
        lock (_gate)
        {
            if (!_store.IsFresh(call.Ss58, call.Nonce, reorder)) return ValueTask.FromResult(Reject(NotFresh, call.Ss58));
            _store.Record(call.Ss58, call.Nonce, reorder, DropBelowTicks());
            durable = _journal?.Append(call.Ss58, call.Nonce);
        }
        var accepted = AuthResult.Accepted(call.Ss58);
        if (durable is null) return ValueTask.FromResult(accepted);
        // Outside the lock (a compaction's snapshot takes it): starts a write on the thread pool when none is under way.
        if (!durable.IsCompleted) _journal!.Commit();
        return durable.IsCompletedSuccessfully ? ValueTask.FromResult(accepted) : AwaitDurable(accepted, durable);
    }

    private readonly record struct SignedCall(string Ss58, long Nonce, byte[] Message, byte[] Signature, PeerKey Peer);

    /// <summary>
    /// The address a hold is scoped to: an IPv4 address as is (also when mapped into IPv6), an IPv6 address by its /64
    /// (one host or site typically holds a whole /64), none (unknown peer) as a value no address maps to.
    /// </summary>
    internal readonly record struct PeerKey(ulong High, ulong Low)
    {
        public static PeerKey Unknown { get; } = new(ulong.MaxValue, ulong.MaxValue);

        public static PeerKey Of(IPAddress? address)
        {
            if (address is null) return Unknown;
            if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
            Span<byte> bytes = stackalloc byte[16];
            if (address.AddressFamily == AddressFamily.InterNetwork && address.TryWriteBytes(bytes, out _))
                return new PeerKey(0, 0x0000_FFFF_0000_0000UL | BinaryPrimitives.ReadUInt32BigEndian(bytes));
            if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.TryWriteBytes(bytes, out _))
                return new PeerKey(BinaryPrimitives.ReadUInt64BigEndian(bytes), 0);
            return Unknown;
        }
    }


    // Everything before the signature check: headers, version, nonce window, and a cheap look at freshness (a replay
    // is turned away without verifying). Null when the call may go on to the signature check.
    private AuthResult? Precheck(string? authHeader, string? signatureHeader, string? versionHeader, IPAddress? peer, out SignedCall call)
    {
        call = default;
        if (!string.Equals(authHeader, AuthHeaders.AuthValue, StringComparison.Ordinal))
            return Reject("missing or wrong rpc-auth-header");

        if (versionHeader is null)
            return Reject("missing bittensor-version header");
        if (!int.TryParse(versionHeader, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            return Reject("bittensor-version is not a number");
        if (!ProtocolVersion.IsCallerCompatible(_options.OwnVersion, version))
            return AuthResult.Rejected(ReturnCode.RequestIncompatibleVersion,
                $"caller version {version} is too old for this axon (version {_options.OwnVersion})");

        if (string.IsNullOrEmpty(signatureHeader))
            return Reject("missing bittensor-signature header");
        if (signatureHeader.Length > MaxSignatureHeaderLength)
            return Reject("bittensor-signature is too long");
        if (!TryParseSignatureHeader(signatureHeader, out var nonceRange, out var ss58, out var signature, out var parseError))
            return Reject(parseError);
        var nonceText = signatureHeader.AsSpan()[nonceRange];
        if (!RequestNonce.TryParse(nonceText, out var nonceTime))
            return Reject("the nonce is not MMddyyyyHHmmss plus 6 digits of microseconds", ss58);
        var nonce = nonceTime.Ticks;

        var windowError = CheckWindow(nonce);
        if (windowError is not null) return Reject(windowError, ss58);

        var reorder = _options.ReorderWindow.Ticks;
        lock (_gate)
        {
            if (!_store.IsFresh(ss58, nonce, reorder)) return Reject(NotFresh, ss58);
            // A caller is trusted without a token when it has signed correctly within max_age and no call under its
            // hotkey from this address failed the signature check within the hold (an impersonation flood would otherwise
            // cost a verify per call; a flood from one address does not hold the owner's calls from another).
            var remembered = _store.Contains(ss58);
            var held = remembered ? Held(ss58, peer) : null;
            if ((!remembered || held is not null) && !TakeNewCallerToken()) return Reject(held ?? TooManyNewCallers, ss58);
        }

        // The signed message, nonce then ss58 in UTF-8, made in place (the nonce is ASCII digits: no character spans the two).
        var message = new byte[Encoding.UTF8.GetByteCount(nonceText) + Encoding.UTF8.GetByteCount(ss58)];
        Encoding.UTF8.GetBytes(ss58, message.AsSpan(Encoding.UTF8.GetBytes(nonceText, message)));
        call = new SignedCall(ss58, nonce, message, signature, PeerKey.Of(peer));
        return null;
    }

    /// <summary>
    /// Distinct addresses (IPv6: /64s) whose bad signatures under one known hotkey, within the hold, make the hold cover
    /// the hotkey from every address (<see cref="RequestVerifierOptions.FailedSignatureHold"/>).
    /// </summary>
    internal const int HeldAddressesBeforeAll = 4;

    // Under _gate. While a hold of the hotkey covers calls from this address (its own after a failed signature check
    // from there, or the hotkey's hold from every address), the reason a call refused for it gives; else null (ended
    // holds are dropped).
    private string? Held(string ss58, IPAddress? peer)
    {
        if (_held.Count == 0 || !_held.TryGetValue(ss58, out var holds)) return null;
        var now = _clock.GetTimestamp();
        if (now < holds.AllUntil) return HeldEverywhereAfterBadSignatures;
        holds.DropEnded(now);
        if (holds.IsEmpty(now))
        {
            _held.Remove(ss58);
            return null;
        }
        return holds.Covers(PeerKey.Of(peer), now) ? HeldAfterBadSignature : null;
    }

    // Under _gate. Holds a remembered hotkey for calls from one address for FailedSignatureHold from now; from every
    // address once HeldAddressesBeforeAll addresses are held.
    private void Hold(string ss58, PeerKey peer)
    {
        var now = _clock.GetTimestamp();
        if (_held.Count >= _pruneHeldAt)
        {
            foreach (var (key, h) in _held)
            {
                h.DropEnded(now);
                if (h.IsEmpty(now)) _held.Remove(key);
            }
            _pruneHeldAt = Math.Max(1024, 2 * _held.Count);
        }
        if (!_held.TryGetValue(ss58, out var holds)) _held[ss58] = holds = new HotkeyHolds();
        holds.Hold(peer, now, now + _holdTicks);
    }

    // One hotkey's holds: up to HeldAddressesBeforeAll - 1 addresses, each with its end, or one end for every address.
    private sealed class HotkeyHolds
    {
        private readonly List<(PeerKey Peer, long Until)> _byAddress = new(HeldAddressesBeforeAll);

        public long AllUntil { get; private set; }

        public bool IsEmpty(long now) => _byAddress.Count == 0 && AllUntil <= now;

        public void DropEnded(long now) => _byAddress.RemoveAll(h => h.Until <= now);

        public bool Covers(PeerKey peer, long now)
        {
            foreach (var (p, until) in _byAddress)
                if (p == peer && now < until) return true;
            return false;
        }

        public void Hold(PeerKey peer, long now, long until)
        {
            if (now < AllUntil)
            {
                AllUntil = until;
                return;
            }
            DropEnded(now);
            var i = _byAddress.FindIndex(h => h.Peer == peer);
            if (i >= 0)
            {
                _byAddress[i] = (peer, until);
                return;
            }
            if (_byAddress.Count + 1 >= HeldAddressesBeforeAll)
            {
                // Bad signatures from this many addresses: not one impostor's, a spread flood. Every address is held.
                _byAddress.Clear();
                AllUntil = until;
                return;
            }
            _byAddress.Add((peer, until));
        }
    }

    // Under _gate. One token per verification of a caller without a remembered nonce; refilled at
    // NewCallerVerifiesPerSecond up to one second's worth.
    private bool TakeNewCallerToken()
    {
        var rate = _options.NewCallerVerifiesPerSecond;
        if (rate == 0) return true;
        var now = _clock.GetTimestamp();
        var elapsed = (double)(now - _newCallerRefilledAt) / _clock.TimestampFrequency;
        _newCallerRefilledAt = now;
        _newCallerTokens = Math.Min(Math.Max(1, rate), _newCallerTokens + (elapsed * rate));
        if (_newCallerTokens < 1) return false;
        _newCallerTokens -= 1;
        return true;
    }

    /// <summary>Asks the journal to compact now (on the thread pool): the store is written as a new snapshot (atomically, mode 0600) and the journal emptied.</summary>
    public void Flush() => _journal?.RequestCompaction();

    /// <summary>Writes what is queued, compacts the journal into the snapshot and releases the files.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _journal?.Dispose();
    }

    /// <summary>Test hook: releases the files as a killed process would (nothing compacted, unanswered nonces dropped).</summary>
    internal void SimulateCrash(Action? afterCrashMarked = null)
    {
        _disposed = true;
        _journal?.SimulateCrash(afterCrashMarked);
    }

    private int SnapshotEntries(ref (string Ss58, long NonceTicks)[] entries)
    {
        lock (_gate)
        {
            _store.Trim(DropBelowTicks());
            return _store.CopyTo(ref entries);
        }
    }

    private static AuthResult Reject(string reason, string? hotkey = null) => AuthResult.Rejected(ReturnCode.Unauthenticated, reason, hotkey);

    private static bool TryParseSignatureHeader(string header, out Range nonce, out string ss58, out byte[] signature, out string error)
    {
        nonce = default;
        ss58 = error = string.Empty;
        signature = [];
        // The nonce is fixed-width and the signature hex has no 'bitxx', so split on the first and last
        // separator: an ss58 address may itself contain 'bitxx' (base58 allows it).
        var first = header.IndexOf(AuthHeaders.Separator, StringComparison.Ordinal);
        var last = header.LastIndexOf(AuthHeaders.Separator, StringComparison.Ordinal);
        if (first < 0 || last <= first)
        {
            error = "bittensor-signature is not <nonce>bitxx<ss58>bitxx<signature>";
            return false;
        }
        nonce = ..first;
        var address = header.AsSpan()[(first + AuthHeaders.Separator.Length)..last];
        var hex = header.AsSpan(last + AuthHeaders.Separator.Length);
        if (hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) hex = hex[2..];
        if (address.Length is 0 or > 64)
        {
            error = "bittensor-signature has no valid ss58 address";
            return false;
        }
        // A caller seen before: the address string the hotkey cache holds, not a new one per call.
        ss58 = HotkeyCache.Address(address);
        if (hex.Length != 128)
        {
            error = "the signature is not 64 bytes of hex";
            return false;
        }
        signature = new byte[64];
        if (Convert.FromHexString(hex, signature, out _, out _) != System.Buffers.OperationStatus.Done)
        {
            error = "the signature is not 64 bytes of hex";
            return false;
        }
        return true;
    }

    private string? CheckWindow(long nonce)
    {
        var maxFuture = _options.MaxFutureSkew.Ticks;
        var maxAge = _options.MaxAge.Ticks;
        if (!_options.AcceptAnyUtcOffset)
        {
            var diff = nonce - _clock.GetLocalNow().DateTime.Ticks;
            if (diff > maxFuture) return "nonce is too far in the future";
            if (diff < -maxAge) return "nonce is stale";
            return null;
        }

        // The one whole-quarter-hour zone offset o with diff - o inside [-maxAge, +maxFuture], if any
        // (the window is shorter than 15 min, so there is at most one).
        var utcDiff = nonce - _clock.GetUtcNow().UtcDateTime.Ticks;
        var low = utcDiff - maxFuture;
        var offset = low >= 0 ? (low + QuarterHour - 1) / QuarterHour * QuarterHour : -(-low / QuarterHour * QuarterHour);
        if (offset > MaxOffset) return "nonce is too far in the future";
        if (offset < MinOffset) return "nonce is stale";
        if (offset > utcDiff + maxAge) return "nonce is outside the clock-skew window";
        return null;
    }

    // Every nonce below this fails the window, so entries holding one can go (see NonceStore.Trim).
    private long DropBelowTicks() => _options.AcceptAnyUtcOffset
        ? _clock.GetUtcNow().UtcDateTime.Ticks + MinOffset - _options.MaxAge.Ticks
        : _clock.GetLocalNow().DateTime.Ticks - _options.MaxAge.Ticks;
}

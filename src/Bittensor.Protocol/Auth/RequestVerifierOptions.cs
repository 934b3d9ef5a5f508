namespace Bittensor.Protocol;

/// <summary>Settings of <see cref="RequestVerifier"/>.</summary>
public sealed record RequestVerifierOptions
{
    /// <summary>Defaults: version 150, nonces at most 30 s ahead and 60 s behind, any UTC offset, 100,000 callers, no file.</summary>
    public static RequestVerifierOptions Default { get; } = new();

    /// <summary>This axon's protocol version; callers with <c>own &lt;= theirs + 10</c> are accepted.</summary>
    public int OwnVersion { get; init; } = ProtocolVersion.Current;

    /// <summary>How far a nonce may lie ahead of this clock (after the time-zone alignment, see <see cref="AcceptAnyUtcOffset"/>).</summary>
    public TimeSpan MaxFutureSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How far a nonce may lie behind this clock. Older nonces are rejected as stale.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The nonce is the sender's <em>local</em> time with no zone. When true (default) a nonce is judged
    /// against UTC shifted by the nearest whole quarter hour in [−12 h, +14 h] (every real zone offset is a
    /// multiple of 15 min), so peers in any zone pass while the skew window still applies to the remainder.
    /// When false the nonce is compared with this machine's local time (peers share one zone).
    /// </summary>
    public bool AcceptAnyUtcOffset { get; init; } = true;

    /// <summary>
    /// Zero (default) keeps the 2021 rule: a nonce must be at least 1 ms newer than the caller's newest
    /// accepted one, so two calls signed in one order and verified in the other (concurrent calls over HTTP/2)
    /// lose the older one. A positive window also accepts a nonce up to this much older than the newest if no
    /// accepted nonce lies within 1 ms of it; replays stay rejected (the last 32 such nonces are remembered,
    /// older ones raise a floor). Not persisted: after a restart only nonces above the newest pass.
    /// </summary>
    public TimeSpan ReorderWindow { get; init; } = TimeSpan.Zero;

    /// <summary>Most callers whose last nonce is remembered. Beyond it the least recently seen caller is forgotten.</summary>
    public int NonceCapacity { get; init; } = 100_000;

    /// <summary>
    /// Snapshot file of the nonce store (its write-ahead journal is this path + <c>.journal</c>); null keeps the
    /// nonces in memory only, so a restart reopens every request of the last <see cref="MaxAge"/> to replay.
    /// </summary>
    public string? NonceFilePath { get; init; }

    /// <summary>
    /// Every journal batch is handed to the operating system (<c>write</c>) before its requests are accepted, which
    /// survives the process being killed (<c>kill -9</c>, crash). True (default): the nonces also survive power loss and
    /// kernel crashes: a nonce not inside its caller's reservation on disk goes out with a new reservation (nonce + 10 s)
    /// in a batch that is fsynced before its requests are accepted, and after a reboot every reserved nonce counts as
    /// used. False: no fsync (not the machine going down).
    /// </summary>
    public bool NonceFileSync { get; init; } = true;

    /// <summary>
    /// Told (from the thread writing the journal: a call's or the thread pool's; must not block or throw) when the nonce file stops being writable — disk full,
    /// file-size limit, I/O error: requests are then refused with <c>UnknownException</c> until it is writable again —
    /// and when it is writable again. One message per change, not per request.
    /// </summary>
    public Action<string>? OnNonceFileProblem { get; init; }

    /// <summary>
    /// Most signature verifications per second for callers this axon does not know — no accepted nonce remembered
    /// (new, or silent for longer than <see cref="MaxAge"/>); 0 = no limit. Up to one second's worth may be used at once.
    /// A call over it is refused before its signature is checked (Unauthenticated, "too many new callers"), so a flood of
    /// well-formed bad signatures from keys that never signed correctly costs header parsing, not one verify each, and
    /// cannot take the core from callers that have signed correctly. Default 1000/s (≈ 3 % of a core at ~30 µs each).
    /// A flood that claims a known caller's hotkey is held back by <see cref="FailedSignatureHold"/>.
    /// </summary>
    public double NewCallerVerifiesPerSecond { get; init; } = 1000;

    /// <summary>
    /// How long a known caller's hotkey (one with an accepted nonce remembered) counts as unknown, for calls from the
    /// address a call under it failed its signature check from (IPv4 address, IPv6 /64; the peer given to
    /// <see cref="RequestVerifier.VerifyAsync(Grpc.Core.Metadata, System.Net.IPAddress)"/>); zero = never. While held, calls
    /// under that hotkey from that address draw from the <see cref="NewCallerVerifiesPerSecond"/> budget like a new
    /// caller's, so a flood of bad signatures that claims a known caller's hotkey (an impersonation flood) costs at most
    /// one verify per (hotkey, address) per hold plus the shared budget, not one verify per call. Calls under the hotkey
    /// from other addresses are not held: the genuine owner elsewhere keeps being trusted; only an owner sharing the
    /// flood's address (or /64) competes with it for the shared budget while the hold lasts. Once bad signatures under one
    /// hotkey came from 4 addresses within the hold (a flood spread over many addresses, which would otherwise buy one
    /// verify per address per hold), the hotkey is held from every address until the hold ends: the owner then competes
    /// for the budget wherever it calls from. Default 1 s.
    /// </summary>
    public TimeSpan FailedSignatureHold { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Test hook: the id of the running boot (null: unknown); unset, the kernel's (<c>/proc/sys/kernel/random/boot_id</c>).</summary>
    internal Func<string?>? BootId { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for values that make the checks meaningless.</summary>
    public RequestVerifierOptions Validate()
    {
        if (MaxFutureSkew < TimeSpan.Zero || MaxAge <= TimeSpan.Zero)
            throw new ArgumentException("MaxFutureSkew must be >= 0 and MaxAge > 0");
        if (AcceptAnyUtcOffset && MaxFutureSkew + MaxAge >= TimeSpan.FromMinutes(15))
            throw new ArgumentException("with AcceptAnyUtcOffset the skew window (MaxFutureSkew + MaxAge) must be under 15 minutes");
        if (ReorderWindow < TimeSpan.Zero || ReorderWindow > MaxAge)
            throw new ArgumentException("ReorderWindow must lie between 0 and MaxAge");
        if (NonceCapacity < 1) throw new ArgumentException("NonceCapacity must be at least 1");
        if (!(NewCallerVerifiesPerSecond >= 0) || double.IsInfinity(NewCallerVerifiesPerSecond))
            throw new ArgumentException("NewCallerVerifiesPerSecond must be a finite number >= 0 (0 = no limit)");
        if (FailedSignatureHold < TimeSpan.Zero || FailedSignatureHold > TimeSpan.FromHours(1))
            throw new ArgumentException("FailedSignatureHold must lie between 0 and 1 hour");
        return this;
    }
}

using System.Globalization;
using System.Text;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>
/// The axon side of request authentication. Reads the three headers by name, checks the version rule and
/// the nonce's skew window, verifies the sr25519 signature over UTF-8(nonce + ss58), and only then records the
/// nonce, which must be at least 1 ms newer than the caller's last accepted one. Unlike the 2021 axon, an
/// unsigned request can therefore never move a caller's nonce (no lock-out by far-future nonces), the store
/// is bounded, and it survives restarts when <see cref="RequestVerifierOptions.NonceFilePath"/> is set.
/// Thread-safe: gRPC calls it from many threads.
/// </summary>
public sealed class RequestVerifier : IDisposable
{
    private const int MaxSignatureHeaderLength = 512;
    private const string NotFresh = "nonce is not at least 1 ms newer than the last accepted from this caller (replay?)";
    private static readonly long QuarterHour = TimeSpan.FromMinutes(15).Ticks;
    private static readonly long MinOffset = TimeSpan.FromHours(-12).Ticks;
    private static readonly long MaxOffset = TimeSpan.FromHours(14).Ticks;

    private readonly RequestVerifierOptions _options;
    private readonly ISignatureVerifier _signatures;
    private readonly TimeProvider _clock;
    private readonly NonceStore _store;
    private readonly Lock _gate = new();
    private readonly Lock _fileGate = new();
    private readonly ITimer? _persistTimer;
    private bool _disposed;

    /// <summary>
    /// Creates a verifier. Loads the nonce file when it exists (throws <see cref="InvalidDataException"/> if
    /// it is not a nonce file, rather than silently forgetting nonces) and starts the periodic writer.
    /// </summary>
    /// <param name="options">Windows, capacity and file; validated.</param>
    /// <param name="signatures">The signature check; <see cref="Sr25519SignatureVerifier.Instance"/> by default.</param>
    /// <param name="clock">Time source for the skew window and the persist timer; the system clock by default.</param>
    public RequestVerifier(RequestVerifierOptions? options = null, ISignatureVerifier? signatures = null, TimeProvider? clock = null)
    {
        _options = (options ?? RequestVerifierOptions.Default).Validate();
        _signatures = signatures ?? Sr25519SignatureVerifier.Instance;
        _clock = clock ?? TimeProvider.System;
        _store = new NonceStore(_options.NonceCapacity);
        if (_options.NonceFilePath is { } path)
        {
            if (File.Exists(path)) _store.Load(File.ReadAllText(path, Encoding.UTF8), DropBelowTicks());
            _persistTimer = _clock.CreateTimer(static s => ((RequestVerifier)s!).Flush(), this, _options.PersistInterval, _options.PersistInterval);
        }
    }

    /// <summary>Number of callers whose last nonce is currently remembered.</summary>
    public int TrackedCallers
    {
        get { lock (_gate) return _store.Count; }
    }

    /// <summary>Checks a call's request headers (looked up by name; position does not matter here).</summary>
    public AuthResult Verify(Metadata requestHeaders)
    {
        ArgumentNullException.ThrowIfNull(requestHeaders);
        return Verify(
            requestHeaders.GetValue(AuthHeaders.AuthName),
            requestHeaders.GetValue(AuthHeaders.SignatureName),
            requestHeaders.GetValue(AuthHeaders.VersionName));
    }

    /// <summary>Checks the three header values; null means the header was absent. Never throws on bad input.</summary>
    public AuthResult Verify(string? authHeader, string? signatureHeader, string? versionHeader)
    {
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
        if (!TryParseSignatureHeader(signatureHeader, out var nonceText, out var ss58, out var signature, out var parseError))
            return Reject(parseError);
        if (!RequestNonce.TryParse(nonceText, out var nonceTime))
            return Reject("the nonce is not MMddyyyyHHmmss plus 6 digits of microseconds", ss58);
        var nonce = nonceTime.Ticks;

        var windowError = CheckWindow(nonce);
        if (windowError is not null) return Reject(windowError, ss58);

        // A cheap look before the expensive signature check: a replay is turned away without verifying.
        var reorder = _options.ReorderWindow.Ticks;
        lock (_gate)
        {
            if (!_store.IsFresh(ss58, nonce, reorder)) return Reject(NotFresh, ss58);
        }

        var message = Encoding.UTF8.GetBytes(string.Concat(nonceText, ss58));
        bool valid;
        try
        {
            valid = _signatures.Verify(ss58, message, signature);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            valid = false;
        }
        if (!valid) return Reject("signature does not verify for this hotkey", ss58);

        // Recorded only after the signature holds, and re-checked under the lock: of two concurrent
        // copies of one signed request exactly one passes.
        lock (_gate)
        {
            if (!_store.IsFresh(ss58, nonce, reorder)) return Reject(NotFresh, ss58);
            _store.Record(ss58, nonce, reorder, DropBelowTicks());
        }
        return AuthResult.Accepted(ss58);
    }

    /// <summary>Writes the nonce store to its file now if it changed (atomically: temp file + rename, mode 0600).</summary>
    public void Flush()
    {
        if (_options.NonceFilePath is not { } path) return;
        lock (_fileGate)
        {
            string text;
            lock (_gate)
            {
                _store.Trim(DropBelowTicks());
                if (!_store.IsDirty) return;
                text = NonceStore.Serialize(_store.Snapshot());
                _store.IsDirty = false;
            }
            try
            {
                WriteAtomically(path, text);
            }
            catch (IOException)
            {
                lock (_gate) _store.IsDirty = true;
                if (_disposed) throw;
            }
            catch (UnauthorizedAccessException)
            {
                lock (_gate) _store.IsDirty = true;
                if (_disposed) throw;
            }
        }
    }

    /// <summary>Stops the periodic writer and writes the store a last time.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _persistTimer?.Dispose();
        Flush();
    }

    private static AuthResult Reject(string reason, string? hotkey = null) => AuthResult.Rejected(ReturnCode.Unauthenticated, reason, hotkey);

    private static bool TryParseSignatureHeader(string header, out string nonce, out string ss58, out byte[] signature, out string error)
    {
        nonce = ss58 = error = string.Empty;
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
        nonce = header[..first];
        ss58 = header[(first + AuthHeaders.Separator.Length)..last];
        var hex = header.AsSpan(last + AuthHeaders.Separator.Length);
        if (hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) hex = hex[2..];
        if (ss58.Length is 0 or > 64)
        {
            error = "bittensor-signature has no valid ss58 address";
            return false;
        }
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

    private static void WriteAtomically(string path, string text)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(directory);
            else Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using (var stream = new FileStream(temp, fileOptions))
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}

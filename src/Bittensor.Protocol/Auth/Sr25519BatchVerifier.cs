using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;
using Bittensor.Core.Crypto;

namespace Bittensor.Protocol;

/// <summary>A signature check that may complete later (several requests' signatures verified together).</summary>
public interface IAsyncSignatureVerifier : ISignatureVerifier
{
    /// <summary>Completes with true only when <paramref name="signature"/> is a valid signature of <paramref name="message"/> by <paramref name="ss58Address"/>'s key.</summary>
    ValueTask<bool> VerifyAsync(string ss58Address, byte[] message, byte[] signature);
}

/// <summary>Counters of a <see cref="Sr25519BatchVerifier"/> since it was created.</summary>
/// <param name="Signatures">Signatures checked.</param>
/// <param name="Batches">Checks of two or more signatures at once.</param>
/// <param name="BatchedSignatures">Signatures checked in those.</param>
/// <param name="LargestBatch">Most signatures checked at once.</param>
/// <param name="FallbackBatches">Batches holding a well-formed bad signature: their equation failed and they were bisected (halves
/// checked by their own equations, ranges too small for one verified singly; <see cref="Sr25519.VerifyEach"/>).</param>
/// <param name="Overflowed">Signatures verified at once by their caller because <see cref="Sr25519BatchVerifier.MaxQueued"/> were already waiting.</param>
public readonly record struct SignatureBatchStats(long Signatures, long Batches, long BatchedSignatures, int LargestBatch, long FallbackBatches, long Overflowed);

/// <summary>
/// sr25519 request signatures of concurrent calls verified together (schnorrkel batch verification through
/// <see cref="Sr25519.VerifyEach"/>), with no timer: a caller queues its signature and, when no check is running,
/// checks at once everything queued, its own included, on its own thread (alone at low load: the single
/// verification, no hop and no added latency). While a check runs, newcomers queue; when it ends, what has queued
/// is checked as the next batch on the thread pool, behind the request work already waiting there. A batch is
/// therefore whatever arrived while the verifier was busy, up to <see cref="MaxBatch"/>. A failed batch equation is
/// bisected down to single verifications of the ranges holding a bad signature, so every caller gets the answer
/// <see cref="Sr25519.Verify"/> would give and one bad signature does not cost the whole batch verified singly.
/// Bounded: beyond <see cref="MaxQueued"/> waiting signatures a caller verifies its own at once. Thread-safe.
/// </summary>
public sealed class Sr25519BatchVerifier : IAsyncSignatureVerifier
{
    /// <summary>Default <see cref="MaxBatch"/>.</summary>
    public const int DefaultMaxBatch = 64;

    /// <summary>Default <see cref="MaxQueued"/>.</summary>
    public const int DefaultMaxQueued = 4096;

    private readonly ConcurrentQueue<Waiter> _queue = new();
    private readonly ConcurrentQueue<Waiter> _pool = new();
    private readonly Waiter[] _batch;
    private readonly Sr25519BatchItem[] _items;
    private readonly bool[] _valid;
    private readonly Action<object?> _drainCallback;
    private int _queued;
    private int _pooled;
    private int _draining;
    private long _signatures, _batches, _batchedSignatures, _fallbacks, _overflowed;
    private int _largest;

    /// <summary>Creates a verifier.</summary>
    /// <param name="maxBatch">Most signatures checked at once (2..1024).</param>
    /// <param name="maxQueued">Most signatures waiting (≥ 1); beyond it a caller verifies its own signature at once.</param>
    public Sr25519BatchVerifier(int maxBatch = DefaultMaxBatch, int maxQueued = DefaultMaxQueued)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxBatch, 1024);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxQueued, 1);
        MaxBatch = maxBatch;
        MaxQueued = maxQueued;
        _batch = new Waiter[maxBatch];
        _items = new Sr25519BatchItem[maxBatch];
        _valid = new bool[maxBatch];
        _drainCallback = _ => DrainOnce();
    }

    /// <summary>Most signatures checked at once.</summary>
    public int MaxBatch { get; }

    /// <summary>Most signatures waiting for a check.</summary>
    public int MaxQueued { get; }

    /// <summary>Signatures waiting for a check right now.</summary>
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>Counters since creation.</summary>
    public SignatureBatchStats Stats => new(Interlocked.Read(ref _signatures), Interlocked.Read(ref _batches),
        Interlocked.Read(ref _batchedSignatures), Volatile.Read(ref _largest), Interlocked.Read(ref _fallbacks), Interlocked.Read(ref _overflowed));

    /// <summary>Test hook: runs on the verifying thread before each check, with the number of signatures in it.</summary>
    internal Action<int>? BeforeCheck { get; set; }

    /// <summary>Test hook: runs on the caller's thread once its signature is queued, with <see cref="Queued"/> then.</summary>
    internal Action<int>? AfterQueued { get; set; }

    /// <inheritdoc />
    public bool Verify(string ss58Address, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (!HotkeyCache.TryGet(ss58Address, out var publicKey)) return false;
        Interlocked.Increment(ref _signatures);
        return Sr25519.Verify(publicKey, message, signature);
    }

    /// <inheritdoc />
    public ValueTask<bool> VerifyAsync(string ss58Address, byte[] message, byte[] signature)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(signature);
        if (!HotkeyCache.TryGet(ss58Address, out var publicKey)) return new ValueTask<bool>(false);
        if (Interlocked.Increment(ref _queued) > MaxQueued)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _overflowed);
            Interlocked.Increment(ref _signatures);
            return new ValueTask<bool>(Sr25519.Verify(publicKey, message, signature));
        }
        var waiter = Rent();
        waiter.Item = new Sr25519BatchItem(publicKey, message, signature);
        var token = waiter.Version;
        _queue.Enqueue(waiter);
        AfterQueued?.Invoke(Volatile.Read(ref _queued));
        if (Interlocked.CompareExchange(ref _draining, 1, 0) == 0) DrainOnce();
        return new ValueTask<bool>(waiter, token);
    }

    // One check of what is queued (at most MaxBatch), then hand the turn on: to the thread pool when more is queued
    // (behind the request work already waiting there, so the next batch collects what that work queues), else release it.
    private void DrainOnce()
    {
        var n = 0;
        while (n < _batch.Length && _queue.TryDequeue(out var w)) _batch[n++] = w;
        if (n > 0)
        {
            Interlocked.Add(ref _queued, -n);
            Check(n);
        }
        if (!_queue.IsEmpty)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_drainCallback, null, preferLocal: false);
            return;
        }
        Volatile.Write(ref _draining, 0);
        // A caller that queued after the look above saw the turn taken and left its signature to us.
        if (!_queue.IsEmpty && Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
            ThreadPool.UnsafeQueueUserWorkItem(_drainCallback, null, preferLocal: false);
    }

    private void Check(int n)
    {
        Exception? failure = null;
        try
        {
            BeforeCheck?.Invoke(n);
            for (var i = 0; i < n; i++) _items[i] = _batch[i].Item;
            var allByOneCheck = Sr25519.VerifyEach(_items.AsSpan(0, n), _valid.AsSpan(0, n));
            Interlocked.Add(ref _signatures, n);
            if (Lean.ShedProbe.On) Interlocked.Add(ref Lean.ShedProbe.Signatures, n);
            if (n > 1)
            {
                Interlocked.Increment(ref _batches);
                Interlocked.Add(ref _batchedSignatures, n);
                if (!allByOneCheck) Interlocked.Increment(ref _fallbacks);
                if (n > Volatile.Read(ref _largest)) Volatile.Write(ref _largest, n); // one drainer at a time
            }
        }
        catch (Exception e)
        {
            failure = e;
        }
        for (var i = 0; i < n; i++)
        {
            var w = _batch[i];
            _batch[i] = null!;
            _items[i] = default;
            if (failure is null) w.Complete(_valid[i]);
            else w.Fail(failure);
        }
    }

    private Waiter Rent()
    {
        if (_pool.TryDequeue(out var w))
        {
            Interlocked.Decrement(ref _pooled);
            return w;
        }
        return new Waiter(this);
    }

    private void Return(Waiter w)
    {
        w.Item = default;
        if (Interlocked.Increment(ref _pooled) <= MaxQueued) _pool.Enqueue(w);
        else Interlocked.Decrement(ref _pooled);
    }

    /// <summary>One queued signature and its pending answer (pooled; continuations run on the thread pool, not on the verifier's thread).</summary>
    private sealed class Waiter(Sr25519BatchVerifier owner) : IValueTaskSource<bool>
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

        internal Sr25519BatchItem Item;

        internal short Version => _core.Version;

        internal void Complete(bool valid) => _core.SetResult(valid);

        internal void Fail(Exception e) => _core.SetException(e);

        public bool GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
                owner.Return(this);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}

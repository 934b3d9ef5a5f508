using System.Text;
using Bittensor.Actors.Dendrite;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Grpc.Core;

namespace Bittensor.Actors.Tests.Dendrite;

public sealed class SharedRequestSignaturesSpec
{
    private static readonly Sr25519KeyPair Alice = SecretUri.ToSr25519("//Alice");

    /// <summary>A clock moved by hand; local time = UTC.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 12, 4, 21, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

        public void Advance(TimeSpan by) => _now += by;
    }

    private static int s_targets;

    /// <summary>An axon address not used before in this class.</summary>
    private static string NextTarget() => $"10.0.{Interlocked.Increment(ref s_targets) / 250}.{s_targets % 250}:8091";

    private static (DateTime Nonce, string Ss58, string Value) Read(Metadata headers)
    {
        Assert.Equal(AuthHeaders.InOrder, headers.Select(h => h.Key));
        var value = headers.GetValue(AuthHeaders.SignatureName)!;
        var parts = value.Split(AuthHeaders.Separator);
        Assert.Equal(3, parts.Length);
        Assert.True(RequestNonce.TryParse(parts[0], out var nonce));
        var signature = Convert.FromHexString(parts[2][2..]);
        Assert.True(Sr25519.Verify(Alice.PublicKey.Span, Encoding.UTF8.GetBytes(parts[0] + parts[1]), signature), "the shared value must verify");
        return (nonce, parts[1], value);
    }

    [Fact]
    public async Task One_signed_value_serves_other_endpoints_and_verifies()
    {
        var clock = new ManualClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock);
        var a = NextTarget();
        var b = NextTarget();
        var c = NextTarget();

        var ha = Read(await shared.CreateHeadersAsync(a));
        var hb = Read(await shared.CreateHeadersAsync(b));
        var hc = Read(await shared.CreateHeadersAsync(c));

        Assert.Equal(1, shared.Signed);
        Assert.Equal(ha.Value, hb.Value);
        Assert.Equal(ha.Value, hc.Value);
        Assert.Equal(Alice.ToSs58(), ha.Ss58);
        // Created at the clock's now, so the first nonce lies at least 1 ms after it.
        Assert.True(ha.Nonce >= clock.GetUtcNow().DateTime.AddMilliseconds(1));
    }

    [Fact]
    public async Task One_endpoint_never_gets_a_nonce_less_than_1_ms_newer_than_its_last()
    {
        var clock = new ManualClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock);
        var a = NextTarget();

        var first = Read(await shared.CreateHeadersAsync(a));
        var second = Read(await shared.CreateHeadersAsync(a)); // the clock has not moved
        clock.Advance(TimeSpan.FromMilliseconds(0.3));
        var third = Read(await shared.CreateHeadersAsync(a));

        Assert.Equal(3, shared.Signed);
        Assert.True(second.Nonce - first.Nonce >= TimeSpan.FromMilliseconds(1));
        Assert.True(third.Nonce - second.Nonce >= TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task A_new_endpoint_does_not_reuse_a_value_signed_before_it_existed()
    {
        // An endpoint actor that replaces a stopped or restarted one must never repeat what its predecessor sent.
        var clock = new ManualClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock);
        var before = Read(await shared.CreateHeadersAsync(NextTarget()));
        clock.Advance(TimeSpan.FromMilliseconds(2));

        var after = Read(await shared.CreateHeadersAsync(NextTarget()));

        Assert.Equal(2, shared.Signed);
        Assert.True(after.Nonce - before.Nonce >= TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task A_value_older_than_the_reuse_window_is_not_shared()
    {
        var clock = new ManualClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock);
        var a = NextTarget();
        var b = NextTarget();
        var first = Read(await shared.CreateHeadersAsync(a));

        clock.Advance(TimeSpan.FromMilliseconds(52));
        var late = Read(await shared.CreateHeadersAsync(b));

        Assert.Equal(2, shared.Signed);
        Assert.NotEqual(first.Value, late.Value);
    }

    [Fact]
    public async Task Endpoints_of_two_hotkeys_at_one_address_share_its_floor_so_that_axon_never_sees_a_nonce_twice()
    {
        // The metagraph can list two hotkeys at one ip:port, and an evicted endpoint actor's successor calls the same
        // axon: the floor belongs to the address. (Per endpoint actor, a second actor reused the first one's value at
        // the same axon when a round took under 1 ms, and the axon refused it as a replay.)
        var clock = new ManualClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock);
        var bob = SharedRequestSignatures.Target(new Bittensor.Core.Domain.EndpointInfo("5Bob", "127.0.0.1", 9000));
        var charlie = SharedRequestSignatures.Target(new Bittensor.Core.Domain.EndpointInfo("5Charlie", "127.0.0.1", 9000));
        var elsewhere = SharedRequestSignatures.Target(new Bittensor.Core.Domain.EndpointInfo("5Charlie", "127.0.0.1", 9001));
        Assert.Equal(bob, charlie);
        Assert.NotEqual(bob, elsewhere);

        var first = Read(await shared.CreateHeadersAsync(bob));
        var other = Read(await shared.CreateHeadersAsync(elsewhere)); // another axon may share the value
        clock.Advance(TimeSpan.FromMilliseconds(0.3));               // a round that took under 1 ms
        var second = Read(await shared.CreateHeadersAsync(charlie));  // the same axon may not

        Assert.Equal(first.Value, other.Value);
        Assert.NotEqual(first.Value, second.Value);
        Assert.True(second.Nonce - first.Nonce >= TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task Floors_over_a_second_old_are_dropped_once_more_than_the_cap_are_kept()
    {
        var clock = new ManualClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock);
        var targets = Enumerable.Range(0, SharedRequestSignatures.MaxFloors).Select(_ => NextTarget()).ToArray();
        var last = default((DateTime Nonce, string Ss58, string Value));
        foreach (var t in targets) last = Read(await shared.CreateHeadersAsync(t));
        Assert.Equal(SharedRequestSignatures.MaxFloors, shared.Floors);

        clock.Advance(TimeSpan.FromSeconds(2));
        var fresh = Read(await shared.CreateHeadersAsync(NextTarget()));
        Assert.Equal(1, shared.Floors);
        // A dropped target starts again from now: still at least 1 ms after what it was sent.
        var again = Read(await shared.CreateHeadersAsync(targets[0]));
        Assert.True(again.Nonce - last.Nonce >= TimeSpan.FromMilliseconds(1));
        Assert.True(fresh.Nonce > last.Nonce);
    }

    [Fact]
    public async Task Zero_reuse_signs_every_call_alone_as_the_2021_dendrite_did()
    {
        var clock = new ManualClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.Zero, clock);

        var a = Read(await shared.CreateHeadersAsync(NextTarget()));
        var b = Read(await shared.CreateHeadersAsync(NextTarget()));

        Assert.Equal(2, shared.Signed);
        Assert.NotEqual(a.Value, b.Value);
    }

    [Fact]
    public async Task A_signer_that_returns_a_wrong_length_is_an_error_and_nothing_is_shared()
    {
        var calls = 0;
        var signer = new DelegateRequestSigner(Alice.ToSs58(), (m, _) => ValueTask.FromResult(++calls == 1 ? new byte[63] : Alice.Sign(m.Span)));
        var shared = new SharedRequestSignatures(signer, TimeSpan.FromMilliseconds(50), new ManualClock());
        var a = NextTarget();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await shared.CreateHeadersAsync(a));
        var next = Read(await shared.CreateHeadersAsync(NextTarget()));

        Assert.Contains("63 bytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, shared.Signed);
        Assert.Equal(Alice.ToSs58(), next.Ss58);
    }

    /// <summary>Signings ahead, held until the test runs them (the default queues them on the thread pool).</summary>
    private sealed class HeldWork
    {
        private readonly Queue<Func<Task>> _work = new();

        public int Queued => _work.Count;

        public void Add(Func<Task> work) => _work.Enqueue(work);

        public async Task RunAll()
        {
            while (_work.TryDequeue(out var work)) await work();
        }
    }

    [Fact]
    public async Task Back_to_back_needs_sign_the_next_value_ahead_and_the_next_need_takes_it_without_signing()
    {
        var clock = new ManualClock();
        var held = new HeldWork();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock, signAhead: true, background: held.Add);
        var a = NextTarget();
        var b = NextTarget();

        var first = Read(await shared.CreateHeadersAsync(a));   // round 1: the first need arms nothing
        shared.SignAheadIfArmed();
        Assert.Equal(0, held.Queued);

        clock.Advance(TimeSpan.FromMilliseconds(0.4));
        var second = Read(await shared.CreateHeadersAsync(a));  // round 2: back to back with round 1, signs and arms
        Assert.Equal(second.Value, Read(await shared.CreateHeadersAsync(b)).Value); // its other calls reuse the value
        Assert.Equal(2, shared.Signed);
        shared.SignAheadIfArmed();                               // round 2's last request is out
        shared.SignAheadIfArmed();                               // started once only
        Assert.Equal(1, held.Queued);
        await held.RunAll();
        Assert.Equal(3, shared.Signed);

        clock.Advance(TimeSpan.FromMilliseconds(0.4));
        var third = Read(await shared.CreateHeadersAsync(a));   // round 3 takes the value signed ahead
        var thirdB = Read(await shared.CreateHeadersAsync(b));

        Assert.Equal(3, shared.Signed);
        Assert.Equal(1, shared.AheadTaken);
        Assert.Equal(third.Value, thirdB.Value);
        Assert.True(second.Nonce - first.Nonce >= TimeSpan.FromMilliseconds(1));
        Assert.True(third.Nonce - second.Nonce >= TimeSpan.FromMilliseconds(1), "a value signed ahead still clears the target's floor by 1 ms");
    }

    [Fact]
    public async Task A_value_signed_ahead_is_not_taken_once_older_than_the_reuse_window()
    {
        var clock = new ManualClock();
        var held = new HeldWork();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock, signAhead: true, background: held.Add);
        var a = NextTarget();
        _ = Read(await shared.CreateHeadersAsync(a));
        clock.Advance(TimeSpan.FromMilliseconds(0.4));
        var second = Read(await shared.CreateHeadersAsync(a));
        shared.SignAheadIfArmed();
        await held.RunAll();
        Assert.Equal(3, shared.Signed);

        clock.Advance(TimeSpan.FromMilliseconds(60)); // the next round comes later than the reuse window
        var late = Read(await shared.CreateHeadersAsync(a));

        Assert.Equal(4, shared.Signed);
        Assert.Equal(0, shared.AheadTaken);
        Assert.True(late.Nonce >= clock.GetUtcNow().DateTime, "a stale value is dropped and the need signs at the clock");
        Assert.True(late.Nonce - second.Nonce >= TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task Needs_further_apart_than_the_reuse_window_never_sign_ahead()
    {
        // A validator whose rounds are seconds apart signs once per round, as without signing ahead: nothing is wasted.
        var clock = new ManualClock();
        var held = new HeldWork();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock, signAhead: true, background: held.Add);
        for (var round = 0; round < 3; round++)
        {
            _ = Read(await shared.CreateHeadersAsync(NextTarget()));
            shared.SignAheadIfArmed();
            clock.Advance(TimeSpan.FromSeconds(12));
        }

        Assert.Equal(0, held.Queued);
        Assert.Equal(3, shared.Signed);
    }

    [Fact]
    public async Task Signing_ahead_off_or_without_reuse_arms_nothing()
    {
        foreach (var (reuse, ahead) in new[] { (TimeSpan.FromMilliseconds(50), false), (TimeSpan.Zero, true) })
        {
            var clock = new ManualClock();
            var held = new HeldWork();
            var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), reuse, clock, signAhead: ahead, background: held.Add);
            var a = NextTarget();
            _ = Read(await shared.CreateHeadersAsync(a));
            clock.Advance(TimeSpan.FromMilliseconds(0.4));
            _ = Read(await shared.CreateHeadersAsync(a));
            shared.SignAheadIfArmed();

            Assert.Equal(0, held.Queued);
            Assert.Equal(2, shared.Signed);
        }
    }

    [Fact]
    public async Task A_failed_signing_ahead_is_dropped_and_the_next_need_signs_itself()
    {
        var calls = 0;
        var signer = new DelegateRequestSigner(Alice.ToSs58(), (m, _) =>
            Interlocked.Increment(ref calls) == 3 ? throw new InvalidOperationException("wallet locked") : ValueTask.FromResult(Alice.Sign(m.Span)));
        var clock = new ManualClock();
        var held = new HeldWork();
        var shared = new SharedRequestSignatures(signer, TimeSpan.FromMilliseconds(50), clock, signAhead: true, background: held.Add);
        var a = NextTarget();
        _ = Read(await shared.CreateHeadersAsync(a));
        clock.Advance(TimeSpan.FromMilliseconds(0.4));
        var second = Read(await shared.CreateHeadersAsync(a));
        shared.SignAheadIfArmed();
        await held.RunAll(); // the third signing (ahead) throws: swallowed

        clock.Advance(TimeSpan.FromMilliseconds(0.4));
        var third = Read(await shared.CreateHeadersAsync(a));

        Assert.Equal(0, shared.AheadTaken);
        Assert.Equal(4, Volatile.Read(ref calls));
        Assert.True(third.Nonce - second.Nonce >= TimeSpan.FromMilliseconds(1));
    }

    /// <summary>A clock moved by hand whose timers fire when it passes their due time; local time = UTC.</summary>
    private sealed class TimerClock : TimeProvider
    {
        private readonly object _lock = new();
        private readonly List<Timer> _timers = new();
        private DateTimeOffset _now = new(2026, 12, 6, 3, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow()
        {
            lock (_lock) return _now;
        }

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

        public int Pending
        {
            get { lock (_lock) return _timers.Count(t => t.Due is not null); }
        }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new Timer(this, callback, state);
            lock (_lock) _timers.Add(timer);
            timer.Change(dueTime, period);
            return timer;
        }

        public void Advance(TimeSpan by)
        {
            List<Timer> due;
            lock (_lock)
            {
                _now += by;
                due = _timers.Where(t => t.Due <= _now).ToList();
                foreach (var t in due) t.Due = null; // one-shot (Task.Delay's timers are)
            }
            foreach (var t in due) t.Fire();
        }

        private sealed class Timer(TimerClock clock, TimerCallback callback, object? state) : ITimer
        {
            public DateTimeOffset? Due { get; set; }

            public void Fire() => callback(state);

            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                lock (clock._lock) Due = dueTime == Timeout.InfiniteTimeSpan ? null : clock._now + dueTime;
                return true;
            }

            public void Dispose()
            {
                lock (clock._lock) clock._timers.Remove(this);
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }

    [Fact]
    public async Task Calls_to_one_target_faster_than_one_per_ms_wait_once_its_nonces_run_too_far_ahead_and_other_targets_go_on()
    {
        var clock = new TimerClock();
        var maxAhead = TimeSpan.FromMilliseconds(5);
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock, maxAhead: maxAhead);
        var hot = NextTarget();

        // The clock stands still: each call to the hot target takes a nonce 1 ms past the last, up to 5 ms ahead of it.
        var nonces = new List<DateTime>();
        for (var i = 0; i < 5; i++) nonces.Add(Read(await shared.CreateHeadersAsync(hot)).Nonce);
        Assert.Equal(clock.GetUtcNow().DateTime.AddMilliseconds(5), nonces[^1]);
        Assert.Equal(0, shared.Paced);

        // The sixth would be 6 ms ahead: it waits for the clock instead of sending a nonce further in the future.
        var sixth = shared.CreateHeadersAsync(hot).AsTask();
        Assert.False(sixth.IsCompleted);
        Assert.Equal(1, shared.Paced);
        Assert.Equal(1, clock.Pending);

        // Meanwhile a call to another target is not held (the gate is free while the hot one waits).
        var other = await shared.CreateHeadersAsync(NextTarget()).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(other);

        clock.Advance(TimeSpan.FromMilliseconds(0.5));
        Assert.False(sixth.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(0.5)); // now the sixth nonce lies exactly 5 ms ahead
        var sixthNonce = Read(await sixth.WaitAsync(TimeSpan.FromSeconds(30))).Nonce;
        Assert.Equal(nonces[^1].AddMilliseconds(1), sixthNonce);
        Assert.True(sixthNonce - clock.GetUtcNow().DateTime <= maxAhead);
    }

    [Fact]
    public async Task A_cancelled_wait_for_the_clock_ends_with_cancellation_and_leaves_the_target_usable()
    {
        var clock = new TimerClock();
        var shared = new SharedRequestSignatures(new KeyPairRequestSigner(Alice), TimeSpan.FromMilliseconds(50), clock, maxAhead: TimeSpan.FromMilliseconds(2));
        var hot = NextTarget();
        await shared.CreateHeadersAsync(hot);
        await shared.CreateHeadersAsync(hot);

        using var cts = new CancellationTokenSource();
        var waiting = shared.CreateHeadersAsync(hot, cts.Token).AsTask();
        Assert.False(waiting.IsCompleted);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(30)));

        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.NotNull(await shared.CreateHeadersAsync(hot).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(17)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(48)]
    [InlineData(16384)]
    public void Non_finite_values_are_counted_wherever_they_lie(int length)
    {
        // Every pass: the one this CPU takes, and both explicitly (512-bit vectors in software where they are not native).
        Func<float[], int>[] passes =
        [
            v => Bittensor.Actors.Dendrite.Dendrite.CountNonFinite(v),
            v => Bittensor.Actors.Dendrite.Dendrite.CountNonFinite512(v),
            v => Bittensor.Actors.Dendrite.Dendrite.CountNonFiniteVector(v),
        ];
        foreach (var count in passes) NonFiniteCounted(length, count);
    }

    private static void NonFiniteCounted(int length, Func<float[], int> count)
    {
        var positions = length <= 100 ? Enumerable.Range(0, length) : new[] { 0, 1, 15, 16, 17, 31, 32, length / 2, length - 17, length - 16, length - 1 };
        foreach (var at in positions)
        {
            foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            {
                var values = Enumerable.Range(0, length).Select(i => (i * 0.37f) - 3f).ToArray();
                values[at] = bad;
                var expected = values.Count(x => !float.IsFinite(x));
                Assert.Equal(1, expected);
                Assert.Equal(expected, count(values)); // one alone, wherever it lies (a vector's lane, the tail)
                if (length > 2) values[length - 1 - at % 2] = float.NaN;
                expected = values.Count(x => !float.IsFinite(x));
                Assert.Equal(expected, count(values));
            }
        }
        Assert.Equal(0, count(Enumerable.Range(0, length).Select(i => i * 1e30f).ToArray()));
    }
}

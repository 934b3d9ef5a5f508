namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// A clock the test moves by hand: timestamps (ticks of 100 ns) and timers both follow <see cref="Advance"/>, which runs
/// every timer that falls due, in order, on the caller's thread.
/// </summary>
internal sealed class DrivenClock : TimeProvider
{
    private readonly object _sync = new();
    private readonly List<Timer> _timers = [];
    private long _now = TimeSpan.TicksPerDay;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        lock (_sync) return _now;
    }

    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 12, 5, 0, 0, 0, TimeSpan.Zero).AddTicks(GetTimestamp());

    public void Advance(TimeSpan by)
    {
        var until = GetTimestamp() + by.Ticks;
        while (true)
        {
            Timer? next = null;
            lock (_sync)
            {
                foreach (var t in _timers)
                    if (t.Due <= until && (next is null || t.Due < next.Due)) next = t;
                if (next is null)
                {
                    _now = until;
                    return;
                }
                _now = Math.Max(_now, next.Due);
                next.Due = next.Period > 0 ? next.Due + next.Period : long.MaxValue;
            }
            next.Callback(next.State);
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        lock (_sync)
        {
            var timer = new Timer(this, callback, state, _now + dueTime.Ticks, period > TimeSpan.Zero ? period.Ticks : 0);
            _timers.Add(timer);
            return timer;
        }
    }

    private sealed class Timer(DrivenClock clock, TimerCallback callback, object? state, long due, long period) : ITimer
    {
        public TimerCallback Callback { get; } = callback;

        public object? State { get; } = state;

        public long Due { get; set; } = due;

        public long Period { get; } = period;

        public bool Change(TimeSpan dueTime, TimeSpan period) => throw new NotSupportedException();

        public void Dispose()
        {
            lock (clock._sync) clock._timers.Remove(this);
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

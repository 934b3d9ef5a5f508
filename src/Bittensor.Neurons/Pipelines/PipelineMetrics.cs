using System.Diagnostics;
using System.Diagnostics.Metrics;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Pipelines;

/// <summary>
/// Metrics of one pipeline, per stage: published as System.Diagnostics.Metrics instruments on the meter
/// <c>Bittensor.Neurons.Pipeline</c> (tag <c>pipeline</c> = the owner's name) for OpenTelemetry/dotnet-counters, and kept
/// as an in-process <see cref="Snapshot"/> for live views such as the demo's.
/// </summary>
public sealed class PipelineMetrics : IDisposable
{
    /// <summary>Name of the meter every pipeline publishes on.</summary>
    public const string MeterName = "Bittensor.Neurons.Pipeline";

    private readonly Meter _meter;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly Counter<long> _batches;
    private readonly Counter<long> _queries;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _backwards;
    private readonly Histogram<double> _forwardMs;
    private readonly Histogram<double> _stepMs;
    private readonly Histogram<double> _backwardMs;
    private readonly Histogram<double> _loss;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly object _gate = new();
    private long _batchCount;
    private long _queryCount;
    private long _failureCount;
    private long _backwardCount;
    private double _lastLoss = double.NaN;
    private double _lastLossForGauge = double.NaN;
    private double _lastBaseline = double.NaN;
    private double _lastForwardMs;
    private double _lastStepMs;
    private double _lastBackwardMs;
    private readonly Queue<double> _recentLosses = new();
    private readonly Dictionary<ushort, Dictionary<string, long>> _refusals = [];
    private readonly Dictionary<ushort, long> _joined = [];
    private readonly Counter<long> _refused;

    /// <summary>Peers whose score is published as a gauge (the highest uids beyond it are left out).</summary>
    public const int MaxScoredPeers = 256;

    /// <summary>
    /// Creates the instruments for a pipeline named <paramref name="name"/>; with <paramref name="scores"/>, each peer's
    /// moving-average score is a gauge <c>bittensor.pipeline.peer.score</c> tagged by uid (read when an exporter collects).
    /// </summary>
    public PipelineMetrics(string name, ScoreBoard? scores = null)
    {
        _meter = new Meter(MeterName);
        _tag = new KeyValuePair<string, object?>("pipeline", name);
        _batches = _meter.CreateCounter<long>("bittensor.pipeline.batches", description: "Batches that went through the whole loop");
        _queries = _meter.CreateCounter<long>("bittensor.pipeline.forward.calls", description: "Forward calls to peers");
        _failures = _meter.CreateCounter<long>("bittensor.pipeline.forward.failures", description: "Forward calls that returned no representation");
        _backwards = _meter.CreateCounter<long>("bittensor.pipeline.backward.calls", description: "Gradients returned to peers");
        _forwardMs = _meter.CreateHistogram<double>("bittensor.pipeline.forward.duration", "ms", "Fan-out forward round");
        _stepMs = _meter.CreateHistogram<double>("bittensor.pipeline.step.duration", "ms", "Join, loss, optimizer step and scoring");
        _backwardMs = _meter.CreateHistogram<double>("bittensor.pipeline.backward.duration", "ms", "Fan-out backward round");
        _refused = _meter.CreateCounter<long>("bittensor.pipeline.replies.refused", description: "Peer replies refused before they touched the model (tag reason)");
        _loss = _meter.CreateHistogram<double>("bittensor.pipeline.loss", "nats", "Next-token loss with all peers joined");
        _meter.CreateObservableGauge("bittensor.pipeline.loss.last", () => new Measurement<double>(Volatile.Read(ref _lastLossForGauge), _tag), "nats",
            "Latest next-token loss with all peers joined (NaN before the first batch)");
        if (scores is not null)
            _meter.CreateObservableGauge("bittensor.pipeline.peer.score",
                () => scores.Snapshot().Take(MaxScoredPeers).Select(p => new Measurement<double>(p.Score, _tag, new KeyValuePair<string, object?>("uid", (int)p.Uid))),
                description: "Moving-average score of each peer (uid), as the weights are set from");
    }

    internal void Forward(int calls, int failures, double ms)
    {
        _queries.Add(calls, _tag);
        _failures.Add(failures, _tag);
        _forwardMs.Record(ms, _tag);
        lock (_gate)
        {
            _queryCount += calls;
            _failureCount += failures;
            _lastForwardMs = ms;
        }
    }

    internal void Step(double loss, double baseline, double ms)
    {
        _loss.Record(loss, _tag);
        Volatile.Write(ref _lastLossForGauge, loss);
        _stepMs.Record(ms, _tag);
        lock (_gate)
        {
            _lastLoss = loss;
            if (double.IsFinite(loss))
            {
                _recentLosses.Enqueue(loss);
                if (_recentLosses.Count > HeldOutWindow) _recentLosses.Dequeue();
            }
            _lastBaseline = baseline;
            _lastStepMs = ms;
        }
    }

    /// <summary>Batches the held-out loss averages over.</summary>
    public const int HeldOutWindow = 20;

    /// <summary>
    /// Records how a peer's reply fared: <paramref name="reason"/> null when accepted, else why it was refused;
    /// <paramref name="joined"/> when it joined the decoder's context.
    /// </summary>
    internal void Reply(ushort uid, string? reason, bool joined = false)
    {
        if (joined)
            lock (_gate) _joined[uid] = _joined.GetValueOrDefault(uid) + 1;
        if (reason is null) return;
        _refused.Add(1, _tag, new KeyValuePair<string, object?>("reason", reason));
        lock (_gate)
        {
            if (!_refusals.TryGetValue(uid, out var reasons)) _refusals[uid] = reasons = [];
            reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
        }
    }

    internal void Backward(int calls, double ms)
    {
        _backwards.Add(calls, _tag);
        _backwardMs.Record(ms, _tag);
        _batches.Add(1, _tag);
        lock (_gate)
        {
            _backwardCount += calls;
            _lastBackwardMs = ms;
            _batchCount++;
        }
    }

    /// <summary>Totals and the latest values.</summary>
    public PipelineSnapshot Snapshot()
    {
        var elapsed = Stopwatch.GetElapsedTime(_started).TotalSeconds;
        lock (_gate)
            return new PipelineSnapshot(_batchCount, _queryCount, _failureCount, _backwardCount, _lastLoss, _lastBaseline,
                elapsed > 0 ? _queryCount / elapsed : 0, _lastForwardMs, _lastStepMs, _lastBackwardMs,
                _recentLosses.Count > 0 ? _recentLosses.Average() : double.NaN,
                _refusals.ToDictionary(p => p.Key, p => (IReadOnlyDictionary<string, long>)new Dictionary<string, long>(p.Value)),
                new Dictionary<ushort, long>(_joined));
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}

/// <summary>A pipeline's counters at one moment.</summary>
/// <param name="Batches">Batches completed (forward, step and backward).</param>
/// <param name="Queries">Forward calls sent to peers.</param>
/// <param name="Failures">Forward calls that failed (counted as zeros).</param>
/// <param name="Backwards">Gradients sent back to peers.</param>
/// <param name="Loss">Latest loss with all peers joined (NaN before the first batch).</param>
/// <param name="BaselineLoss">Latest loss of the trained baseline (no peer; NaN before the first batch).</param>
/// <param name="QueriesPerSecond">Forward calls per second since the pipeline started.</param>
/// <param name="ForwardMs">Latest fan-out forward round, milliseconds.</param>
/// <param name="StepMs">Latest nucleus step, milliseconds.</param>
/// <param name="BackwardMs">Latest fan-out backward round, milliseconds.</param>
/// <param name="HeldOutLoss">
/// Mean joined-context loss over the last <see cref="PipelineMetrics.HeldOutWindow"/> batches, each measured before the
/// nucleus trained on it (so on text it had not seen); NaN before the first batch.
/// </param>
/// <param name="Refusals">Per uid, how many of its replies were refused and why (a return code or a <see cref="ReplySanitiser"/> reason).</param>
/// <param name="Joined">Per uid, in how many batches its representation joined the decoder's context (it had shown information).</param>
public sealed record PipelineSnapshot(long Batches, long Queries, long Failures, long Backwards, double Loss, double BaselineLoss,
    double QueriesPerSecond, double ForwardMs, double StepMs, double BackwardMs, double HeldOutLoss,
    IReadOnlyDictionary<ushort, IReadOnlyDictionary<string, long>> Refusals, IReadOnlyDictionary<ushort, long> Joined);

using System.Diagnostics;
using Akka;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Dsl;
using Bittensor.Actors.Dendrite;
using Bittensor.Protocol.Wire;
using Bittensor.Protocol;
using Bittensor.Core.Domain;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Pipelines;


/// <summary>What one batch did: who was asked, what came back, the loss and each peer's contribution.</summary>
/// <param name="Peers">Peers queried, in order.</param>
/// <param name="Codes">Forward return code per peer.</param>
/// <param name="Scores">Per peer, the batch's score: its held-out gain in nats per token (PeerScorer; 0 for refused or failed peers).</param>
/// <param name="RouterWeights">Per peer, its router weight in the joined context.</param>
/// <param name="Loss">Loss with all peers joined.</param>
/// <param name="BaselineLoss">Loss with no peer.</param>
/// <param name="BackwardCodes">Backward return code per peer (NotImplemented for peers not sent a gradient).</param>
public sealed record RoundResult(IReadOnlyList<EndpointInfo> Peers, IReadOnlyList<ReturnCode> Codes, IReadOnlyList<double> Scores, IReadOnlyList<double> RouterWeights,
    double Loss, double BaselineLoss, IReadOnlyList<ReturnCode> BackwardCodes);

/// <summary>
/// Called after the nucleus step with the batch and the joined remote context (row-major <c>[batch, seq, dim]</c>);
/// the miner distils its own model towards it here. Failures must be reported, not thrown.
/// </summary>
public delegate Task DistillStep(long[] tokens, int batch, int seq, float[] joinedContext, CancellationToken cancellationToken);

/// <summary>
/// The validator/miner loop as one Akka.Streams graph:
/// <c>token blocks → batch (GroupedWithin) → fan-out forward to top-k endpoints (dendrite endpoint actors) → join
/// (router softmax) → loss and optimizer step → backward: each peer gets the gradient w.r.t. its own response →
/// per-peer scores</c>. Every stage is bounded (buffer sizes in <see cref="PipelineSettings"/>), the whole graph is
/// back-pressured by the slowest stage (stage input buffers are 1 element, so at most a few batches are in flight), and a failing peer is data — a zero representation and a return code — never
/// a stream failure. An unexpected exception in a stage drops that batch (resuming decider) and is counted.
/// Weights are taken from <see cref="Scores"/> by the owner (the validator sets them every tempo).
/// </summary>
public sealed class ValidationPipeline : IDisposable
{
    private readonly Dendrite _dendrite;
    private readonly Func<CancellationToken, Task<IReadOnlyList<EndpointInfo>>> _peers;
    private readonly PipelineSettings _settings;
    private readonly NucleusSettings _nucleusSettings;
    private readonly DistillStep? _distill;
    private IActorRef? _nucleus;
    private bool _ownsNucleus;
    private long _droppedBatches;

    /// <summary>Creates a pipeline querying the peers <paramref name="peers"/> returns at each batch through <paramref name="dendrite"/>.</summary>
    public ValidationPipeline(Dendrite dendrite, Func<CancellationToken, Task<IReadOnlyList<EndpointInfo>>> peers, PipelineSettings settings, NucleusSettings nucleus,
        string name = "validator", DistillStep? distill = null)
    {
        ArgumentNullException.ThrowIfNull(dendrite);
        ArgumentNullException.ThrowIfNull(peers);
        _dendrite = dendrite;
        _peers = peers;
        _settings = settings.Validate();
        _nucleusSettings = nucleus.Validate();
        _distill = distill;
        Scores = new ScoreBoard(nucleus.ScoreAlpha);
        Metrics = new PipelineMetrics(name, Scores);
    }

    /// <summary>Per-peer scores (moving averages of loss contributions).</summary>
    public ScoreBoard Scores { get; }

    /// <summary>Per-stage metrics.</summary>
    public PipelineMetrics Metrics { get; }

    /// <summary>The last exception a stage threw (type and message), or null.</summary>
    public string? LastError { get; private set; }

    /// <summary>Raised on the stream's thread after every completed batch (keep handlers short).</summary>
    public event Action<RoundResult>? RoundCompleted;

    /// <summary>Batches dropped because a stage threw (not peer failures, which are data).</summary>
    public long DroppedBatches => Interlocked.Read(ref _droppedBatches);

    /// <summary>
    /// Runs the loop over <paramref name="blocks"/> (token sequences of <see cref="PipelineSettings.SequenceLength"/>) until
    /// the source ends or the returned kill switch is shut down. <paramref name="onRound"/> sees every completed batch.
    /// </summary>
    /// <param name="materializer">An <see cref="ActorMaterializer"/>.</param>
    /// <param name="blocks">Token sequences.</param>
    /// <param name="onRound">Sees every completed batch.</param>
    /// <param name="nucleus">
    /// The <see cref="NucleusActor"/> to train (a role starts <see cref="NucleusProps"/> as its neuron's child, so it is
    /// supervised there); null starts one owned by this pipeline and stopped by <see cref="Dispose"/>.
    /// </param>
    public (UniqueKillSwitch KillSwitch, Task<Done> Completion) Run(IMaterializer materializer, Source<long[], NotUsed> blocks,
        Action<RoundResult>? onRound = null, IActorRef? nucleus = null)
    {
        ArgumentNullException.ThrowIfNull(materializer);
        ArgumentNullException.ThrowIfNull(blocks);
        if (materializer is not ActorMaterializer actors) throw new ArgumentException("the pipeline needs an ActorMaterializer (its nucleus is an actor)", nameof(materializer));
        if (_nucleus is not null) throw new InvalidOperationException("the pipeline is already running");
        // The nucleus trains on the model dispatcher, not on this stream's threads.
        _ownsNucleus = nucleus is null;
        _nucleus = nucleus ?? actors.System.ActorOf(NucleusProps(actors.System));
        var seq = _settings.SequenceLength;
        long batches = 0;
        Akka.Streams.Supervision.Decider decider = e =>
        {
            LastError = $"{e.GetType().Name}: {e.Message}";
            Interlocked.Increment(ref _droppedBatches);
            return Akka.Streams.Supervision.Directive.Resume;
        };
        return blocks
            .Where(b => b.Length == seq)
            .GroupedWithin(_settings.BatchSize, _settings.BatchWindow)
            .Select(rows => ToBatch(rows.ToArray(), seq, batches++))
            .Buffer(_settings.BatchBuffer, OverflowStrategy.Backpressure)
            .SelectAsync(_settings.ForwardParallelism, ForwardAsync)
            .Where(r => r.Peers.Count > 0)
            .Async()
            .SelectAsync(1, StepAsync)
            .Buffer(_settings.BackwardParallelism, OverflowStrategy.Backpressure)
            .SelectAsync(_settings.BackwardParallelism, BackwardAsync)
            .Select(r =>
            {
                for (var i = 0; i < r.Peers.Count; i++) Scores.Record(r.Peers[i].Uid!.Value, r.Peers[i].Hotkey, r.Scores[i]);
                onRound?.Invoke(r);
                RoundCompleted?.Invoke(r);
                return r;
            })
            .WithAttributes(ActorAttributes.CreateSupervisionStrategy(decider).And(Attributes.CreateInputBuffer(1, 1)))
            .ViaMaterialized(KillSwitches.Single<RoundResult>(), Keep.Right)
            .ToMaterialized(Sink.Ignore<RoundResult>(), Keep.Both)
            .Run(materializer);
    }

    private static Batch ToBatch(long[][] rows, int seq, long index)
    {
        var tokens = new long[rows.Length * seq];
        for (var i = 0; i < rows.Length; i++) rows[i].CopyTo(tokens, i * seq);
        return new Batch(tokens, rows.Length, seq, index);
    }

    /// <summary>Where the nucleus trained last (dispatcher, thread name) and its steps; null before <see cref="Run"/>.</summary>
    // A hang guard for one nucleus step on the model dispatcher, not a deadline: a step that never answers (a dead
    // NucleusActor) fails this batch, which the resuming decider drops and counts, instead of stalling the pipeline.
    private static readonly TimeSpan NucleusStepGuard = TimeSpan.FromMinutes(5);

    internal async Task<NucleusActor.Placement?> NucleusPlacementAsync() =>
        _nucleus is null ? null : await _nucleus.Ask<NucleusActor.Placement>(NucleusActor.GetPlacement.Instance, TimeSpan.FromSeconds(30));

    private async Task<Forwarded> ForwardAsync(Batch batch)
    {
        var candidates = await _peers(CancellationToken.None);
        if (candidates.Count == 0)
        {
            // Nobody serves yet: wait a little instead of spinning through the corpus.
            await Task.Delay(_settings.NoPeersPause);
            return new Forwarded(batch, [], []);
        }
        // A Random of this batch alone: forward stages run concurrently (forward_parallelism), so no shared Random is
        // touched after an await; the seed and the batch index make the choice reproducible.
        if (candidates.FirstOrDefault(c => c.Uid is null) is { } nameless)
            throw new InvalidOperationException($"peer {nameless.Hotkey} has no uid: the pipeline scores peers by uid (use Endpoint.ToEndpointInfo)");
        var random = new Random(unchecked((_settings.Seed * 1_000_003) + (int)batch.Index));
        var peers = candidates.Count <= _settings.TopK
            ? candidates
            : candidates.OrderBy(_ => random.Next()).Take(_settings.TopK).OrderBy(p => p.Uid).ToArray();
        var tokens = new long[batch.Rows, batch.Seq];
        for (var b = 0; b < batch.Rows; b++)
            for (var s = 0; s < batch.Seq; s++) tokens[b, s] = batch.Tokens[(b * batch.Seq) + s];
        var started = Stopwatch.GetTimestamp();
        var results = await _dendrite.ForwardText(peers.ToArray(), tokens, _settings.CallTimeout);
        var failures = results.Count(r => r.Code != ReturnCode.Success);
        Metrics.Forward(results.Count, failures, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return new Forwarded(batch, peers, results);
    }

    /// <summary>Default largest magnitude a peer's representation may hold (transformer outputs are O(1)); larger replies are refused (<see cref="NucleusSettings.MaxMagnitude"/>).</summary>
    public const double MaxMagnitude = 1e3;

    private async Task<Stepped> StepAsync(Forwarded f)
    {
        var started = Stopwatch.GetTimestamp();
        var dim = _nucleusSettings.NetworkDim;
        var expected = f.Batch.Rows * f.Batch.Seq * dim;
        // Sanitising: a failed call (its code), a misshapen, non-finite or absurdly large reply is refused before it
        // touches the model — not scored, not joined, no gradient, score 0 — and the reason is recorded for that peer.
        var reps = new float[f.Results.Count][];
        var refused = new string?[f.Results.Count];
        for (var i = 0; i < reps.Length; i++)
        {
            var r = f.Results[i];
            if (r.Code != ReturnCode.Success) refused[i] = r.Code.ToString();
            else refused[i] = ReplySanitiser.Check(r.Tensor.Floats, expected, _nucleusSettings.MaxMagnitude);
            reps[i] = refused[i] is null ? r.Tensor.Floats! : new float[expected];
        }
        var step = await _nucleus!.Ask<NucleusStep>(new NucleusActor.Train(f.Batch.Tokens, f.Batch.Rows, f.Batch.Seq, f.Peers.Select(p => p.Uid!.Value).ToArray(), reps, refused),
            NucleusStepGuard);
        // Scoring: a peer's score for this batch is its held-out gain (PeerScorer): how much better the next token is
        // predicted from its representation — by attention over the tokens that followed its earlier, similar ones — than
        // by the same machinery with no representation (uniform attention), measured before the batch enters its memory.
        // Noise, a constant or zeros gain at most 0 (docs/validator.md); a useful peer gains on its own, however many
        // other peers know the same thing. A refused reply scores 0.
        var k = f.Peers.Count;
        var contributions = new double[k];
        for (var i = 0; i < k; i++)
        {
            var reason = step.Rejections[i];
            contributions[i] = reason is null ? step.Gains[i] : 0;
            Metrics.Reply(f.Peers[i].Uid!.Value, reason, step.RouterWeights[i] > 0);
        }
        Metrics.Step(step.Loss, step.BaselineLoss, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        // A miner distils only a context someone joined: before any peer has shown information the joined context is
        // zeros, and pulling its model towards zeros would be a step backwards.
        if (_distill is { } distill && step.RouterWeights.Any(w => w > 0))
        {
            var joined = new float[expected];
            for (var i = 0; i < reps.Length; i++)
            {
                var w = (float)step.RouterWeights[i];
                var r = reps[i];
                for (var j = 0; j < expected; j++) joined[j] += w * r[j];
            }
            await distill(f.Batch.Tokens, f.Batch.Rows, f.Batch.Seq, joined, CancellationToken.None);
        }
        // The answers' floats are consumed (the nucleus copied them into its tensors, the scorer keeps its own copies,
        // the distilled context is summed): their arrays go back to the dendrite's pool for the next rounds to land in.
        // Not on a failed or timed-out step (the nucleus might still read them): those arrays are left to the GC.
        Array.Clear(reps);
        Bittensor.Actors.Dendrite.Dendrite.Release(f.Results);
        return new Stepped(f, step, contributions);
    }

    private async Task<RoundResult> BackwardAsync(Stepped s)
    {
        var f = s.Forwarded;
        var codes = f.Results.Select(r => r.Code).ToArray();
        var backward = Enumerable.Repeat(ReturnCode.NotImplemented, f.Peers.Count).ToArray();
        // Only peers whose reply was accepted get a gradient: the others have no response the gradient could refer to.
        var answered = Enumerable.Range(0, f.Peers.Count).Where(i => codes[i] == ReturnCode.Success && s.Step.Rejections[i] is null).ToArray();
        if (answered.Length > 0)
        {
            var started = Stopwatch.GetTimestamp();
            var shape = new long[] { f.Batch.Rows, f.Batch.Seq, _nucleusSettings.NetworkDim };
            var inputs = DenseTensor.Int64([f.Batch.Rows, f.Batch.Seq], f.Batch.Tokens);
            var grads = answered.Select(i => DenseTensor.Float32(shape, s.Step.Grads[i])).ToArray();
            var results = await _dendrite.Backward(answered.Select(i => f.Peers[i]).ToArray(), inputs, grads, _settings.CallTimeout);
            for (var j = 0; j < answered.Length; j++) backward[answered[j]] = results[j].Code;
            Bittensor.Actors.Dendrite.Dendrite.Release(results); // only the codes are kept
            Metrics.Backward(answered.Length, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        else
        {
            Metrics.Backward(0, 0);
        }
        return new RoundResult(f.Peers, codes, s.Contributions, s.Step.RouterWeights, s.Step.Loss, s.Step.BaselineLoss, backward);
    }

    /// <summary>
    /// The dendrite's pools of answer arrays: each step gives its forward round's arrays back once the nucleus is done
    /// with them (the backward round's once their codes are read), and the next rounds land their answers in them (stats, tests).
    /// </summary>
    public IReadOnlyCollection<Bittensor.Protocol.AnswerBufferPool> AnswerArrays => _dendrite.AnswerPools;

    /// <summary>The nucleus actor this pipeline trains (null before <see cref="Run"/>).</summary>
    public IActorRef? Nucleus => _nucleus;

    /// <summary>Props of this pipeline's <see cref="NucleusActor"/> (its settings; runs on the model dispatcher).</summary>
    public Props NucleusProps(ActorSystem system) => NucleusActor.Props(system, _nucleusSettings);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsNucleus) _nucleus?.Tell(PoisonPill.Instance);
        Metrics.Dispose();
    }

    private sealed record Batch(long[] Tokens, int Rows, int Seq, long Index);

    private sealed record Forwarded(Batch Batch, IReadOnlyList<EndpointInfo> Peers, IReadOnlyList<EndpointResult> Results);

    private sealed record Stepped(Forwarded Forwarded, NucleusStep Step, double[] Contributions);
}

namespace Bittensor.Neurons.Pipelines;

/// <summary>
/// Per-peer scores as exponential moving averages of their per-batch scores, keyed by uid (thread-safe). The pipeline
/// records, for each batch, how much the peer's representation alone lowers the validator's next-token loss (its
/// held-out gain, in nats per token: <see cref="Bittensor.Models.Validation.PeerScorer"/>). A peer whose call failed records 0, so a dead peer's score decays.
/// </summary>
public sealed class ScoreBoard
{
    private readonly object _gate = new();
    private readonly Dictionary<ushort, (string Hotkey, double Score, long Batches)> _scores = [];
    private readonly double _alpha;

    /// <summary>Creates a board; <paramref name="alpha"/> is the weight of the newest batch in (0, 1].</summary>
    public ScoreBoard(double alpha)
    {
        if (!(alpha > 0 && alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(alpha), "alpha must be in (0, 1]");
        _alpha = alpha;
    }

    /// <summary>Folds one batch's score of <paramref name="uid"/> into its moving average.</summary>
    public void Record(ushort uid, string hotkey, double contribution)
    {
        if (!double.IsFinite(contribution)) contribution = 0;
        lock (_gate)
        {
            // A uid taken over by a new hotkey (deregistration and re-registration) starts from zero.
            if (!_scores.TryGetValue(uid, out var s) || !string.Equals(s.Hotkey, hotkey, StringComparison.Ordinal)) s = (hotkey, 0, 0);
            var score = s.Batches == 0 ? contribution : ((1 - _alpha) * s.Score) + (_alpha * contribution);
            _scores[uid] = (hotkey, score, s.Batches + 1);
        }
    }

    /// <summary>A copy of the scores, ordered by uid.</summary>
    public IReadOnlyList<PeerScore> Snapshot()
    {
        lock (_gate)
            return _scores.OrderBy(p => p.Key).Select(p => new PeerScore(p.Key, p.Value.Hotkey, p.Value.Score, p.Value.Batches)).ToArray();
    }
}

/// <summary>One peer's score.</summary>
/// <param name="Uid">The peer's uid.</param>
/// <param name="Hotkey">The peer's hotkey (SS58).</param>
/// <param name="Score">Moving average of its per-batch loss gains (nats per token; about zero or below for a useless peer).</param>
/// <param name="Batches">Batches it was scored on.</param>
public sealed record PeerScore(ushort Uid, string Hotkey, double Score, long Batches);

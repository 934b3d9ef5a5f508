using Bittensor.Neurons.Pipelines;
using Bittensor.Neurons.Roles;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Tests;

public sealed class ScoringTests
{
    private static readonly NucleusSettings Small = NucleusSettingsHocon.Default with { VocabSize = 64, Hidden = 32, NetworkDim = 16, LearningRate = 1e-2, Seed = 3, Threads = 1 };

    [Fact]
    public void An_informative_peer_gains_and_a_noise_peer_does_not()
    {
        // Peer 0 represents each position by a fixed random embedding of the token that follows it (what a peer that
        // understands the text would carry); peer 1 answers fresh uniform noise, as the demo's useless server does.
        const int batch = 4, seq = 8, dim = 16, vocab = 64;
        var random = new Random(11);
        var embedding = new float[vocab, dim];
        for (var v = 0; v < vocab; v++)
            for (var d = 0; d < dim; d++) embedding[v, d] = (float)((random.NextDouble() * 2) - 1);
        using var nucleus = new ValidatorNucleus(Small);
        var board = new ScoreBoard(0.1);
        for (var step = 0; step < 150; step++)
        {
            var tokens = new long[batch * seq];
            for (var i = 0; i < tokens.Length; i++) tokens[i] = random.Next(vocab);
            var good = new float[batch * seq * dim];
            var noise = new float[batch * seq * dim];
            for (var b = 0; b < batch; b++)
                for (var s = 0; s < seq; s++)
                {
                    var next = s + 1 < seq ? tokens[(b * seq) + s + 1] : 0;
                    for (var d = 0; d < dim; d++)
                    {
                        good[(((b * seq) + s) * dim) + d] = embedding[next, d];
                        noise[(((b * seq) + s) * dim) + d] = (float)((random.NextDouble() * 2) - 1);
                    }
                }
            var result = nucleus.Train(tokens, batch, seq, [0, 1], [good, noise]);
            board.Record(0, "good", result.Gains[0]);
            board.Record(1, "noise", result.Gains[1]);
        }
        var scores = board.Snapshot();
        Assert.True(scores[0].Score > 0.5, $"informative peer scored {scores[0].Score}");
        Assert.True(scores[1].Score < 0.02, $"noise peer scored {scores[1].Score}");
    }

    [Theory]
    [InlineData(float.NaN, ReplySanitiser.NonFinite)]
    [InlineData(float.PositiveInfinity, ReplySanitiser.NonFinite)]
    [InlineData(float.NegativeInfinity, ReplySanitiser.NonFinite)]
    [InlineData(1e30f, ReplySanitiser.TooLarge)]
    [InlineData(-1001f, ReplySanitiser.TooLarge)]
    [InlineData(999f, null)]
    [InlineData(float.Epsilon, null)]
    public void The_sanitiser_refuses_non_finite_and_absurdly_large_replies(float poison, string? reason)
    {
        var reply = Enumerable.Repeat(0.5f, 16).ToArray();
        reply[5] = poison;
        Assert.Equal(reason, ReplySanitiser.Check(reply, 16, ValidationPipeline.MaxMagnitude));
        Assert.Equal(ReplySanitiser.WrongShape, ReplySanitiser.Check(reply, 17, ValidationPipeline.MaxMagnitude));
        Assert.Equal(ReplySanitiser.WrongShape, ReplySanitiser.Check(null, 16, ValidationPipeline.MaxMagnitude));
    }

    [Fact]
    public void A_train_step_returns_one_gradient_per_peer_shaped_like_its_representation()
    {
        using var nucleus = new ValidatorNucleus(Small);
        var tokens = Enumerable.Range(0, 2 * 4).Select(i => (long)(i % 64)).ToArray();
        var reps = new[] { new float[2 * 4 * 16], Enumerable.Repeat(0.5f, 2 * 4 * 16).ToArray() };
        var result = nucleus.Train(tokens, 2, 4, [3, 5], reps);
        Assert.Equal(2, result.Grads.Length);
        Assert.All(result.Grads, g => Assert.Equal(2 * 4 * 16, g.Length));
        Assert.Contains(result.Grads[1], x => x != 0);
        Assert.Equal(2, result.Gains.Length);
        Assert.True(double.IsFinite(result.Loss));
        Assert.Equal(1.0, result.RouterWeights.Sum(), 5);
    }

    [Fact]
    public void A_representation_of_the_wrong_size_is_refused_with_a_clear_error()
    {
        using var nucleus = new ValidatorNucleus(Small);
        var e = Assert.Throws<ArgumentException>(() => nucleus.Train(new long[8], 2, 4, [0], [new float[7]]));
        Assert.Contains("expected 128", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Score_board_keeps_a_moving_average_and_restarts_when_a_uid_changes_hands()
    {
        var board = new ScoreBoard(0.5);
        board.Record(2, "a", 1.0);
        board.Record(2, "a", 0.0);
        Assert.Equal(0.5, board.Snapshot().Single().Score, 9);
        board.Record(2, "b", -1.0);
        var s = board.Snapshot().Single();
        Assert.Equal(("b", -1.0, 1L), (s.Hotkey, s.Score, s.Batches));
        board.Record(2, "b", double.NaN);
        Assert.Equal(-0.5, board.Snapshot().Single().Score, 9);
    }

    [Theory]
    [InlineData(1, 10, 0ul, 8ul)]
    [InlineData(1, 10, 9ul, 10ul)]
    [InlineData(1, 10, 19ul, 0ul)]
    [InlineData(3, 20, 16ul, 0ul)]
    public void Blocks_until_epoch_follows_subtensor(ushort netuid, ushort tempo, ulong block, ulong expected) =>
        Assert.Equal(expected, WeightSetter.BlocksUntilEpoch(netuid, tempo, block));
}

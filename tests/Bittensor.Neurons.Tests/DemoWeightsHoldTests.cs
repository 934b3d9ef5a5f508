using Bittensor.Actors;
using Bittensor.Chain;
using Bittensor.Core.Domain;
using Bittensor.Models.Validation;
using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Pipelines;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// The in-process demo's weights-vs-epoch race: the validator sets its weights at the block <c>weights_lead_blocks</c>
/// before an epoch; if the next block went out before they reached the pool, they landed in the epoch's own block and the
/// epoch (run before the block's calls) never counted them ("market worked: false" on a busy machine). The test forces
/// that ordering with a seam instead of waiting for load to produce it.
/// </summary>
public sealed class DemoWeightsHoldTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_block_after_the_validators_weights_block_waits_until_the_weights_are_in_the_pool()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8)); // hang guard only; nothing is timed
        var order = new WeightsHeldBack();
        var options = DemoOptions.Default with
        {
            Servers = 2,
            BadServers = 1,
            Epochs = 3,
            Tempo = 8,
            BlockTime = TimeSpan.Zero,
            StepsPerBlock = 2,
            Seed = 7,
            ServerModel = LocalSubnet.TinyModel,
            Pipeline = PipelineSettings.Default with { BatchSize = 2, SequenceLength = 12 },
            Nucleus = NucleusSettingsHocon.Default with { Hidden = 64, Threads = 1 },
            Seams = new DemoSeams { BeforeSubmit = order.BeforeSubmitAsync, HoldingForWeights = order.Holding },
        };
        var result = await DemoNetwork.RunAsync(options, progress: p => order.Block(p.Block), cancellationToken: timeout.Token);
        var lead = (ulong)BittensorRuntime.ReferenceConfig.GetInt("bittensor.validator.weights_lead_blocks");
        foreach (var (asked, pooled) in order.Weights) output.WriteLine($"set_weights asked at head {asked}, entered the pool at head {pooled}");
        output.WriteLine(result.Verdict);

        // The seam let every set_weights through only once the chain had gone on without it or the block was held for it.
        Assert.NotEmpty(order.Weights);
        Assert.All(order.Weights, w =>
        {
            Assert.True(w.Pooled == w.Asked, $"set_weights asked at head {w.Asked} entered the pool at head {w.Pooled}: the next block went without it");
            Assert.Equal(lead, WeightSetter.BlocksUntilEpoch(result.Netuid, options.Tempo, w.Pooled));
        });
        Assert.True(order.Holds >= order.Weights.Count, $"{order.Holds} blocks held for {order.Weights.Count} weights");
    }

    /// <summary>
    /// Holds the validator's <c>set_weights</c> back from the pool until either the block driver holds the next block for
    /// it, or the next block was made without it — whichever comes first. Without the hold the weights always miss the
    /// block before the epoch's; with it they never do.
    /// </summary>
    private sealed class WeightsHeldBack
    {
        private readonly Lock _gate = new();
        private ulong _head;
        private ulong? _heldAt;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<(ulong Asked, ulong Pooled)> _weights = [];
        private int _holds;

        public IReadOnlyList<(ulong Asked, ulong Pooled)> Weights
        {
            get
            {
                lock (_gate) return [.. _weights];
            }
        }

        public int Holds => Volatile.Read(ref _holds);

        /// <summary>A block was made (the demo's progress callback runs after each).</summary>
        public void Block(ulong block)
        {
            lock (_gate)
            {
                _head = block;
                Pulse();
            }
        }

        /// <summary>The driver holds the block after <see cref="_head"/> for the weights (raised after that block's progress).</summary>
        public void Holding()
        {
            Interlocked.Increment(ref _holds);
            lock (_gate)
            {
                _heldAt = _head;
                Pulse();
            }
        }

        /// <summary>
        /// <paramref name="chainHead"/> is the localnet's block when the call was handed on: the block the validator acted
        /// on. The progress callback (<see cref="Block"/>) may not have reported it yet, so it is not read from
        /// <see cref="_head"/> (CI, session 20: the validator's set_weights for block 31 came before block 31's progress and
        /// was recorded as asked at 30).
        /// </summary>
        public async Task BeforeSubmitAsync(SignedCall call, ulong chainHead, CancellationToken cancellationToken)
        {
            if (ChainCall.Decode(call.Call.Span) is not SetWeights) return;
            var asked = chainHead;
            while (true)
            {
                Task changed;
                lock (_gate)
                {
                    // Let it through once the next block was reported without it, or once the driver holds that block for it
                    // (the hold is raised after the asked block's progress, so _head is the asked block then).
                    if (_head > asked || (_heldAt == asked && _head == asked))
                    {
                        _weights.Add((asked, _head));
                        return;
                    }
                    changed = _changed.Task;
                }
                await changed.WaitAsync(cancellationToken);
            }
        }

        private void Pulse()
        {
            var changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            changed.TrySetResult();
        }
    }
}

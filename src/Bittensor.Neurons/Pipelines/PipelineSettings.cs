using Akka.Configuration;
using Bittensor.Actors;

namespace Bittensor.Neurons.Pipelines;

/// <summary>
/// Shape and bounds of a <see cref="ValidationPipeline"/>, read from <c>bittensor.validator.pipeline</c>. Every buffer in
/// the stream has an explicit size here.
/// </summary>
public sealed record PipelineSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.validator.pipeline";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static PipelineSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Sequences per batch (the GroupedWithin size).</summary>
    public required int BatchSize { get; init; }

    /// <summary>Tokens per sequence.</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Longest wait for a full batch before a smaller one goes out (GroupedWithin window).</summary>
    public required TimeSpan BatchWindow { get; init; }

    /// <summary>Batches buffered between tokenisation and the forward stage (back-pressure beyond).</summary>
    public required int BatchBuffer { get; init; }

    /// <summary>Peers queried per batch; more candidates than this are sampled (seeded).</summary>
    public required int TopK { get; init; }

    /// <summary>Forward rounds in flight at once.</summary>
    public required int ForwardParallelism { get; init; }

    /// <summary>Backward rounds in flight at once.</summary>
    public required int BackwardParallelism { get; init; }

    /// <summary>Deadline of one forward or backward call to a peer.</summary>
    public required TimeSpan CallTimeout { get; init; }

    /// <summary>Pause before looking for peers again when none is serving.</summary>
    public required TimeSpan NoPeersPause { get; init; }

    /// <summary>Seed for peer sampling.</summary>
    public required int Seed { get; init; }

    /// <summary>Reads the <c>bittensor.validator.pipeline</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static PipelineSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        return new PipelineSettings
        {
            BatchSize = c.Int("batch_size"),
            SequenceLength = c.Int("sequence_length"),
            BatchWindow = c.Duration("batch_window"),
            BatchBuffer = c.Int("batch_buffer"),
            TopK = c.Int("top_k"),
            ForwardParallelism = c.Int("forward_parallelism"),
            BackwardParallelism = c.Int("backward_parallelism"),
            CallTimeout = c.Duration("call_timeout"),
            NoPeersPause = c.Duration("no_peers_pause"),
            Seed = c.Int("seed"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public PipelineSettings Validate()
    {
        const string p = SectionPath;
        HoconSection.Require(BatchSize >= 1, $"{p}.batch_size", BatchSize, "must be at least 1");
        HoconSection.Require(SequenceLength >= 2, $"{p}.sequence_length", SequenceLength, "must be at least 2");
        HoconSection.Require(BatchWindow > TimeSpan.Zero, $"{p}.batch_window", BatchWindow, "must be positive");
        HoconSection.Require(BatchBuffer >= 1, $"{p}.batch_buffer", BatchBuffer, "must be at least 1");
        HoconSection.Require(TopK >= 1, $"{p}.top_k", TopK, "must be at least 1");
        HoconSection.Require(ForwardParallelism >= 1, $"{p}.forward_parallelism", ForwardParallelism, "must be at least 1");
        HoconSection.Require(BackwardParallelism >= 1, $"{p}.backward_parallelism", BackwardParallelism, "must be at least 1");
        HoconSection.Require(CallTimeout > TimeSpan.Zero, $"{p}.call_timeout", CallTimeout, "must be positive");
        HoconSection.Require(NoPeersPause > TimeSpan.Zero, $"{p}.no_peers_pause", NoPeersPause, "must be positive");
        return this;
    }
}

namespace Bittensor.Neurons.Pipelines;

/// <summary>Shape and bounds of a <see cref="ValidationPipeline"/>. Every buffer in the stream has an explicit size here.</summary>
public sealed record PipelineSettings
{
    /// <summary>Sequences per batch (the GroupedWithin size).</summary>
    public int BatchSize { get; init; } = 4;

    /// <summary>Tokens per sequence.</summary>
    public int SequenceLength { get; init; } = 16;

    /// <summary>Longest wait for a full batch before a smaller one goes out (GroupedWithin window).</summary>
    public TimeSpan BatchWindow { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Batches buffered between tokenisation and the forward stage (back-pressure beyond).</summary>
    public int BatchBuffer { get; init; } = 2;

    /// <summary>Peers queried per batch; more candidates than this are sampled (seeded).</summary>
    public int TopK { get; init; } = 8;

    /// <summary>Forward rounds in flight at once.</summary>
    public int ForwardParallelism { get; init; } = 1;

    /// <summary>Backward rounds in flight at once.</summary>
    public int BackwardParallelism { get; init; } = 2;

    /// <summary>Deadline of one forward or backward call to a peer.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Pause before looking for peers again when none is serving.</summary>
    public TimeSpan NoPeersPause { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Seed for peer sampling.</summary>
    public int Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public PipelineSettings Validate()
    {
        if (BatchSize < 1) throw new ArgumentException("batch size must be at least 1");
        if (SequenceLength < 2) throw new ArgumentException("sequence length must be at least 2");
        if (BatchBuffer < 1) throw new ArgumentException("batch buffer must be at least 1");
        if (TopK < 1) throw new ArgumentException("top-k must be at least 1");
        if (ForwardParallelism < 1 || BackwardParallelism < 1) throw new ArgumentException("parallelism must be at least 1");
        if (CallTimeout <= TimeSpan.Zero || BatchWindow <= TimeSpan.Zero) throw new ArgumentException("timeouts must be positive");
        return this;
    }
}

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bittensor.Neurons.Pipelines;
using Bittensor.Neurons.Roles;

namespace Bittensor.Neurons.Demo;

/// <summary>
/// What the demo shows of its validator: the pipeline's counters and each peer's score. In-process it is read from
/// the <see cref="ValidatorNeuron"/>; with <c>btcli demo --processes</c> the validator process prints one per
/// completed batch (<c>btcli run validator --report_batches</c>: a line <see cref="LinePrefix"/> + JSON) and the
/// demo reads the latest.
/// </summary>
/// <param name="Metrics">Pipeline counters (batches, queries, losses, refusals and joins per uid).</param>
/// <param name="Scores">The validator's score per uid.</param>
public sealed record DemoValidatorReport(PipelineSnapshot Metrics, IReadOnlyDictionary<ushort, double> Scores)
{
    /// <summary>Start of the report line on the validator's standard output.</summary>
    public const string LinePrefix = "batch ";

    /// <summary>Longest line accepted (a report of 50 peers is a few KiB).</summary>
    public const int MaxLineLength = 1 << 20;

    private static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>The report of a running validator, now.</summary>
    public static DemoValidatorReport Of(ValidatorNeuron validator)
    {
        ArgumentNullException.ThrowIfNull(validator);
        return new(validator.Pipeline.Metrics.Snapshot(), validator.Pipeline.Scores.Snapshot().ToDictionary(s => s.Uid, s => s.Score));
    }

    /// <summary>The report as one line: <see cref="LinePrefix"/> followed by JSON.</summary>
    public string ToLine() => LinePrefix + JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a line written by <see cref="ToLine"/>; null when the line is not a report.</summary>
    /// <exception cref="FormatException">The line starts as a report but does not hold one.</exception>
    public static DemoValidatorReport? TryParse(string? line)
    {
        if (line is null || !line.StartsWith(LinePrefix, StringComparison.Ordinal)) return null;
        if (line.Length > MaxLineLength) throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"validator report of {line.Length} characters (at most {MaxLineLength})"));
        try
        {
            var report = JsonSerializer.Deserialize<DemoValidatorReport>(line.AsSpan(LinePrefix.Length), Json);
            return report is { Metrics: not null, Scores: not null } ? report : throw new FormatException("validator report without metrics or scores");
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a validator report: {e.Message}", e);
        }
    }
}

/// <summary>
/// What the demo's live view shows of the validator's last weight setting ("weights set at block …"). In-process it
/// comes from the <see cref="WeightsAttempt"/> event; with <c>btcli demo --processes</c> the validator process prints a
/// line <see cref="LinePrefix"/> + JSON per attempt (<c>btcli run validator --report_batches</c>) and the demo reads it.
/// </summary>
/// <param name="Block">Block at which the attempt started.</param>
/// <param name="Success">True when the chain applied the weights.</param>
/// <param name="Peers">Uids the weights were set on.</param>
/// <param name="Outcome">The chain's answer, or why nothing was sent.</param>
public sealed record DemoWeightsReport(ulong Block, bool Success, int Peers, string Outcome)
{
    /// <summary>Start of the weights line on the validator's standard output.</summary>
    public const string LinePrefix = "weights ";

    /// <summary>Longest line accepted (the outcome is one chain answer).</summary>
    public const int MaxLineLength = 64 * 1024;

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The report of one attempt.</summary>
    public static DemoWeightsReport Of(WeightsAttempt attempt)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        return new(attempt.Block, attempt.Success, attempt.Uids.Count, attempt.Outcome);
    }

    /// <summary>As the live view shows it after "weights ": <c>set at block B on N peers</c> or <c>not set at block B: why</c>.</summary>
    public string Text => Success
        ? string.Create(CultureInfo.InvariantCulture, $"set at block {Block} on {Peers} peers")
        : string.Create(CultureInfo.InvariantCulture, $"not set at block {Block}: {Outcome}");

    /// <summary>The report as one line: <see cref="LinePrefix"/> followed by JSON.</summary>
    public string ToLine() => LinePrefix + JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a line written by <see cref="ToLine"/>; null when the line is not a weights report.</summary>
    /// <exception cref="FormatException">The line starts as a weights report but does not hold one.</exception>
    public static DemoWeightsReport? TryParse(string? line)
    {
        if (line is null || !line.StartsWith(LinePrefix, StringComparison.Ordinal)) return null;
        if (line.Length > MaxLineLength) throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"weights report of {line.Length} characters (at most {MaxLineLength})"));
        try
        {
            var report = JsonSerializer.Deserialize<DemoWeightsReport>(line.AsSpan(LinePrefix.Length), Json);
            return report is { Outcome: not null } ? report : throw new FormatException("weights report without an outcome");
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a weights report: {e.Message}", e);
        }
    }
}

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

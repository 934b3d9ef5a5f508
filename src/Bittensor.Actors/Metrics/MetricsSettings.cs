using Akka.Configuration;

namespace Bittensor.Actors.Metrics;

/// <summary>
/// The <c>bittensor.metrics</c> section: where this process exports its meters (<see cref="BittensorMeters.Names"/>):
/// a Prometheus text endpoint and/or an OTLP exporter. The runtime's instruments exist either way; these settings
/// only say who reads them (<c>btcli</c> starts the exporter; an app on Akka.Hosting adds its own OpenTelemetry
/// <c>MeterProvider</c> with <c>AddMeter("Bittensor.*")</c>).
/// </summary>
public sealed record MetricsSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.metrics";

    /// <summary>The reference configuration's values (hocon/bittensor.conf).</summary>
    public static MetricsSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>TCP port of the Prometheus endpoint: -1 = no endpoint, 0 = any free port (the bound port is printed).</summary>
    public required int Port { get; init; }

    /// <summary>Address the endpoint binds to (default 127.0.0.1: metrics stay on this machine unless asked).</summary>
    public required string Ip { get; init; }

    /// <summary>HTTP path of the Prometheus text format (default <c>/metrics</c>).</summary>
    public required string Path { get; init; }

    /// <summary>OTLP collector address (e.g. <c>http://127.0.0.1:4317</c>); empty = no OTLP export.</summary>
    public required string OtlpEndpoint { get; init; }

    /// <summary>OTLP transport: <c>grpc</c> or <c>http/protobuf</c>.</summary>
    public required string OtlpProtocol { get; init; }

    /// <summary>How often metrics are pushed to the OTLP collector.</summary>
    public required TimeSpan OtlpInterval { get; init; }

    /// <summary>True when the Prometheus endpoint is on.</summary>
    public bool PrometheusEnabled => Port >= 0;

    /// <summary>True when OTLP export is on.</summary>
    public bool OtlpEnabled => OtlpEndpoint.Length > 0;

    /// <summary>Reads the <c>bittensor.metrics</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static MetricsSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        return new MetricsSettings
        {
            Port = c.Int("port"),
            Ip = c.String("ip"),
            Path = c.String("path"),
            OtlpEndpoint = c.String("otlp.endpoint").Trim(),
            OtlpProtocol = c.OneOf("otlp.protocol", "grpc", "http/protobuf"),
            OtlpInterval = c.Duration("otlp.interval"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public MetricsSettings Validate()
    {
        HoconSection.Require(Port is >= -1 and <= 65535, "bittensor.metrics.port", Port, "must be -1 (off), 0 (any free port) or 1..65535");
        HoconSection.Require(System.Net.IPAddress.TryParse(Ip, out _), "bittensor.metrics.ip", Ip, "must be an IP address");
        HoconSection.Require(Path.StartsWith('/') && Path.Length > 1 && !Path.Contains(' ', StringComparison.Ordinal), "bittensor.metrics.path", Path,
            "must start with / and name a path");
        HoconSection.Require(OtlpEndpoint.Length == 0 || (Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"),
            "bittensor.metrics.otlp.endpoint", OtlpEndpoint, "must be empty or an http(s) URL");
        HoconSection.Require(OtlpInterval >= TimeSpan.FromMilliseconds(100) && OtlpInterval <= TimeSpan.FromHours(1), "bittensor.metrics.otlp.interval",
            OtlpInterval, "must be in 100ms..1h");
        return this;
    }
}

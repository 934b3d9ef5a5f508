using System.CommandLine;
using System.Net;
using Akka.Configuration;
using Bittensor.Actors.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;

namespace Bittensor.Cli;

/// <summary>
/// The metrics exporter of a long-running verb (<c>axon serve</c>, <c>run</c>, <c>demo</c>): an OpenTelemetry
/// <see cref="MeterProvider"/> over the runtime's meters (<see cref="BittensorMeters.Names"/>) and .NET's own
/// <c>System.Runtime</c> meter, read by a Prometheus text endpoint (<c>bittensor.metrics.port</c>, Kestrel, HTTP/1.1)
/// and/or pushed to an OTLP collector (<c>bittensor.metrics.otlp.endpoint</c>). docs/metrics.md lists the series.
/// </summary>
internal sealed class MetricsExport : IAsyncDisposable
{
    private readonly WebApplication? _app;
    private readonly MeterProvider? _provider;

    private MetricsExport(WebApplication? app, MeterProvider? provider, Uri? scrapeUrl)
    {
        _app = app;
        _provider = provider;
        ScrapeUrl = scrapeUrl;
    }

    /// <summary>Where Prometheus scrapes (null when only OTLP is on).</summary>
    public Uri? ScrapeUrl { get; }

    /// <summary>The <c>--metrics.*</c> flags, added to <paramref name="command"/>; call the result to get their HOCON keys.</summary>
    public static Func<ParseResult, IEnumerable<(string Key, object? Value)>> AddFlags(Command command)
    {
        var port = new Option<int?>("--metrics.port")
        {
            Description = "Serve Prometheus metrics at http://<metrics.ip>:PORT/metrics (0 = any free port, printed; default off: bittensor.metrics.port = -1)",
        };
        var ip = new Option<string?>("--metrics.ip") { Description = "Address the metrics endpoint binds to (default 127.0.0.1)" };
        var otlp = new Option<string?>("--metrics.otlp.endpoint") { Description = "Also push metrics to this OTLP collector, e.g. http://127.0.0.1:4317 (default off)" };
        command.Options.Add(port);
        command.Options.Add(ip);
        command.Options.Add(otlp);
        return parse =>
        [
            ($"{MetricsSettings.SectionPath}.port", parse.GetValue(port)),
            ($"{MetricsSettings.SectionPath}.ip", parse.GetValue(ip)),
            ($"{MetricsSettings.SectionPath}.otlp.endpoint", parse.GetValue(otlp)),
        ];
    }

    /// <summary>
    /// Starts what <c>bittensor.metrics</c> of <paramref name="hocon"/> asks for and prints one line saying where
    /// (stderr); null when it asks for nothing.
    /// </summary>
    /// <exception cref="CliException">A bad key, or the port cannot be bound.</exception>
    public static async Task<MetricsExport?> StartAsync(Config hocon, CancellationToken cancellationToken)
    {
        var settings = CliConfig.Settings(hocon, MetricsSettings.SectionPath, MetricsSettings.Create);
        var export = await StartAsync(settings, cancellationToken).ConfigureAwait(false);
        if (export?.ScrapeUrl is { } url) await Console.Error.WriteLineAsync($"metrics on {url}").ConfigureAwait(false);
        if (settings.OtlpEnabled) await Console.Error.WriteLineAsync($"metrics pushed to {settings.OtlpEndpoint} (OTLP {settings.OtlpProtocol}) every {settings.OtlpInterval.TotalSeconds:0.###} s").ConfigureAwait(false);
        return export;
    }

    /// <summary>Starts the exporters <paramref name="settings"/> ask for; null when none.</summary>
    public static async Task<MetricsExport?> StartAsync(MetricsSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (!settings.PrometheusEnabled && !settings.OtlpEnabled) return null;
        if (!settings.PrometheusEnabled)
            return new MetricsExport(null, Configure(Sdk.CreateMeterProviderBuilder(), settings, prometheus: false).Build(), null);

        // The empty builder (as the axon's): no appsettings.json, no file watchers, no console lifetime of its own.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Parse(settings.Ip), settings.Port);
            k.Limits.MaxConcurrentConnections = 64;
            k.Limits.MaxRequestBodySize = 0;
        });
        builder.Services.AddOpenTelemetry().WithMetrics(m => Configure(m, settings, prometheus: true));
        var app = builder.Build();
        app.UseOpenTelemetryPrometheusScrapingEndpoint(settings.Path);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new CliException($"metrics endpoint cannot listen on {settings.Ip}:{settings.Port}: {e.Message}");
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel reported no address");
        var bound = new Uri(address);
        var host = settings.Ip is "0.0.0.0" ? "127.0.0.1" : settings.Ip is "::" ? "[::1]" : bound.Host;
        return new MetricsExport(app, null, new UriBuilder("http", host, bound.Port, settings.Path).Uri);
    }

    private static MeterProviderBuilder Configure(MeterProviderBuilder m, MetricsSettings settings, bool prometheus)
    {
        foreach (var name in BittensorMeters.Names) m.AddMeter(name);
        m.AddMeter("System.Runtime"); // .NET's own: GC, thread pool (queue length, starvation), exceptions
        // Each scrape reads the instruments afresh (the exporter's default caches a response for 300 ms).
        if (prometheus) m.AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
        if (settings.OtlpEnabled)
            m.AddOtlpExporter((o, reader) =>
            {
                o.Endpoint = new Uri(settings.OtlpEndpoint);
                o.Protocol = settings.OtlpProtocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)settings.OtlpInterval.TotalMilliseconds;
            });
        return m;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
        _provider?.Dispose();
    }
}

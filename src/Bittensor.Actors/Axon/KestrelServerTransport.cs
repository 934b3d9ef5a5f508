using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using System.Threading.RateLimiting;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WireService = Bittensor.Protocol.Wire.Bittensor;

namespace Bittensor.Actors.Axon;

/// <summary>
/// The 2021 gRPC server transport: Kestrel, HTTP/2 cleartext only, the <c>Bittensor</c> service mapped onto an
/// <see cref="IBittensorService"/>. Byte-compatible with 2021 Python dendrites. Its in-memory twin is
/// <see cref="InMemoryTransport"/>; both pass the same conformance suite (tests/Bittensor.Actors.Tests/Transport).
/// </summary>
public sealed class KestrelServerTransport : IServerTransport
{
    private readonly ILoggerProvider? _logs;
    private readonly LogLevel _level;

    /// <summary>A Kestrel transport whose server logs (at <paramref name="level"/> and above) go to <paramref name="logs"/>.</summary>
    public KestrelServerTransport(ILoggerProvider? logs = null, LogLevel level = LogLevel.Warning)
    {
        _logs = logs;
        _level = level;
    }

    /// <inheritdoc />
    public async Task<IServerBinding> BindAsync(ServerTransportOptions options, IBittensorService service, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(service);
        // The empty builder reads no appsettings.json and sets up no file watchers (inotify instances are limited to
        // 128 per user, and one host process may run hundreds of axons); everything comes from the options.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(_level);
        // ASP.NET Core's hosting starts an Activity and a log scope for every request when its logger is enabled at
        // any level (perf: ~5% of a refused call's CPU); it only logs request start/stop (Debug/Information).
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        if (_logs is not null) builder.Logging.AddProvider(_logs);
        var limits = options.Limits ?? ServerLimits.None;
        var gate = new HeaderGate(this, service, options, limits);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Parse(options.Ip), options.Port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                // Per-IP connection cap: a connection over it is closed before any HTTP/2 frame is read (the caller
                // sees UNAVAILABLE; a connection-level limit has no gRPC status to send).
                if (gate.PerIpConnections is not null) l.Use(next => connection => gate.OnConnection(connection, next));
            });
            // The body limit is a backstop against a length prefix that lies: the header gate reads the 5-byte gRPC
            // length prefix and answers RESOURCE_EXHAUSTED before any of the message is buffered.
            k.Limits.MaxRequestBodySize = (long)options.MaxReceiveMessageSize + 5;
            // Admission (the service) decides overload; the per-connection stream cap is a ceiling, not a shed rule
            // (a client over it waits for a free stream: SETTINGS_MAX_CONCURRENT_STREAMS).
            k.Limits.Http2.MaxStreamsPerConnection = options.MaxConcurrentCalls;
            if (limits.MaxRequestHeadersSize > 0)
            {
                k.Limits.MaxRequestHeadersTotalSize = limits.MaxRequestHeadersSize;
                k.Limits.Http2.MaxRequestHeaderFieldSize = limits.MaxRequestHeadersSize;
            }
            if (limits.MaxConnections > 0) k.Limits.MaxConcurrentConnections = limits.MaxConnections;
        });
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = options.MaxReceiveMessageSize;
            o.MaxSendMessageSize = options.MaxSendMessageSize;
            o.EnableDetailedErrors = false;
        });
        builder.Services.AddSingleton(new GrpcAdapter(service, this));
        var app = builder.Build();
        // Kestrel's own refusals (connection cap, oversized headers, HTTP/2 protocol errors) happen before any
        // middleware runs; its metrics (this app's meter factory only) tell the service about them.
        var kestrelErrors = KestrelErrorListener.Start(app.Services.GetService<System.Diagnostics.Metrics.IMeterFactory>(), gate);
        // Runs before routing (a refused call costs no endpoint match) and so before the gRPC endpoint reads the body:
        // headers are checked first. UseRouting after it keeps WebApplication from putting routing first.
        app.Use(gate.InvokeAsync);
        app.UseRouting();
        app.MapGrpcService<GrpcAdapter>();
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            kestrelErrors?.Dispose();
            gate.Dispose();
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel reported no address");
        var uri = new Uri(address.Replace("[::]", "[::1]", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        return new Binding(app, new IPEndPoint(IPAddress.Parse(options.Ip), uri.Port), gate, kestrelErrors);
    }

    private long _bodiesParsed;
    private long _connectionsRefused;

    /// <summary>Calls whose request message was read and parsed (the gRPC handler ran), over every binding of this transport.</summary>
    internal long BodiesParsed => Interlocked.Read(ref _bodiesParsed);

    /// <summary>Connections closed at once by the per-IP connection cap, over every binding of this transport.</summary>
    internal long ConnectionsRefused => Interlocked.Read(ref _connectionsRefused);

    private const string AdmissionKey = "bittensor.admission";

    /// <summary>
    /// Checks what can be checked before the body: per-IP request rate, then the service's header checks (signature,
    /// nonce, version, blacklist), then the gRPC length prefix against the method's limit. Refusals are written as
    /// gRPC trailers-only responses; the unread body is discarded by Kestrel (RST_STREAM NO_ERROR).
    /// </summary>
    private sealed class HeaderGate : IDisposable
    {
        private static readonly string[] HeaderNames = [AuthHeaders.AuthName, AuthHeaders.SignatureName, AuthHeaders.VersionName];
        private readonly KestrelServerTransport _owner;
        private readonly IBittensorService _service;
        private readonly ServerTransportOptions _options;
        private readonly bool _exemptLoopback;
        private readonly PartitionedRateLimiter<IPAddress>? _rate;

        public HeaderGate(KestrelServerTransport owner, IBittensorService service, ServerTransportOptions options, ServerLimits limits)
        {
            _owner = owner;
            _service = service;
            _options = options;
            _exemptLoopback = limits.ExemptLoopback;
            if (limits.MaxConnectionsPerIp > 0)
            {
                var permits = limits.MaxConnectionsPerIp;
                PerIpConnections = PartitionedRateLimiter.Create<IPAddress, IPAddress>(ip => RateLimitPartition.GetConcurrencyLimiter(ip,
                    _ => new ConcurrencyLimiterOptions { PermitLimit = permits, QueueLimit = 0 }));
            }
            if (limits.RequestsPerSecondPerIp > 0)
            {
                var period = limits.RateLimitPeriod;
                var perPeriod = Math.Max(1, (int)Math.Round(limits.RequestsPerSecondPerIp * period.TotalSeconds));
                var bucket = Math.Max(perPeriod, limits.RequestBurstPerIp);
                _rate = PartitionedRateLimiter.Create<IPAddress, IPAddress>(ip => RateLimitPartition.GetTokenBucketLimiter(ip,
                    _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = bucket, TokensPerPeriod = perPeriod, ReplenishmentPeriod = period, QueueLimit = 0, AutoReplenishment = true,
                    }));
            }
        }

        public PartitionedRateLimiter<IPAddress>? PerIpConnections { get; }

        /// <summary>
        /// The key an address is limited under: IPv4 as is (also when mapped into IPv6), IPv6 by its /64 (one host
        /// usually owns a whole /64, so counting single addresses would not limit it). Null: exempt.
        /// </summary>
        private IPAddress? Key(IPAddress? ip)
        {
            if (ip is null) return null;
            if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
            if (_exemptLoopback && IPAddress.IsLoopback(ip)) return null;
            if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6) return ip;
            var bytes = ip.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            return new IPAddress(bytes);
        }

        public async Task OnConnection(ConnectionContext connection, ConnectionDelegate next)
        {
            var key = Key((connection.RemoteEndPoint as IPEndPoint)?.Address);
            if (key is null)
            {
                await next(connection).ConfigureAwait(false);
                return;
            }
            using var lease = PerIpConnections!.AttemptAcquire(key);
            if (!lease.IsAcquired)
            {
                Interlocked.Increment(ref _owner._connectionsRefused);
                Refused(null, StatusCode.Unavailable, RefusalReasons.PerIpConnections);
                return;
            }
            await next(connection).ConfigureAwait(false);
        }

        public async Task InvokeAsync(HttpContext context, RequestDelegate next)
        {
            var path = context.Request.Path.Value;
            BittensorMethod method;
            if (string.Equals(path, "/Bittensor/Forward", StringComparison.Ordinal)) method = BittensorMethod.Forward;
            else if (string.Equals(path, "/Bittensor/Backward", StringComparison.Ordinal)) method = BittensorMethod.Backward;
            else
            {
                await next(context).ConfigureAwait(false);
                return;
            }

            if (_rate is not null && Key(context.Connection.RemoteIpAddress) is { } key)
            {
                using var lease = _rate.AttemptAcquire(key);
                if (!lease.IsAcquired)
                {
                    Refused(method, StatusCode.ResourceExhausted, RefusalReasons.PerIpRate);
                    WriteStatus(context, StatusCode.ResourceExhausted, TransportStatus.RateLimited);
                    return;
                }
            }

            var headers = new Metadata();
            foreach (var name in HeaderNames)
            {
                if (context.Request.Headers.TryGetValue(name, out var values) && values.Count > 0 && values[0] is { } value) headers.Add(name, value);
            }
            HeaderDecision decision;
            try
            {
                decision = await _service.CheckHeadersAsync(method, headers, context.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception)
            {
                Refused(method, StatusCode.Unknown, RefusalReasons.CheckFailed);
                WriteStatus(context, StatusCode.Unknown, TransportStatus.HandlerThrew);
                return;
            }
            if (decision.Refusal is { } refusal)
            {
                WriteStatus(context, refusal.StatusCode, refusal.Detail);
                return;
            }
            if (decision.Answer is { } answer)
            {
                await WriteAnswer(context, answer).ConfigureAwait(false);
                return;
            }

            // The method's size limit from the 5-byte length prefix (peeked: nothing consumed, gRPC reads it again).
            // Always done here: Kestrel's body limit (a backstop) would otherwise fire first as an unhelpful Unknown.
            var limit = _options.ReceiveLimit(method);
            {
                var reader = context.Request.BodyReader;
                System.IO.Pipelines.ReadResult read;
                try
                {
                    read = await reader.ReadAtLeastAsync(5, context.RequestAborted).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException)
                {
                    return;
                }
                var buffer = read.Buffer;
                long length = -1;
                if (buffer.Length >= 5)
                {
                    Span<byte> prefix = stackalloc byte[5];
                    System.Buffers.BuffersExtensions.CopyTo(buffer.Slice(0, 5), prefix);
                    length = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
                }
                reader.AdvanceTo(buffer.Start);
                if (length > limit)
                {
                    Refused(method, StatusCode.ResourceExhausted, RefusalReasons.MessageSize);
                    WriteStatus(context, StatusCode.ResourceExhausted, length > _options.MaxReceiveMessageSize
                        ? TransportStatus.ReceiveTooLarge
                        : TransportStatus.ForwardTooLarge(length, limit));
                    return;
                }
            }
            context.Items[AdmissionKey] = decision.Admission;
            await next(context).ConfigureAwait(false);
        }

        /// <summary>Tells the service (its metrics) about a refusal of the transport's own; never throws.</summary>
        public void Refused(BittensorMethod? method, StatusCode code, string reason)
        {
            try
            {
                _service.OnRefused(new TransportRefusal(method, code, reason));
            }
            catch (Exception)
            {
                // Counting must not change the answer.
            }
        }

        /// <summary>A gRPC trailers-only response: status in the HEADERS frame that ends the stream.</summary>
        private static void WriteStatus(HttpContext context, StatusCode code, string message)
        {
            var response = context.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/grpc";
            response.Headers["grpc-status"] = (int)code is >= 0 and < 17 ? StatusTexts[(int)code] : ((int)code).ToString(CultureInfo.InvariantCulture);
            if (message.Length > 0) response.Headers["grpc-message"] = PercentEncode(message);
        }

        private async Task WriteAnswer(HttpContext context, TensorMessage answer)
        {
            var size = answer.CalculateSize();
            if (size > _options.MaxSendMessageSize)
            {
                WriteStatus(context, StatusCode.ResourceExhausted, TransportStatus.SendTooLarge);
                return;
            }
            var frame = new byte[5 + size];
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)size);
            Google.Protobuf.MessageExtensions.WriteTo(answer, frame.AsSpan(5));
            var response = context.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/grpc";
            try
            {
                await response.Body.WriteAsync(frame, context.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                return;
            }
            response.AppendTrailer("grpc-status", "0");
        }

        private static readonly string[] StatusTexts = Enumerable.Range(0, 17).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

        /// <summary>gRPC's percent-encoding of <c>grpc-message</c>: printable ASCII except '%' as is, every other UTF-8 byte as %XX.</summary>
        internal static string PercentEncode(string message)
        {
            // The refusals' texts are plain ASCII: no copy for them.
            var plain = true;
            foreach (var c in message)
            {
                if (c is < ' ' or > '~' or '%')
                {
                    plain = false;
                    break;
                }
            }
            if (plain) return message;
            var sb = new StringBuilder(message.Length);
            foreach (var b in Encoding.UTF8.GetBytes(message))
            {
                if (b is >= 0x20 and <= 0x7E && b != (byte)'%') sb.Append((char)b);
                else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
            return sb.ToString();
        }

        public void Dispose()
        {
            PerIpConnections?.Dispose();
            _rate?.Dispose();
        }
    }

    /// <summary>
    /// Listens to one Kestrel server's own metrics (the meters of its app's <see cref="System.Diagnostics.Metrics.IMeterFactory"/>,
    /// not other servers' in the process): connections it rejected over <c>MaxConcurrentConnections</c> and connections it
    /// ended with an error of its limits or of the HTTP/2 protocol (<c>kestrel.connection.duration</c>'s <c>error.type</c>:
    /// oversized headers, too many headers, a stream-reset flood, …) become refusals. Ordinary ends (the peer reset or
    /// closed, idle timeout, shutdown) are not refusals.
    /// </summary>
    private sealed class KestrelErrorListener : IDisposable
    {
        private const string KestrelMeter = "Microsoft.AspNetCore.Server.Kestrel";
        private static readonly HashSet<string> Ordinary = new(StringComparer.Ordinal)
        {
            "connection_reset", "io_error", "aborted_by_app", "app_shutdown_timeout", "keep_alive_timeout", "write_canceled", "other_error",
            "server_timeout",
        };
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();

        private KestrelErrorListener(System.Diagnostics.Metrics.IMeterFactory factory, HeaderGate gate)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (!ReferenceEquals(instrument.Meter.Scope, factory) || instrument.Meter.Name != KestrelMeter) return;
                if (instrument.Name is "kestrel.rejected_connections" or "kestrel.connection.duration") listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((instrument, _, _, _) =>
            {
                if (instrument.Name == "kestrel.rejected_connections") gate.Refused(null, StatusCode.Unavailable, RefusalReasons.Connections);
            });
            _listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) =>
            {
                if (instrument.Name != "kestrel.connection.duration") return;
                foreach (var tag in tags)
                {
                    // A connection rejected over the cap is counted once, by kestrel.rejected_connections.
                    if (tag.Key == "error.type" && tag.Value is string type && !Ordinary.Contains(type) && type != RefusalReasons.Connections)
                        gate.Refused(null, StatusCode.Internal, type);
                }
            });
            _listener.Start();
        }

        public static KestrelErrorListener? Start(System.Diagnostics.Metrics.IMeterFactory? factory, HeaderGate gate) =>
            factory is null ? null : new KestrelErrorListener(factory, gate);

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>The generated gRPC base mapped onto the transport-neutral service.</summary>
    internal sealed class GrpcAdapter(IBittensorService service, KestrelServerTransport owner) : WireService.BittensorBase
    {
        public override Task<TensorMessage> Forward(TensorMessage request, ServerCallContext context) =>
            service.HandleAsync(BittensorMethod.Forward, request, Inbound(context));

        public override Task<TensorMessage> Backward(TensorMessage request, ServerCallContext context) =>
            service.HandleAsync(BittensorMethod.Backward, request, Inbound(context));

        private InboundCall Inbound(ServerCallContext context)
        {
            // grpc-dotnet calls a handler only once the request message is read and parsed.
            Interlocked.Increment(ref owner._bodiesParsed);
            var http = context.GetHttpContext();
            var admission = http.Items.TryGetValue(AdmissionKey, out var a) ? a : null;
            // The response message is serialized into Kestrel's own buffers before the request completes, and objects
            // registered here are disposed only after that: pooled response buffers go back to their pool then.
            return new InboundCall(context.RequestHeaders, context.Deadline, context.CancellationToken, admission, http.Response.RegisterForDispose);
        }
    }

    private sealed class Binding(WebApplication app, IPEndPoint endpoint, IDisposable gate, IDisposable? kestrelErrors) : IServerBinding
    {
        private int _disposed;

        public IPEndPoint Endpoint { get; } = endpoint;

        public Task StopAsync(CancellationToken cancellationToken) => app.StopAsync(cancellationToken);

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            await app.DisposeAsync().ConfigureAwait(false);
            kestrelErrors?.Dispose();
            gate.Dispose();
        }
    }
}

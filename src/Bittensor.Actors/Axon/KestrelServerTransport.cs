using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using System.Threading.RateLimiting;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bittensor.Actors.Axon;

/// <summary>
/// The 2021 gRPC server transport: Kestrel, HTTP/2 cleartext only, the <c>Bittensor</c> service mapped onto an
/// <see cref="IBittensorService"/> by an endpoint that speaks gRPC's framing itself (no grpc-dotnet server).
/// Byte-compatible with 2021 Python dendrites (grpcio) and grpc-dotnet clients. Its in-memory twin is
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
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(_level);
        // ASP.NET Core's hosting starts an Activity and a log scope for every request when its logger is enabled at
        // any level (perf: ~5% of a refused call's CPU); it only logs request start/stop (Debug/Information).
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        if (_logs is not null) builder.Logging.AddProvider(_logs);
        var limits = options.Limits ?? ServerLimits.None;
        var gate = new GrpcEndpoint(this, service, options, limits);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Parse(options.Ip), options.Port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                // Loopback peers get the configured congestion control, as on the lean server (TcpCongestion: BBR's own
                // pacing timers on lo cost a timer interrupt every few answers); before any HTTP/2 frame is read.
                if (options.LoopbackCongestionControl is { Length: > 0 }) l.Use(next => connection => gate.SetCongestion(connection, next));
                // Per-IP connection cap: a connection over it is closed before any HTTP/2 frame is read (the caller
                // sees UNAVAILABLE; a connection-level limit has no gRPC status to send).
                if (gate.PerIpConnections is not null) l.Use(next => connection => gate.OnConnection(connection, next));
            });
            // The body limit is a backstop against a length prefix that lies: the endpoint reads the 5-byte gRPC
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
            // The same rule as the lean server's idle timeout: a connection with no open stream that received nothing for it closes.
            if (limits.IdleTimeout > TimeSpan.Zero) k.Limits.KeepAliveTimeout = limits.IdleTimeout;
            // The minimum data rates (limits.min_*_rate): Kestrel's own rules, from the same keys (grace over 1 s, checked
            // by AxonSettings); 0 turns them off. ServerLimits.None leaves Kestrel's defaults.
            if (!ReferenceEquals(limits, ServerLimits.None))
            {
                k.Limits.MinRequestBodyDataRate = limits.MinRequestBodyRate > 0 && limits.MinRequestBodyGrace > TimeSpan.FromSeconds(1)
                    ? new MinDataRate(limits.MinRequestBodyRate, limits.MinRequestBodyGrace)
                    : null;
                k.Limits.MinResponseDataRate = limits.MinResponseRate > 0 && limits.MinResponseGrace > TimeSpan.FromSeconds(1)
                    ? new MinDataRate(limits.MinResponseRate, limits.MinResponseGrace)
                    : null;
            }
        });
        var app = builder.Build();
        // Kestrel's own refusals (connection cap, oversized headers, HTTP/2 protocol errors) happen before any
        // middleware runs; its metrics (this app's meter factory only) tell the service about them.
        var kestrelErrors = KestrelErrorListener.Start(app.Services.GetService<System.Diagnostics.Metrics.IMeterFactory>(), gate);
        // The one endpoint: no routing, no grpc-dotnet call machinery (see GrpcEndpoint).
        app.Run(gate.InvokeAsync);
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
    private long _loopbackCongestionSet;
    private long _loopbackCongestionRefused;

    /// <summary>Loopback connections given <see cref="ServerTransportOptions.LoopbackCongestionControl"/>, and those whose kernel refused it.</summary>
    internal long LoopbackCongestionSet => Interlocked.Read(ref _loopbackCongestionSet);

    internal long LoopbackCongestionRefused => Interlocked.Read(ref _loopbackCongestionRefused);

    /// <summary>Tests: each loopback connection's congestion control as read back from its accepted socket after the set.</summary>
    internal Action<string?>? AcceptedCongestion { get; set; }

    /// <summary>Calls whose request message was read and parsed (and handed to the service), over every binding of this transport.</summary>
    internal long BodiesParsed => Interlocked.Read(ref _bodiesParsed);

    /// <summary>Connections closed at once by the per-IP connection cap, over every binding of this transport.</summary>
    internal long ConnectionsRefused => Interlocked.Read(ref _connectionsRefused);

    private const string ForwardPath = "/Bittensor/Forward";
    private const string BackwardPath = "/Bittensor/Backward";

    /// <summary>
    /// The gRPC endpoint of <c>/Bittensor/Forward</c> and <c>/Bittensor/Backward</c>, speaking gRPC's framing over
    /// Kestrel's HTTP/2 itself (no routing, no grpc-dotnet call machinery): per-IP request rate, then the service's
    /// header checks (signature, nonce, version, blacklist), then the 5-byte length prefix against the method's limit,
    /// and only then the message is read and parsed — straight from the request pipe — and handed to the service. The
    /// answer is serialized into the response pipe with its frame prefix; <c>grpc-status</c> goes in the trailers.
    /// Refusals are trailers-only responses (the status in the HEADERS frame that ends the stream); the unread body
    /// is discarded by Kestrel (RST_STREAM NO_ERROR). Byte-compatible with grpcio and grpc-dotnet clients.
    /// </summary>
    private sealed class GrpcEndpoint : IDisposable
    {
        private static readonly string[] HeaderNames = [AuthHeaders.AuthName, AuthHeaders.SignatureName, AuthHeaders.VersionName];
        private readonly KestrelServerTransport _owner;
        private readonly IBittensorService _service;
        private readonly ServerTransportOptions _options;
        private readonly bool _exemptLoopback;
        private readonly PartitionedRateLimiter<IPAddress>? _rate;
        private int _held;

        public GrpcEndpoint(KestrelServerTransport owner, IBittensorService service, ServerTransportOptions options, ServerLimits limits)
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
                var (perPeriod, period) = limits.RefillStep();
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

        private int _congestionWarned;

        public Task SetCongestion(ConnectionContext connection, ConnectionDelegate next)
        {
            if (connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()?.Socket is { } socket
                && Bittensor.Protocol.Lean.TcpCongestion.ApplyToLoopback(socket, (connection.RemoteEndPoint as IPEndPoint)?.Address, _options.LoopbackCongestionControl) is { } set)
            {
                if (set) Interlocked.Increment(ref _owner._loopbackCongestionSet);
                else
                {
                    Interlocked.Increment(ref _owner._loopbackCongestionRefused);
                    if (Interlocked.Exchange(ref _congestionWarned, 1) == 0) _options.Warn?.Invoke(Bittensor.Protocol.Lean.TcpCongestion.RefusedWarning(_options.LoopbackCongestionControl!));
                }
                _owner.AcceptedCongestion?.Invoke(Bittensor.Protocol.Lean.TcpCongestion.Get(socket));
            }
            return next(connection);
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

        /// <summary>Every request of the server: the two methods, or a gRPC UNIMPLEMENTED (404 for what is not gRPC).</summary>
        public Task InvokeAsync(HttpContext context)
        {
            var path = context.Request.Path.Value;
            if (string.Equals(path, ForwardPath, StringComparison.Ordinal)) return ServeAsync(context, BittensorMethod.Forward);
            if (string.Equals(path, BackwardPath, StringComparison.Ordinal)) return ServeAsync(context, BittensorMethod.Backward);
            if (!GrpcWire.IsGrpc(context.Request.ContentType))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }
            // As grpc-dotnet answers methods and services it does not serve.
            WriteStatus(context, StatusCode.Unimplemented,
                path is not null && path.StartsWith("/Bittensor/", StringComparison.Ordinal) ? "Method is unimplemented." : "Service is unimplemented.");
            return Task.CompletedTask;
        }

        private async Task ServeAsync(HttpContext context, BittensorMethod method)
        {
            var request = context.Request;
            if (!HttpMethods.IsPost(request.Method))
            {
                context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                return;
            }
            if (!GrpcWire.IsGrpc(request.ContentType))
            {
                // grpc-dotnet's answer to a call that is not gRPC.
                WriteStatus(context, StatusCode.Internal, $"Content-Type '{request.ContentType}' is not supported.", StatusCodes.Status415UnsupportedMediaType);
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

            // Calls in flight (the service's overload answer from the headers, before they are checked and the body read):
            // held from here until this delegate returns. Calls Kestrel has dispatched but the thread pool has not started
            // yet are not seen (docs/axon.md, "Overload").
            var limit = _options.MaxCallsInFlight;
            if (limit <= 0)
            {
                await ServeHeldAsync(context, method).ConfigureAwait(false);
                return;
            }
            if (Interlocked.Increment(ref _held) > limit)
            {
                Interlocked.Decrement(ref _held);
                Answer(context, method, Overloaded(method, limit));
                return;
            }
            try
            {
                await ServeHeldAsync(context, method).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _held);
            }
        }

        private HeaderDecision? Overloaded(BittensorMethod method, int limit)
        {
            try
            {
                return _service.Overloaded(method, limit);
            }
            catch (Exception)
            {
                return null;
            }
        }

        /// <summary>Writes a decision made without reading the body (null: the service's check threw).</summary>
        private void Answer(HttpContext context, BittensorMethod method, HeaderDecision? decision)
        {
            if (decision is not { } d)
            {
                Refused(method, StatusCode.Unknown, RefusalReasons.CheckFailed);
                WriteStatus(context, StatusCode.Unknown, TransportStatus.HandlerThrew);
            }
            else if (d.Refusal is { } refusal)
            {
                WriteStatus(context, refusal.StatusCode, refusal.Detail);
            }
            else if (d.Answer is { } answer)
            {
                WriteMessage(context, answer, null);
            }
            else
            {
                // A service that lets an overloaded call through gets the overload refusal of the default.
                WriteStatus(context, StatusCode.ResourceExhausted, "Too many calls in flight; try again later.");
            }
        }

        private async Task ServeHeldAsync(HttpContext context, BittensorMethod method)
        {
            var request = context.Request;
            var headers = new Metadata();
            var requestHeaders = request.Headers;
            foreach (var name in HeaderNames)
            {
                if (requestHeaders.TryGetValue(name, out var values) && values.Count > 0 && values[0] is { } value) headers.Add(name, value);
            }
            HeaderDecision decision;
            try
            {
                decision = await _service.CheckHeadersAsync(method, headers, context.Connection.RemoteIpAddress, CancellationToken.None).ConfigureAwait(false);
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
                WriteMessage(context, answer, null);
                return;
            }

            var message = await ReadMessageAsync(context, method).ConfigureAwait(false);
            if (message is null) return;
            Interlocked.Increment(ref _owner._bodiesParsed);

            var deadline = GrpcWire.Deadline(requestHeaders.GrpcTimeout, DateTime.UtcNow);
            var call = new Call();
            Task<TensorMessage> handled;
            try
            {
                handled = _service.HandleAsync(method, message, new InboundCall(headers, deadline, call.Token, decision.Admission, call.Register));
            }
            catch (Exception e)
            {
                handled = Task.FromException<TensorMessage>(e);
            }
            if (!handled.IsCompleted && !await WaitAsync(context, handled, call, deadline).ConfigureAwait(false)) return;
            TensorMessage response;
            try
            {
                response = await handled.ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                call.Finish();
                WriteStatus(context, e.StatusCode, e.Status.Detail);
                return;
            }
            catch (Exception)
            {
                call.Finish();
                WriteStatus(context, StatusCode.Unknown, TransportStatus.HandlerThrew);
                return;
            }
            WriteMessage(context, response, call);
        }

        /// <summary>
        /// A handler that did not answer at once: its token now follows the caller (reset, disconnect) and the call's
        /// deadline. False when the call ended first (the caller went away, or DEADLINE_EXCEEDED was answered); the
        /// handler then finishes on its own and anything it registers afterwards is disposed at once.
        /// </summary>
        private static async Task<bool> WaitAsync(HttpContext context, Task<TensorMessage> handled, Call call, DateTime deadline)
        {
            using var aborted = context.RequestAborted.UnsafeRegister(static s => ((Call)s!).Cancel(), call);
            if (deadline != DateTime.MaxValue) call.CancelAt(deadline);
            try
            {
                await handled.WaitAsync(call.Token).ConfigureAwait(false);
                return true;
            }
            catch (Exception) when (call.Token.IsCancellationRequested)
            {
                // The deadline passed or the caller went away before the handler answered (as in grpc-dotnet, its
                // answer, if any comes, is not sent).
            }
            catch (Exception)
            {
                // The handler failed on its own: the caller's await reports it.
                return true;
            }
            call.Abandon();
            _ = handled.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            if (!context.RequestAborted.IsCancellationRequested) WriteStatus(context, StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded);
            return false;
        }

        /// <summary>
        /// Reads the one request message: the 5-byte prefix (checked against the method's limit before anything more
        /// is read), then exactly its length, parsed from the pipe's own buffers. Null when the call was answered
        /// (refused or malformed) or the caller went away.
        /// </summary>
        private async Task<TensorMessage?> ReadMessageAsync(HttpContext context, BittensorMethod method)
        {
            var limit = _options.ReceiveLimit(method);
            var reader = context.Request.BodyReader;
            System.IO.Pipelines.ReadResult read;
            try
            {
                read = await reader.ReadAtLeastAsync(5).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException or InvalidOperationException)
            {
                return null;
            }
            var buffer = read.Buffer;
            if (buffer.Length < 5)
            {
                reader.AdvanceTo(buffer.End);
                WriteStatus(context, StatusCode.Internal, "Incomplete message.");
                return null;
            }
            Span<byte> prefix = stackalloc byte[5];
            System.Buffers.BuffersExtensions.CopyTo(buffer.Slice(0, 5), prefix);
            var flag = prefix[0];
            long length = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
            if (length > limit)
            {
                reader.AdvanceTo(buffer.Start);
                Refused(method, StatusCode.ResourceExhausted, RefusalReasons.MessageSize);
                WriteStatus(context, StatusCode.ResourceExhausted, length > _options.MaxReceiveMessageSize
                    ? TransportStatus.ReceiveTooLarge
                    : TransportStatus.ForwardTooLarge(length, limit));
                return null;
            }
            if (flag > 1)
            {
                reader.AdvanceTo(buffer.Start);
                WriteStatus(context, StatusCode.Internal, "Unexpected compressed flag value in message header.");
                return null;
            }
            var end = 5 + length;
            if (buffer.Length < end)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                try
                {
                    read = await reader.ReadAtLeastAsync((int)end).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException or InvalidOperationException)
                {
                    return null;
                }
                buffer = read.Buffer;
                if (buffer.Length < end)
                {
                    reader.AdvanceTo(buffer.End);
                    WriteStatus(context, StatusCode.Internal, "Incomplete message.");
                    return null;
                }
            }
            string? failure = null;
            var code = StatusCode.Internal;
            TensorMessage? message = null;
            var extra = buffer.Length > end;
            var completed = read.IsCompleted;
            if (!extra)
            {
                try
                {
                    var payload = buffer.Slice(5, length);
                    if (flag == 0) message = TensorMessage.Parser.ParseFrom(payload);
                    else (message, code, failure) = Decompressed(context.Request.Headers.GrpcEncoding, payload, limit);
                }
                catch (InvalidProtocolBufferException)
                {
                    failure = "Failed to deserialize request message.";
                }
            }
            // The parser copied what it keeps: the pipe's buffers go back now.
            reader.AdvanceTo(buffer.End);
            // A unary call carries one message: the body must end after it (grpc-dotnet reads to the end too). The
            // end usually came with the message's DATA frame, so this rarely waits.
            while (!extra && !completed && failure is null)
            {
                try
                {
                    read = await reader.ReadAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException or InvalidOperationException)
                {
                    return null;
                }
                extra = !read.Buffer.IsEmpty;
                completed = read.IsCompleted;
                reader.AdvanceTo(read.Buffer.End);
            }
            if (extra)
            {
                WriteStatus(context, StatusCode.Internal, "Additional data after the message received.");
                return null;
            }
            if (failure is not null)
            {
                if (code == StatusCode.ResourceExhausted) Refused(method, code, RefusalReasons.MessageSize);
                WriteStatus(context, code, failure);
                return null;
            }
            return message;
        }

        /// <summary>A message sent compressed (flag 1): gzip, as grpc-dotnet accepts by default, inflated to at most <paramref name="limit"/> bytes.</summary>
        private static (TensorMessage? Message, StatusCode Code, string? Failure) Decompressed(string? encoding, System.Buffers.ReadOnlySequence<byte> payload, int limit)
        {
            if (string.IsNullOrEmpty(encoding) || string.Equals(encoding, "identity", StringComparison.Ordinal))
                return (null, StatusCode.Internal, "Request did not include grpc-encoding value with compressed message.");
            if (!string.Equals(encoding, "gzip", StringComparison.Ordinal))
                return (null, StatusCode.Unimplemented, $"Unsupported grpc-encoding value '{encoding}'. Supported encodings: identity, gzip");
            using var inflater = new System.IO.Compression.GZipStream(new ReadOnlySequenceStream(payload), System.IO.Compression.CompressionMode.Decompress);
            using var inflated = new MemoryStream();
            var chunk = new byte[16 * 1024];
            try
            {
                int n;
                while ((n = inflater.Read(chunk, 0, chunk.Length)) > 0)
                {
                    if (inflated.Length + n > limit) return (null, StatusCode.ResourceExhausted, TransportStatus.ReceiveTooLarge);
                    inflated.Write(chunk, 0, n);
                }
            }
            catch (InvalidDataException)
            {
                return (null, StatusCode.Internal, "Failed to decompress request message.");
            }
            return (TensorMessage.Parser.ParseFrom(inflated.GetBuffer().AsSpan(0, (int)inflated.Length)), StatusCode.OK, null);
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
        private static void WriteStatus(HttpContext context, StatusCode code, string message, int httpStatus = StatusCodes.Status200OK)
        {
            var response = context.Response;
            if (response.HasStarted) return;
            response.StatusCode = httpStatus;
            response.ContentType = GrpcWire.ContentType;
            var headers = response.Headers;
            headers.GrpcStatus = (int)code is >= 0 and < 17 ? StatusTexts[(int)code] : ((int)code).ToString(CultureInfo.InvariantCulture);
            if (message.Length > 0) headers.GrpcMessage = GrpcWire.PercentEncode(message);
        }

        /// <summary>
        /// The answer framed (5-byte prefix, then the message) into the response pipe, <c>grpc-status: 0</c> in the
        /// trailers; Kestrel sends headers, data and trailers once the endpoint returns. What the call registered
        /// for disposal (pooled answer buffers) is disposed once the bytes are in the pipe.
        /// </summary>
        private void WriteMessage(HttpContext context, TensorMessage answer, Call? call)
        {
            try
            {
                var size = answer.CalculateSize();
                if (size > _options.MaxSendMessageSize)
                {
                    WriteStatus(context, StatusCode.ResourceExhausted, TransportStatus.SendTooLarge);
                    return;
                }
                var response = context.Response;
                response.StatusCode = StatusCodes.Status200OK;
                response.ContentType = GrpcWire.ContentType;
                var writer = response.BodyWriter;
                var prefix = writer.GetSpan(5);
                prefix[0] = 0;
                BinaryPrimitives.WriteUInt32BigEndian(prefix[1..], (uint)size);
                writer.Advance(5);
                // Into the pipe's own (pooled, 4 KiB) segments: one span for the whole answer would come from the
                // shared array pool, which runs dry with 100+ answers in flight and then allocates on the LOH.
                Google.Protobuf.MessageExtensions.WriteTo(answer, writer);
                var trailers = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
                if (trailers is not null) trailers.GrpcStatus = StatusTexts[0];
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException or ObjectDisposedException)
            {
                // The caller went away while the answer was written.
            }
            finally
            {
                call?.Finish();
            }
        }

        private static readonly string[] StatusTexts = Enumerable.Range(0, 17).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

        public void Dispose()
        {
            PerIpConnections?.Dispose();
            _rate?.Dispose();
        }
    }

    /// <summary>
    /// One call's token (cancelled when the caller resets or disconnects, or at its deadline, once the handler did
    /// not answer at once) and what the handler registered for disposal after the answer is written.
    /// </summary>
    private sealed class Call
    {
        private readonly CancellationTokenSource _cts = new();
        private readonly Lock _lock = new();
        private IDisposable? _one;
        private List<IDisposable>? _more;
        private bool _finished;

        public CancellationToken Token => _cts.Token;

        public void Register(IDisposable disposable)
        {
            lock (_lock)
            {
                if (!_finished)
                {
                    if (_one is null) _one = disposable;
                    else (_more ??= []).Add(disposable);
                    return;
                }
            }
            disposable.Dispose();
        }

        public void Cancel()
        {
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void CancelAt(DateTime deadline)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) Cancel();
            else if (left < TimeSpan.FromDays(30)) _cts.CancelAfter(left);
        }

        /// <summary>The answer is written (or failed): dispose what was registered.</summary>
        public void Finish()
        {
            if (End()) _cts.Dispose();
        }

        /// <summary>The call ended before its handler answered: what it registers from now on is disposed at once.</summary>
        public void Abandon() => End(); // the token stays usable: the handler may still hold it

        // Marks the call finished and disposes what was registered; false when it was finished already.
        private bool End()
        {
            IDisposable? one;
            List<IDisposable>? more;
            lock (_lock)
            {
                if (_finished) return false;
                _finished = true;
                (one, more, _one, _more) = (_one, _more, null, null);
            }
            one?.Dispose();
            if (more is not null) foreach (var d in more) d.Dispose();
            return true;
        }
    }

    /// <summary>A read-only stream over a <see cref="System.Buffers.ReadOnlySequence{T}"/> (for the rare compressed request).</summary>
    private sealed class ReadOnlySequenceStream(System.Buffers.ReadOnlySequence<byte> sequence) : Stream
    {
        private System.Buffers.ReadOnlySequence<byte> _rest = sequence;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, _rest.Length);
            System.Buffers.BuffersExtensions.CopyTo(_rest.Slice(0, n), buffer);
            _rest = _rest.Slice(n);
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
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

        private KestrelErrorListener(System.Diagnostics.Metrics.IMeterFactory factory, GrpcEndpoint gate)
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

        public static KestrelErrorListener? Start(System.Diagnostics.Metrics.IMeterFactory? factory, GrpcEndpoint gate) =>
            factory is null ? null : new KestrelErrorListener(factory, gate);

        public void Dispose() => _listener.Dispose();
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

/// <summary>The parts of gRPC's HTTP/2 mapping the Kestrel endpoint implements itself (PROTOCOL-HTTP2 in grpc/grpc).</summary>
internal static class GrpcWire
{
    /// <summary>The content type of gRPC requests and responses.</summary>
    public const string ContentType = "application/grpc";

    /// <summary>application/grpc, optionally with a +suffix (application/grpc+proto) or parameters.</summary>
    public static bool IsGrpc(string? contentType) =>
        contentType is not null && contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase)
        && (contentType.Length == ContentType.Length || contentType[ContentType.Length] is '+' or ';');

    /// <summary>
    /// The caller's deadline from <c>grpc-timeout</c> (digits and a unit: H, M, S, m, u, n); none
    /// (<see cref="DateTime.MaxValue"/>) when absent or malformed, as grpc-dotnet treats it.
    /// </summary>
    public static DateTime Deadline(string? timeout, DateTime now)
    {
        if (timeout is not { Length: >= 2 and <= 9 }) return DateTime.MaxValue;
        long amount = 0;
        for (var i = 0; i < timeout.Length - 1; i++)
        {
            var c = timeout[i];
            if (c is < '0' or > '9') return DateTime.MaxValue;
            amount = (amount * 10) + (c - '0');
        }
        var ticks = timeout[^1] switch
        {
            'H' => amount * TimeSpan.TicksPerHour,
            'M' => amount * TimeSpan.TicksPerMinute,
            'S' => amount * TimeSpan.TicksPerSecond,
            'm' => amount * TimeSpan.TicksPerMillisecond,
            'u' => amount * 10,
            'n' => amount / 100,
            _ => -1,
        };
        if (ticks < 0) return DateTime.MaxValue;
        return ticks >= DateTime.MaxValue.Ticks - now.Ticks ? DateTime.MaxValue : now.AddTicks(ticks);
    }

    /// <summary>gRPC's percent-encoding of <c>grpc-message</c>: printable ASCII except '%' as is, every other UTF-8 byte as %XX.</summary>
    public static string PercentEncode(string message)
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
}

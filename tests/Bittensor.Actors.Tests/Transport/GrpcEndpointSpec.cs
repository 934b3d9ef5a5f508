using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using Bittensor.Actors.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Actors.Tests.Transport;

/// <summary>
/// The Kestrel transport's own gRPC endpoint (it frames gRPC itself, without grpc-dotnet's server) over real HTTP/2 on
/// loopback port 0: the bytes of an answer, trailers-only refusals, what is not served, malformed and compressed
/// bodies, the grpc-timeout deadline and the handler's token, and when registered buffers are disposed. A scripted
/// service stands in for the axon (the axon behind this transport is covered by <see cref="GrpcTransportConformance"/>,
/// CheapChecksSpec and PythonPeerSpec).
/// </summary>
public sealed class GrpcEndpointSpec : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly List<IAsyncDisposable> _bindings = [];
    private readonly List<IDisposable> _clients = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var c in _clients) c.Dispose();
        foreach (var b in _bindings) await b.DisposeAsync();
    }

    /// <summary>A service whose HandleAsync runs <paramref name="handle"/>; counts calls and refusals.</summary>
    private sealed class Scripted(Func<TensorMessage, InboundCall, Task<TensorMessage>> handle) : IBittensorService
    {
        private int _calls;
        private readonly List<TransportRefusal> _refused = [];

        public int Calls => Volatile.Read(ref _calls);

        public IReadOnlyList<TransportRefusal> Refusals
        {
            get
            {
                lock (_refused) return [.. _refused];
            }
        }

        public TensorMessage? Last { get; private set; }

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            Interlocked.Increment(ref _calls);
            Last = request;
            return handle(request, call);
        }

        public void OnRefused(TransportRefusal refusal)
        {
            lock (_refused) _refused.Add(refusal);
        }
    }

    private sealed class Flag : IDisposable
    {
        private readonly TaskCompletionSource _disposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public Task Disposed => _disposed.Task;

        public void Dispose()
        {
            Interlocked.Increment(ref _count);
            _disposed.TrySetResult();
        }
    }

    private static TensorMessage Answer(int bytes = 4) =>
        new() { Version = 150, ReturnCode = ReturnCode.Success, Message = "ok", Tensors = { new Tensor { Buffer = ByteString.CopyFrom(new byte[bytes]), Shape = { bytes } } } };

    private static TensorMessage Request() =>
        new() { Version = 150, Hotkey = "caller", Tensors = { TensorCodec.ToTensor(new long[] { 1, 2, 3 }, [1, 3], Modality.Text) } };

    private async Task<(KestrelServerTransport Transport, int Port)> Serve(IBittensorService service, int maxReceive = 1024 * 1024)
    {
        var transport = new KestrelServerTransport();
        var binding = await transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, maxReceive, 1024 * 1024, 100), service, CancellationToken.None);
        _bindings.Add(binding);
        return (transport, binding.Endpoint.Port);
    }

    private HttpClient Http(int port)
    {
        var http = new HttpClient(new SocketsHttpHandler()) { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = Wait };
        _clients.Add(http);
        return http;
    }

    private static byte[] Frame(byte[] message, byte flag = 0, long? declared = null)
    {
        var frame = new byte[5 + message.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)(declared ?? message.Length));
        message.CopyTo(frame.AsSpan(5));
        return frame;
    }

    private sealed record Reply(HttpStatusCode Http, string? ContentType, string? HeaderStatus, string? TrailerStatus, string? Message, byte[] Body)
    {
        /// <summary>The gRPC status wherever it came (trailers-only: the headers).</summary>
        public string? Status => HeaderStatus ?? TrailerStatus;
    }

    private static async Task<Reply> Post(HttpClient http, string path, byte[] body, string contentType = "application/grpc",
        IEnumerable<(string Name, string Value)>? headers = null, HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Post, path)
        {
            Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (method is null || method == HttpMethod.Post)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        request.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (name, value) in headers ?? []) request.Headers.TryAddWithoutValidation(name, value);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        static string? One(HttpHeaders h, string name) => h.TryGetValues(name, out var v) ? v.FirstOrDefault() : null;
        var message = One(response.Headers, "grpc-message") ?? One(response.TrailingHeaders, "grpc-message");
        return new Reply(response.StatusCode, response.Content.Headers.ContentType?.MediaType, One(response.Headers, "grpc-status"),
            One(response.TrailingHeaders, "grpc-status"), message is null ? null : Uri.UnescapeDataString(message), bytes);
    }

    [Fact]
    public async Task An_answer_is_one_grpc_frame_with_its_status_in_the_trailers_and_registered_buffers_are_disposed_once_written()
    {
        var registered = new Flag();
        var answer = Answer(bytes: 70_000);
        var service = new Scripted((_, call) =>
        {
            call.RegisterForDispose!(registered);
            return Task.FromResult(answer);
        });
        var (transport, port) = await Serve(service);

        var reply = await Post(Http(port), "/Bittensor/Forward", Frame(Request().ToByteArray()));

        Assert.Equal(HttpStatusCode.OK, reply.Http);
        Assert.Equal("application/grpc", reply.ContentType);
        Assert.Null(reply.HeaderStatus);
        Assert.Equal("0", reply.TrailerStatus);
        Assert.Equal(0, reply.Body[0]);
        var length = (int)BinaryPrimitives.ReadUInt32BigEndian(reply.Body.AsSpan(1));
        Assert.Equal(reply.Body.Length - 5, length);
        Assert.Equal(answer, TensorMessage.Parser.ParseFrom(reply.Body.AsSpan(5)));
        Assert.Equal(Request(), service.Last);
        Assert.Equal(1, transport.BodiesParsed);
        // Disposed before the endpoint returned, i.e. before the answer could reach the client; exactly once.
        Assert.Equal(1, registered.Count);
    }

    [Fact]
    public async Task A_grpc_dotnet_client_and_the_endpoint_agree_on_answers_refusals_and_handler_failures()
    {
        var service = new Scripted((request, _) => request.Hotkey switch
        {
            "refuse" => throw new RpcException(new Status(StatusCode.Unauthenticated, "no entry for ünïcode callers")),
            "throw" => throw new InvalidOperationException("secret detail"),
            _ => Task.FromResult(Answer()),
        });
        var (_, port) = await Serve(service);
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var client = new WireClient(channel);

        var ok = await client.ForwardAsync(Request(), deadline: DateTime.UtcNow.Add(Wait));
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.BackwardAsync(new TensorMessage { Hotkey = "refuse" }));
        var failed = await Assert.ThrowsAsync<RpcException>(async () => await client.ForwardAsync(new TensorMessage { Hotkey = "throw" }));

        Assert.Equal(Answer(), ok);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Equal("no entry for ünïcode callers", refused.Status.Detail);
        Assert.Equal(StatusCode.Unknown, failed.StatusCode);
        Assert.Equal(TransportStatus.HandlerThrew, failed.Status.Detail);
    }

    [Fact]
    public async Task Methods_and_services_it_does_not_serve_are_Unimplemented_and_what_is_not_grpc_is_refused()
    {
        var service = new Scripted((_, _) => Task.FromResult(Answer()));
        var (_, port) = await Serve(service);
        var http = Http(port);
        var frame = Frame(Request().ToByteArray());

        var method = await Post(http, "/Bittensor/Other", frame);
        var other = await Post(http, "/Other/Forward", frame);
        var json = await Post(http, "/Bittensor/Forward", frame, contentType: "application/json");
        var grpcWeb = await Post(http, "/Bittensor/Forward", frame, contentType: "application/grpcfoo");
        var get = await Post(http, "/Bittensor/Forward", [], method: HttpMethod.Get);
        var notGrpc = await Post(http, "/index.html", [], contentType: "text/plain");

        Assert.Equal(("12", "Method is unimplemented."), (method.HeaderStatus, method.Message));
        Assert.Equal(("12", "Service is unimplemented."), (other.HeaderStatus, other.Message));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, json.Http);
        Assert.Equal(("13", "Content-Type 'application/json' is not supported."), (json.HeaderStatus, json.Message));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, grpcWeb.Http);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.Http);
        Assert.Equal(HttpStatusCode.NotFound, notGrpc.Http);
        Assert.Equal(0, service.Calls);
        // application/grpc+proto is gRPC.
        Assert.Equal("0", (await Post(http, "/Bittensor/Forward", frame, contentType: "application/grpc+proto")).TrailerStatus);
    }

    [Fact]
    public async Task Malformed_bodies_are_Internal_never_reach_the_service_and_the_endpoint_keeps_serving()
    {
        var service = new Scripted((_, _) => Task.FromResult(Answer()));
        var (transport, port) = await Serve(service);
        var http = Http(port);
        var message = Request().ToByteArray();

        var empty = await Post(http, "/Bittensor/Forward", []);
        var shortPrefix = await Post(http, "/Bittensor/Forward", [0, 0, 0]);
        var truncated = await Post(http, "/Bittensor/Forward", Frame(message, declared: message.Length + 10));
        var twoMessages = await Post(http, "/Bittensor/Forward", [.. Frame(message), .. Frame(message)]);
        var garbage = await Post(http, "/Bittensor/Forward", Frame([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]));
        var badFlag = await Post(http, "/Bittensor/Forward", Frame(message, flag: 2));

        Assert.Equal(("13", "Incomplete message."), (empty.HeaderStatus, empty.Message));
        Assert.Equal(("13", "Incomplete message."), (shortPrefix.HeaderStatus, shortPrefix.Message));
        Assert.Equal(("13", "Incomplete message."), (truncated.HeaderStatus, truncated.Message));
        Assert.Equal(("13", "Additional data after the message received."), (twoMessages.HeaderStatus, twoMessages.Message));
        Assert.Equal(("13", "Failed to deserialize request message."), (garbage.HeaderStatus, garbage.Message));
        Assert.Equal(("13", "Unexpected compressed flag value in message header."), (badFlag.HeaderStatus, badFlag.Message));
        Assert.Equal(0, service.Calls);
        Assert.Equal(0, transport.BodiesParsed);
        Assert.Equal("0", (await Post(http, "/Bittensor/Forward", Frame(message))).TrailerStatus);
        Assert.Equal(1, service.Calls);
    }

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true)) gzip.Write(data);
        return output.ToArray();
    }

    [Fact]
    public async Task A_gzip_request_is_inflated_within_the_limit_and_other_encodings_are_refused()
    {
        var service = new Scripted((_, _) => Task.FromResult(Answer()));
        var (_, port) = await Serve(service, maxReceive: 64 * 1024);
        var http = Http(port);
        var message = Request().ToByteArray();
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");

        // grpc-dotnet compresses a request when asked through this metadata entry (its gzip provider is on by default).
        var compressed = await new WireClient(channel).ForwardAsync(Request(), new Metadata { { "grpc-internal-encoding-request", "gzip" } });
        Assert.Equal(Request(), service.Last);
        Assert.Equal(Answer(), compressed);
        var raw = await Post(http, "/Bittensor/Forward", Frame(Gzip(message), flag: 1), headers: [("grpc-encoding", "gzip")]);
        var brotli = await Post(http, "/Bittensor/Forward", Frame(Gzip(message), flag: 1), headers: [("grpc-encoding", "br")]);
        var unnamed = await Post(http, "/Bittensor/Forward", Frame(Gzip(message), flag: 1));
        var notGzip = await Post(http, "/Bittensor/Forward", Frame(message, flag: 1), headers: [("grpc-encoding", "gzip")]);
        // 1 MiB of zeros is ~1 KiB compressed: small on the wire, over the 64 KiB limit once inflated.
        var bomb = await Post(http, "/Bittensor/Forward", Frame(Gzip(new byte[1024 * 1024]), flag: 1), headers: [("grpc-encoding", "gzip")]);

        Assert.Equal("0", raw.TrailerStatus);
        Assert.Equal(2, service.Calls);
        Assert.Equal(("12", "Unsupported grpc-encoding value 'br'. Supported encodings: identity, gzip"), (brotli.HeaderStatus, brotli.Message));
        Assert.Equal(("13", "Request did not include grpc-encoding value with compressed message."), (unnamed.HeaderStatus, unnamed.Message));
        Assert.Equal(("13", "Failed to decompress request message."), (notGzip.HeaderStatus, notGzip.Message));
        Assert.Equal(("8", TransportStatus.ReceiveTooLarge), (bomb.HeaderStatus, bomb.Message));
        Assert.Equal(2, service.Calls);
        Assert.Equal([new TransportRefusal(BittensorMethod.Forward, StatusCode.ResourceExhausted, RefusalReasons.MessageSize)], service.Refusals);
    }

    [Fact]
    public async Task A_handler_that_has_not_answered_by_the_grpc_timeout_is_cancelled_and_the_caller_gets_DeadlineExceeded()
    {
        var late = new Flag();
        var sawCancel = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var returned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var service = new Scripted(async (_, call) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, call.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                sawCancel.TrySetResult();
            }
            // Registered after the call ended: disposed at once, not leaked.
            call.RegisterForDispose!(late);
            returned.TrySetResult();
            return Answer();
        });
        var (_, port) = await Serve(service);

        // No client-side deadline: the status can only come from the server.
        var reply = await Post(Http(port), "/Bittensor/Forward", Frame(Request().ToByteArray()), headers: [("grpc-timeout", "200m")]);

        Assert.Equal(("4", TransportStatus.DeadlineExceeded), (reply.HeaderStatus, reply.Message));
        await sawCancel.Task.WaitAsync(Wait);
        await returned.Task.WaitAsync(Wait);
        await late.Disposed.WaitAsync(Wait);
        Assert.Equal(1, late.Count);
    }

    [Fact]
    public async Task A_handler_that_answers_later_than_at_once_but_within_its_deadline_is_answered_normally()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registered = new Flag();
        var service = new Scripted(async (_, call) =>
        {
            entered.TrySetResult();
            await release.Task.WaitAsync(call.CancellationToken);
            call.RegisterForDispose!(registered);
            return Answer();
        });
        var (_, port) = await Serve(service);

        var reply = Post(Http(port), "/Bittensor/Forward", Frame(Request().ToByteArray()), headers: [("grpc-timeout", "60S")]);
        await entered.Task.WaitAsync(Wait);
        release.SetResult();

        Assert.Equal("0", (await reply).TrailerStatus);
        Assert.Equal(Answer(), TensorMessage.Parser.ParseFrom((await reply).Body.AsSpan(5)));
        Assert.Equal(1, registered.Count);
    }

    [Theory]
    [InlineData("2H", 2 * TimeSpan.TicksPerHour)]
    [InlineData("3M", 3 * TimeSpan.TicksPerMinute)]
    [InlineData("10S", 10 * TimeSpan.TicksPerSecond)]
    [InlineData("250m", 250 * TimeSpan.TicksPerMillisecond)]
    [InlineData("7u", 70L)]
    [InlineData("12300n", 123L)]
    [InlineData("0m", 0L)]
    [InlineData("99999999S", 99999999 * TimeSpan.TicksPerSecond)]
    public void Grpc_timeout_values_become_a_deadline(string value, long ticks)
    {
        var now = new DateTime(2026, 12, 4, 0, 0, 0, DateTimeKind.Utc);
        Assert.Equal(now.AddTicks(ticks), GrpcWire.Deadline(value, now));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("S")]
    [InlineData("12x")]
    [InlineData("-5S")]
    [InlineData("1 S")]
    [InlineData("123456789S")]
    [InlineData("99999999H")]
    public void Absent_malformed_or_unrepresentable_grpc_timeouts_mean_no_deadline(string? value)
    {
        Assert.Equal(DateTime.MaxValue, GrpcWire.Deadline(value, new DateTime(2026, 12, 4, 0, 0, 0, DateTimeKind.Utc)));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("Application/GRPC; charset=utf-8", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/grpcx", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Grpc_content_types_are_recognised(string? contentType, bool grpc) => Assert.Equal(grpc, GrpcWire.IsGrpc(contentType));
}

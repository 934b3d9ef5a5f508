using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit.Abstractions;

namespace Bittensor.Protocol.Tests;

public sealed class WireOrderTests(ITestOutputHelper output)
{
    private const string Alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    private static RequestVerifier Verifier() => new(signatures: new FakeSignatures());

    private static async Task<(TensorMessage Reply, List<(string Name, string Value)> Headers)> CallThroughProxy(
        LoopbackServer server, Func<Uri, GrpcChannel> channelFactory)
    {
        await using var proxy = new RecordingProxy(server.Port);
        using var channel = channelFactory(new Uri($"http://127.0.0.1:{proxy.Port}"));
        var client = new Wire.Bittensor.BittensorClient(channel);
        var auth = new RequestAuth(FakeSignatures.Signer(Alice));
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = Alice };
        request.Tensors.Add(TensorCodec.ToTensor([5L, 6L, 7L, 8L, 9L, 10L], [2, 3], Modality.Text));
        var reply = await client.ForwardAsync(request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(30));
        var requests = Http2Headers.Requests(proxy.ClientBytes());
        return (reply, Assert.Single(requests));
    }

    [Fact]
    public async Task The_client_announces_a_stream_window_a_full_answer_fits_in()
    {
        // A [1, 16, 1024] float32 answer is 65.7 KB: over HTTP/2's default window of 65,535 bytes every answer would
        // wait for a WINDOW_UPDATE round trip before its last bytes.
        await using var server = await LoopbackServer.StartAsync(Verifier());
        await using var proxy = new RecordingProxy(server.Port);
        using (var channel = BittensorChannelFactory.Create(new Uri($"http://127.0.0.1:{proxy.Port}")))
        {
            var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = Alice };
            request.Tensors.Add(TensorCodec.ToTensor([5L, 6L], [1, 2], Modality.Text));
            var auth = new RequestAuth(FakeSignatures.Signer(Alice));
            await new Wire.Bittensor.BittensorClient(channel).ForwardAsync(request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(30));
        }
        var settings = Http2Headers.ClientSettings(proxy.ClientBytes());
        foreach (var (id, value) in settings) output.WriteLine($"SETTINGS 0x{id:x}: {value}");
        Assert.Contains((4, 1024u * 1024u), settings); // SETTINGS_INITIAL_WINDOW_SIZE
        Assert.Equal(1024 * 1024, BittensorChannelOptions.Default.InitialHttp2StreamWindowSize);
    }

    [Fact]
    public async Task When_kept_the_user_agent_is_moved_after_the_bittensor_headers_on_the_wire()
    {
        await using var server = await LoopbackServer.StartAsync(Verifier());
        var (reply, headers) = await CallThroughProxy(server, uri => BittensorChannelFactory.Create(uri, TestChannel.Options with { DropUserAgent = false }));
        foreach (var (name, value) in headers) output.WriteLine($"{name}: {(name == "bittensor-signature" ? value[..24] + "…" : value)}");

        Assert.Equal(ReturnCode.Success, reply.ReturnCode);
        var names = headers.Select(h => h.Name).ToList();
        Assert.Equal([":method", ":scheme", ":authority", ":path"], names.Take(4));
        Assert.Equal(["rpc-auth-header", "bittensor-signature", "bittensor-version"], names.Skip(4).Take(3));
        Assert.True(names.IndexOf("user-agent") > 6, "user-agent must come after the bittensor headers");
        Assert.DoesNotContain(headers, h => h.Value == "<huffman>");
    }

    [Fact]
    public async Task A_plain_grpc_dotnet_channel_puts_user_agent_te_and_accept_encoding_before_the_metadata()
    {
        // Why the handler exists: this is what a 2021 axon would see at positions 0..2 without it.
        await using var server = await LoopbackServer.StartAsync(Verifier());
        var (_, headers) = await CallThroughProxy(server, uri => GrpcChannel.ForAddress(uri, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler() }));
        var names = headers.Select(h => h.Name).Where(n => !n.StartsWith(':')).ToList();
        output.WriteLine(string.Join(", ", names));
        Assert.Equal(["user-agent", "te", "grpc-accept-encoding", "rpc-auth-header"], names.Take(4));
    }

    [Fact]
    public async Task By_default_the_user_agent_is_dropped_and_the_bittensor_headers_follow_the_pseudo_headers()
    {
        await using var server = await LoopbackServer.StartAsync(Verifier());
        var (reply, headers) = await CallThroughProxy(server, uri => BittensorChannelFactory.Create(uri));
        foreach (var (name, value) in headers) output.WriteLine($"{name}: {(name == "bittensor-signature" ? value[..24] + "…" : value)}");
        Assert.Equal(["rpc-auth-header", "bittensor-signature", "bittensor-version"], headers.Select(h => h.Name).Skip(4).Take(3));
        Assert.Equal(ReturnCode.Success, reply.ReturnCode);
        Assert.DoesNotContain(headers, h => h.Name == "user-agent");
    }

    [Fact]
    public async Task A_signed_forward_round_trips_tokens_to_a_float32_network_dim_tensor_over_loopback()
    {
        await using var server = await LoopbackServer.StartAsync(Verifier());
        using var channel = BittensorChannelFactory.Create("127.0.0.1", server.Port);
        var client = new Wire.Bittensor.BittensorClient(channel);
        var auth = new RequestAuth(FakeSignatures.Signer(Alice));
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = Alice };
        request.Tensors.Add(TensorCodec.ToTensor([5L, 6L, 7L, 8L, 9L, 10L], [2, 3], Modality.Text));
        var reply = await client.ForwardAsync(request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(30));

        var decoded = TensorCodec.Decode(reply.Tensors[0]);
        Assert.True(decoded.IsSuccess, decoded.Message);
        Assert.Equal([2L, 3L, 1024L], decoded.Tensor.ShapeToArray());
        var values = decoded.Tensor.ToFloat32Array();
        Assert.Equal(5f, values[0]);
        Assert.Equal(10f + 1023 / 1024f, values[^1]);

        // The same headers again are a replay: gRPC UNAUTHENTICATED with the reason.
        var replayHeaders = new Metadata();
        var fresh = await auth.CreateHeadersAsync();
        foreach (var h in fresh) replayHeaders.Add(h);
        await client.ForwardAsync(request, replayHeaders, DateTime.UtcNow.AddSeconds(30));
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.ForwardAsync(request, replayHeaders, DateTime.UtcNow.AddSeconds(30)));
        Assert.Equal(StatusCode.Unauthenticated, ex.StatusCode);
        Assert.Contains("1 ms newer", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_above_the_send_limit_fails_fast_on_the_client()
    {
        await using var server = await LoopbackServer.StartAsync(Verifier());
        using var channel = BittensorChannelFactory.Create("127.0.0.1", server.Port, TestChannel.Options with { MaxSendMessageSize = 1024 });
        var client = new Wire.Bittensor.BittensorClient(channel);
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = Alice };
        request.Tensors.Add(TensorCodec.ToTensor(new long[512], [1, 512], Modality.Text));
        var auth = new RequestAuth(FakeSignatures.Signer(Alice));
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.ForwardAsync(request, await auth.CreateHeadersAsync()));
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
    }
}

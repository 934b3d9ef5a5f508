using System.Diagnostics;
using System.Text.Json;
using Bittensor.Protocol.Wire;
using Grpc.Net.Client;
using Xunit.Abstractions;

namespace Bittensor.Protocol.Tests;

/// <summary>
/// Sends our signed headers to a Python gRPC server (Debian python3-grpcio) and records the metadata keys its
/// server interceptor sees, in order: what a Python axon's <c>invocation_metadata</c> holds.
/// </summary>
public sealed class PythonMetadataOrderTests(ITestOutputHelper output)
{
    private const string Alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    private sealed record Seen(string[] Interceptor, string[] Context, string Grpc);

    private static Task<Seen> Probe(Func<Uri, GrpcChannel> channelFactory) =>
        Probe(async (port, request, headers, deadline) =>
        {
            using var channel = channelFactory(new Uri($"http://127.0.0.1:{port}"));
            var client = new Wire.Bittensor.BittensorClient(channel);
            return await client.ForwardAsync(request, headers, deadline);
        });

    private static async Task<Seen> Probe(Func<int, TensorMessage, Grpc.Core.Metadata, DateTime, Task<TensorMessage>> forward)
    {
        var psi = new ProcessStartInfo(PythonInteropTests.Python())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(PythonInteropTests.RepoRoot(), "tests", "python", "metadata_probe_server.py"));
        using var process = Process.Start(psi)!;
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line is null || !line.StartsWith("PORT ", StringComparison.Ordinal))
                Assert.Fail($"metadata_probe_server.py did not start: {line} {await process.StandardError.ReadToEndAsync()}");
            var port = int.Parse(line![5..]);
            var auth = new RequestAuth(FakeSignatures.Signer(Alice));
            var reply = await forward(port, new TensorMessage { Version = 150, Hotkey = Alice }, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(30));
            using var doc = JsonDocument.Parse(reply.Message);
            string[] Keys(string p) => doc.RootElement.GetProperty(p).EnumerateArray().Select(e => e.GetString()!).ToArray();
            return new Seen(Keys("interceptor"), Keys("context"), doc.RootElement.GetProperty("grpc").GetString()!);
        }
        finally
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10))) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_python_grpc_server_sees_exactly_our_three_headers_in_order_with_the_default_channel()
    {
        var seen = await Probe(uri => BittensorChannelFactory.Create(uri));
        output.WriteLine($"grpcio {seen.Grpc}: interceptor sees [{string.Join(", ", seen.Interceptor)}]");
        Assert.Equal(["rpc-auth-header", "bittensor-signature", "bittensor-version"], seen.Interceptor);
        Assert.Equal(seen.Interceptor, seen.Context);
    }

    /// <summary>On both of the lean client's I/O paths: .NET's sockets and its own loop (<c>bittensor.dendrite.io</c>).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_python_grpc_server_answers_the_lean_client_and_sees_exactly_our_three_headers_in_order(bool ioLoop)
    {
        var seen = await Probe(async (port, request, headers, deadline) =>
        {
            using var connection = LeanClientTransport.Instance.Connect("127.0.0.1", port, TestChannel.Options with { ClientIoLoop = ioLoop });
            return await connection.CallAsync(BittensorMethod.Forward, request, headers, deadline, CancellationToken.None);
        });
        output.WriteLine($"grpcio {seen.Grpc}: interceptor sees [{string.Join(", ", seen.Interceptor)}]");
        Assert.Equal(["rpc-auth-header", "bittensor-signature", "bittensor-version"], seen.Interceptor);
        Assert.Equal(seen.Interceptor, seen.Context);
    }

    [Fact]
    public async Task A_current_python_grpc_core_lists_user_agent_first_even_when_it_is_sent_last()
    {
        // grpc-core since its 2021 metadata rewrite publishes known headers (user-agent) before the others,
        // whatever the wire order; the 2021 core published wire order. Moving is not enough there: drop it.
        var seen = await Probe(uri => BittensorChannelFactory.Create(uri, TestChannel.Options with { DropUserAgent = false }));
        output.WriteLine($"grpcio {seen.Grpc}: interceptor sees [{string.Join(", ", seen.Interceptor)}]");
        Assert.Equal(["user-agent", "rpc-auth-header", "bittensor-signature", "bittensor-version"], seen.Interceptor);
    }

    [Fact]
    public async Task Without_the_reordering_a_python_grpc_server_sees_user_agent_first()
    {
        var seen = await Probe(uri => GrpcChannel.ForAddress(uri, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler() }));
        output.WriteLine($"grpcio {seen.Grpc}: interceptor sees [{string.Join(", ", seen.Interceptor)}]");
        Assert.Equal("user-agent", seen.Interceptor[0]);
    }
}

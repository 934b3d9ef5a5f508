using System.Text.Json;
using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol.Tests;

/// <summary>
/// tests/python/bt2021_client.py (grpcio + protobuf + msgpack-numpy, as a 2021 peer sends) against a real
/// Kestrel server that authenticates with <see cref="RequestVerifier"/> and decodes with the codec.
/// </summary>
public sealed class PythonClientTests
{
    private const string Alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    private static JsonElement RunClient(int port, string signature, string version = "150")
    {
        var (exit, stdout, stderr) = PythonInteropTests.Run(
            Path.Combine(PythonInteropTests.RepoRoot(), "tests", "python", "bt2021_client.py"),
            "--endpoint", $"127.0.0.1:{port}", "--hotkey", Alice, "--signature", signature, "--version", version, "--tokens", "4,5,6");
        Assert.True(exit == 0, $"bt2021_client.py exited {exit}: {stderr.Trim()}");
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }

    [Fact]
    public async Task A_2021_style_python_request_is_accepted_decoded_and_answered()
    {
        await using var server = await LoopbackServer.StartAsync(new RequestVerifier(signatures: new FakeSignatures()));
        var signature = await new RequestAuth(FakeSignatures.Signer(Alice)).CreateSignatureHeaderAsync();

        var reply = RunClient(server.Port, signature);
        Assert.Equal("OK", reply.GetProperty("grpc_status").GetString());
        Assert.Equal((int)ReturnCode.Success, reply.GetProperty("code").GetInt32());
        Assert.Equal([1, 3, 1024], reply.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal("<f4", reply.GetProperty("dtype").GetString());
        Assert.Equal([4.0, 4 + 1 / 1024.0, 4 + 2 / 1024.0, 4 + 3 / 1024.0], reply.GetProperty("head").EnumerateArray().Select(e => e.GetDouble()).ToArray());
        Assert.Equal(["rpc-auth-header", "bittensor-signature", "bittensor-version"], server.State.LastHeaderNames.Where(n => n.StartsWith("rpc") || n.StartsWith("bittensor")));

        var replay = RunClient(server.Port, signature);
        Assert.Equal("UNAUTHENTICATED", replay.GetProperty("grpc_status").GetString());
        Assert.Contains("1 ms newer", replay.GetProperty("details").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_2021_style_python_request_from_an_old_version_is_refused()
    {
        await using var server = await LoopbackServer.StartAsync(new RequestVerifier(signatures: new FakeSignatures()));
        var signature = await new RequestAuth(FakeSignatures.Signer(Alice)).CreateSignatureHeaderAsync();
        var reply = RunClient(server.Port, signature, version: "120");
        Assert.Equal("UNAUTHENTICATED", reply.GetProperty("grpc_status").GetString());
        Assert.Contains("too old", reply.GetProperty("details").GetString(), StringComparison.Ordinal);
    }
}

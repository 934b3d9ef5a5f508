using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bittensor.Actors.Axon;
using Bittensor.Protocol;
using Bittensor.Neurons.Demo;

namespace Bittensor.Actors.Tests.Axon;

/// <summary>
/// A 2021-style Python client (tests/python/bt2021_client.py: grpcio + msgpack-numpy, headers by position) calls our
/// axon. Python has no sr25519 here, so the signature header is made by our RequestAuth for Alice. Needs Debian's
/// python3-grpcio, python3-protobuf and python3-msgpack-numpy; a missing module fails the test with the reason.
/// </summary>
public class PythonPeerSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    /// <summary>bittensor.axon.transport of the axon under test.</summary>
    protected virtual string Transport => "kestrel";

    private static string Script()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var path = Path.Combine(d.FullName, "tests", "python", "bt2021_client.py");
            if (File.Exists(path)) return path;
        }
        throw new InvalidOperationException("tests/python/bt2021_client.py not found above " + AppContext.BaseDirectory);
    }

    private static async Task<JsonElement> RunClient(params string[] args)
    {
        var psi = new ProcessStartInfo(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Script());
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The client's own gRPC deadline (its default 10 s, counted from before it connects) only guards a hang: on a
        // starved 2-core machine a Python process and the axon's first call on a new connection can take longer.
        psi.ArgumentList.Add("--timeout");
        psi.ArgumentList.Add("60");
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        Assert.True(process.ExitCode == 0, $"python client exit {process.ExitCode}: {await stderr}");
        return JsonDocument.Parse(await stdout).RootElement;
    }

    [Fact]
    public async Task A_2021_python_client_is_served_the_echo_representation()
    {
        var (_, port) = await StartAxon(Loopback() with { Transport = Transport }, DemoModels.Echo(1024));
        var signature = await new RequestAuth(new KeyPairRequestSigner(Alice)).CreateSignatureHeaderAsync();

        var result = await RunClient("--endpoint", $"127.0.0.1:{port}", "--hotkey", Alice.ToSs58(), "--signature", signature, "--tokens", "7,8,9");

        Assert.Equal("OK", result.GetProperty("grpc_status").GetString());
        Assert.Equal(0, result.GetProperty("code").GetInt32());
        Assert.Equal([1, 3, 1024], result.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("<f4", result.GetProperty("dtype").GetString());
        Assert.Equal((float)(7 * 1e-3), (float)result.GetProperty("head")[0].GetDouble());
        Assert.Equal((float)((7 * 1e-3) + 1e-6), (float)result.GetProperty("head")[1].GetDouble());
    }

    [Fact]
    public async Task A_2021_python_client_replaying_a_signature_is_refused_as_unauthenticated()
    {
        var (_, port) = await StartAxon(Loopback() with { Transport = Transport }, DemoModels.Echo(1024));
        var signature = await new RequestAuth(new KeyPairRequestSigner(Alice)).CreateSignatureHeaderAsync();
        string[] args = ["--endpoint", $"127.0.0.1:{port}", "--hotkey", Alice.ToSs58(), "--signature", signature];

        var first = await RunClient(args);
        var replay = await RunClient(args);

        Assert.Equal(0, first.GetProperty("code").GetInt32());
        Assert.Equal("UNAUTHENTICATED", replay.GetProperty("grpc_status").GetString());
        Assert.Contains("replay", replay.GetProperty("details").GetString(), StringComparison.Ordinal);
    }
}

/// <summary>The same 2021 Python client against the lean HTTP/2 server (bittensor.axon.transport = lean).</summary>
public sealed class LeanPythonPeerSpec(Xunit.Abstractions.ITestOutputHelper output) : PythonPeerSpec(output)
{
    protected override string Transport => "lean";
}

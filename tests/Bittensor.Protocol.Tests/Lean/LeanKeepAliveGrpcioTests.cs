using System.Diagnostics;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Xunit.Abstractions;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean client's keep-alive against a real gRPC server's ping policy: Debian's python3-grpcio serving
/// (tests/python/metadata_probe_server.py, grpcio's defaults: no pings without calls, two strikes). Pings without calls
/// (<c>keepalive_without_calls</c>), each sent once the previous one was answered (the client's timer on a driven clock),
/// are answered with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" after a few; the client's next connection then waits
/// twice as long before it pings.
/// </summary>
public sealed class LeanKeepAliveGrpcioTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static Task<TensorMessage> Call(IPeerConnection c) =>
        c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, new Metadata { { AuthHeaders.AuthName, AuthHeaders.AuthValue } },
            DateTime.UtcNow.Add(Wait), CancellationToken.None);

    private static H2ClientConnection Current(IPeerConnection c) => ((LeanPeerConnection)c).Current ?? throw new InvalidOperationException("no connection yet");

    [Fact]
    public async Task A_python_grpc_server_answers_pings_without_calls_with_too_many_pings_and_the_next_connection_pings_half_as_often()
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
            var clock = new DrivenClock();
            using var c = new LeanClientTransport(clock).Connect("127.0.0.1", port, TestChannel.Options with
            {
                KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                KeepAlivePingWithoutCalls = true,
            });
            await Call(c);
            var lean = Current(c);

            // One PING per 10 s of the client's clock; the next only after the server answered the last (its ACK) — so only
            // the server's policy can end this, with GOAWAY (or the loop runs out).
            for (var k = 1; k <= 10 && !lean.TooManyPings; k++)
            {
                clock.Advance(TimeSpan.FromSeconds(10));
                if (lean.PingsSent < k) break; // the connection closed meanwhile (its GOAWAY came)
                await lean.PingAnsweredOrGoAway(k).WaitAsync(Wait);
            }
            output.WriteLine($"pings sent {lean.PingsSent}, acknowledged {lean.PingAcks}, too_many_pings {lean.TooManyPings}");
            Assert.True(lean.TooManyPings, $"{lean.PingsSent} pings ({lean.PingAcks} acknowledged) and no GOAWAY too_many_pings");
            Assert.True(lean.PingAcks >= 1, "the first ping is within grpcio's policy and acknowledged");

            // The next call dials anew; that connection pings after 20 s, not 10 s.
            await Call(c);
            var next = Current(c);
            Assert.NotSame(lean, next);
            Assert.Equal(TimeSpan.FromSeconds(20), next.KeepAlive!.Time);
            clock.Advance(TimeSpan.FromSeconds(10));
            Assert.Equal(0, next.PingsSent);
            clock.Advance(TimeSpan.FromSeconds(10));
            Assert.Equal(1, next.PingsSent);
            await next.PingAnsweredOrGoAway(1).WaitAsync(Wait);
        }
        finally
        {
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10))) process.Kill(entireProcessTree: true);
        }
    }
}

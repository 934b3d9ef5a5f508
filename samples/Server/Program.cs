using Bittensor.Actors.Axon;
using Bittensor.Chain.Local;
using Bittensor.Neurons.Roles;
using Bittensor.Protocol.Wire;
using Bittensor.Protocol;
using Bittensor.Neurons.Demo;

namespace Bittensor.Samples.Server;

/// <summary>
/// The seed's server snippet (§3.2) in C#:
/// <code>
/// wallet = bittensor.wallet().create()
/// axon = bittensor.axon(wallet=wallet, forward_text=forward_text, backward_text=backward_text).start().serve()
/// </code>
/// Here the forward callback answers a fixed function of the tokens and the backward callback accepts the gradient.
/// </summary>
public static class ServerSample
{
    /// <summary>Command-line entry: <c>--wallet.path --wallet.name --localnet.path --seconds N</c> (default: until Ctrl-C).</summary>
    public static async Task<int> Main(string[] args)
    {
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        return await RunAsync(args, null, null, cts.Token);
    }

    /// <summary>
    /// Runs the server until <paramref name="cancellationToken"/> fires; <paramref name="shared"/> is a localnet owned by the
    /// caller (tests), <paramref name="serving"/> is told the uid once the axon is served. Returns 0.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, Localnet? shared, Action<ushort>? serving, CancellationToken cancellationToken)
    {
        var options = SampleOptions.Parse(args, "sample-server") with { Shared = shared };
        using var system = SampleHost.CreateSystem("server");
        await using var chain = SampleHost.Chain(system, options);
        var wallet = await SampleHost.WalletAsync(options, chain, cancellationToken);
        var netuid = await chain.EnsureSubnetAsync(wallet, cancellationToken);

        // The callbacks: forward maps token ids [batch, seq] to representations [batch, seq, 1024]; backward receives the
        // caller's gradient w.r.t. those representations (a real server would take an optimizer step here).
        var handlers = new AxonHandlers(
            (request, _) => Task.FromResult(ModelResponse.Ok(DemoModels.EchoForward(request.Inputs, 1024))),
            (request, _) => Task.FromResult(request.Grads.Floats is null
                ? new ModelResponse(null, ReturnCode.InvalidRequest, "no gradient")
                : ModelResponse.Ok(DenseTensor.Zeros([.. request.Inputs.Shape]))));

        await using var server = await ServerNeuron.StartAsync(system, chain.Chain, netuid, wallet,
            new ServerOptions { AxonIp = "127.0.0.2", Handlers = handlers, StatePath = options.StateFolder(netuid, "server") }, cancellationToken);
        Console.WriteLine($"serving uid {server.Uid} on subnet {netuid} at {server.Ip}:{server.Port} as {server.Hotkey}");
        serving?.Invoke(server.Uid);
        var seconds = Array.IndexOf(args, "--seconds") is var i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : -1;
        try
        {
            await Task.Delay(seconds < 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(seconds), cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
        return 0;
    }
}

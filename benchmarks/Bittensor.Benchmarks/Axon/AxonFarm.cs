using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Neurons.Demo;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// Many axons in one process, for <c>benchmarks/fanout.sh FARM=1</c> (issue 11's fan-out): <c>axon-farm --count N
/// [--network_dim 1024] [--state_path DIR] [--disable_signature_verification]</c> starts N <see cref="AxonActor"/>s
/// with the echo model on the shipped default transport and settings (those of <c>btcli axon serve --model echo</c>,
/// each with its own nonce store under DIR), prints <c>axon I serving on 127.0.0.1:PORT</c> on stderr for each, and
/// serves until SIGTERM or Ctrl-C. Why: on the network every axon runs on its own machine, so a round's server side is
/// parallel; on a 2-core test box N axon processes time-share one core and every call pays a process wake-up with cold
/// caches (fanout.sh's default), which bounds the round at N × that cost whatever the client does. One process hosting
/// the N axons runs the same per-call server code without N runtimes competing: the client's share becomes visible.
/// Both are reported; neither is the network.
/// </summary>
internal static class AxonFarm
{
    public static async Task<int> Run(string[] args)
    {
        var opts = Args.Parse(args);
        var count = int.Parse(opts.Get("count", "16"), CultureInfo.InvariantCulture);
        var dim = int.Parse(opts.Get("network_dim", "1024"), CultureInfo.InvariantCulture);
        var statePath = opts.Get("state_path", "");
        var verify = !opts.Has("disable_signature_verification");
        if (count is < 1 or > 1024)
        {
            Console.Error.WriteLine("axon-farm: --count must be between 1 and 1024");
            return 2;
        }
        if (verify && statePath.Length == 0)
        {
            Console.Error.WriteLine("axon-farm: --state_path is required with signature verification (each axon keeps a nonce store)");
            return 2;
        }
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(BittensorRuntime.ReferenceConfig);
        var system = ActorSystem.Create("axon-farm", config);
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var settings = AxonSettings.Default with
                {
                    Ip = "127.0.0.1",
                    Port = 0,
                    NetworkDim = dim,
                    DisableSignatureVerification = !verify,
                    NonceStorePath = verify ? Path.Combine(statePath, $"axon-{i}", "nonces") : AxonSettings.Default.NonceStorePath,
                };
                var axon = system.ActorOf(AxonActor.Props(settings, DemoModels.Echo(dim)), $"axon-{i}");
                var bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromSeconds(60));
                Console.Error.WriteLine($"axon {i} serving on 127.0.0.1:{bound.Endpoint.Port} ");
            }
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                // SIGTERM or Ctrl-C: stop serving.
            }
            return 0;
        }
        finally
        {
            await system.Terminate();
        }
    }
}

using Akka.Actor;
using Akka.Event;
using Bittensor.Actors;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>btcli's actor systems log to standard error: standard output carries only results (JSON included).</summary>
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class CliLoggingTests
{
    [Fact]
    public async Task An_actor_systems_log_line_goes_to_standard_error_and_never_to_standard_output()
    {
        var marker = "log-marker-" + Guid.NewGuid().ToString("N");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (oldOut, oldError) = (Console.Out, Console.Error);
        Console.SetOut(TextWriter.Synchronized(stdout));
        Console.SetError(TextWriter.Synchronized(stderr));
        var system = ActorSystem.Create("cli-logging", CliConfig.Logging.WithFallback(BittensorRuntime.ReferenceConfig));
        try
        {
            Assert.Contains(system.Settings.Loggers, l => l.StartsWith("Bittensor.Actors.Logging.StandardErrorLogger", StringComparison.Ordinal));
            system.Log.Error("an error for the test: {0}", marker);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (!stderr.ToString().Contains(marker, StringComparison.Ordinal))
                await Task.Delay(10, timeout.Token);
            Assert.Contains("[ERROR]", stderr.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(marker, stdout.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            await system.Terminate();
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }
}

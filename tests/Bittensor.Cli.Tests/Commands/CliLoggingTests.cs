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
        var stderr = new WatchingWriter(marker);
        var (oldOut, oldError) = (Console.Out, Console.Error);
        Console.SetOut(TextWriter.Synchronized(stdout));
        Console.SetError(TextWriter.Synchronized(stderr));
        var system = ActorSystem.Create("cli-logging", CliConfig.Logging.WithFallback(BittensorRuntime.ReferenceConfig));
        try
        {
            Assert.Contains(system.Settings.Loggers, l => l.StartsWith("Bittensor.Actors.Logging.StandardErrorLogger", StringComparison.Ordinal));
            system.Log.Error("an error for the test: {0}", marker);
            await stderr.Seen.WaitAsync(TimeSpan.FromSeconds(60)); // the line's write itself, bounded
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

    /// <summary>A StringWriter whose <see cref="Seen"/> completes when what was written holds <paramref name="marker"/>.</summary>
    private sealed class WatchingWriter(string marker) : StringWriter
    {
        private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Seen => _seen.Task;

        public override void Write(char value)
        {
            base.Write(value);
            Check();
        }

        public override void Write(char[] buffer, int index, int count)
        {
            base.Write(buffer, index, count);
            Check();
        }

        public override void Write(string? value)
        {
            base.Write(value);
            Check();
        }

        public override void Write(ReadOnlySpan<char> buffer)
        {
            base.Write(buffer);
            Check();
        }

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            Check();
        }

        public override void WriteLine(ReadOnlySpan<char> buffer)
        {
            base.WriteLine(buffer);
            Check();
        }

        private void Check()
        {
            if (!_seen.Task.IsCompleted && ToString().Contains(marker, StringComparison.Ordinal)) _seen.TrySetResult();
        }
    }
}

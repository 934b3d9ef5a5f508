using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Bittensor.Actors;
using Bittensor.Actors.Logging;
using Bittensor.Cli.Tests.Chain;
using Microsoft.Extensions.Logging;
using AkkaLogging = Akka.Event.Logging;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// Logging through Microsoft.Extensions.Logging (issue 13 D, docs/logging.md): Akka's events reach the process's
/// <see cref="ILoggerFactory"/> under the logging class's category, <c>bittensor.logging</c> levels filter per category,
/// a bad level is one error naming its key, and a verb that handles secrets logs none of them at Trace.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed partial class LoggingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-logging-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>One event as a provider saw it.</summary>
    private sealed record Seen(string Category, LogLevel Level, string Message, IReadOnlyDictionary<string, object?> State, string? Scope);

    /// <summary>A logger provider keeping every event; <see cref="WaitFor"/> completes when a matching one arrives.</summary>
    private sealed class RecordingProvider : ILoggerProvider, ISupportExternalScope
    {
        private readonly ConcurrentQueue<Seen> _seen = new();
        private readonly List<(Func<Seen, bool> Match, TaskCompletionSource<Seen> Done)> _waiters = [];
        private IExternalScopeProvider? _scopes;

        public IReadOnlyList<Seen> Seen => [.. _seen];

        public Task<Seen> WaitFor(Func<Seen, bool> match)
        {
            var done = new TaskCompletionSource<Seen>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_waiters)
            {
                if (_seen.FirstOrDefault(match) is { } already) return Task.FromResult(already);
                _waiters.Add((match, done));
            }
            return done.Task;
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private void Add(Seen seen)
        {
            lock (_waiters)
            {
                _seen.Enqueue(seen);
                foreach (var w in _waiters.Where(w => w.Match(seen)).ToList())
                {
                    _waiters.Remove(w);
                    w.Done.TrySetResult(seen);
                }
            }
        }

        private sealed class Logger(RecordingProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes?.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = state is IEnumerable<KeyValuePair<string, object?>> kv ? kv.ToDictionary(p => p.Key, p => p.Value) : [];
                string? scope = null;
                owner._scopes?.ForEachScope((s, _) => scope ??= s?.ToString(), (object?)null);
                owner.Add(new Seen(category, logLevel, formatter(state, exception), values, scope));
            }
        }
    }

    private sealed class Talker : ReceiveActor
    {
        public Talker()
        {
            var log = Context.GetLogger();
            Receive<string>(s => log.Info("heard {Word} from the test", s));
        }
    }

    // Category owners for the filter test (their full names are the categories).
    private static class Verbose
    {
    }

    private static class Quiet
    {
    }

    private static Config Hocon(string logging) =>
        ConfigurationFactory.ParseString(logging).WithFallback(BittensorRuntime.ReferenceConfig);

    private static (ILoggerFactory Factory, RecordingProvider Provider) Factory(Config hocon)
    {
        var settings = LoggingSettings.Create(BittensorRuntime.Section(hocon, LoggingSettings.SectionPath));
        var provider = new RecordingProvider();
        return (LoggerFactory.Create(b => BittensorLogging.AddFilters(b, settings).AddProvider(provider)), provider);
    }

    [Fact]
    public async Task Akka_log_events_reach_the_logger_factory_under_the_logging_classs_category()
    {
        var hocon = Hocon("bittensor.logging.level = Information");
        var (factory, provider) = Factory(hocon);
        using (factory)
        {
            var system = BittensorLogging.CreateSystem("logging-bridge", hocon, factory);
            try
            {
                Assert.Equal([LoggerFactoryBridge.TypeName], system.Settings.Loggers);
                var talker = system.ActorOf(Props.Create(() => new Talker()), "talker");
                talker.Tell("hello");
                var heard = await provider.WaitFor(s => s.Message.Contains("heard hello", StringComparison.Ordinal)).WaitAsync(TimeSpan.FromMinutes(1));
                Assert.Equal(typeof(Talker).FullName!.Replace('+', '.'), heard.Category);
                Assert.Equal(LogLevel.Information, heard.Level);
                Assert.Equal("heard hello from the test", heard.Message);
                Assert.Equal("hello", heard.State["Word"]);
                Assert.Equal("heard {Word} from the test", heard.State["{OriginalFormat}"]);
                Assert.Equal("akka://logging-bridge/user/talker", heard.Scope);

                // A logger named by a string logs under that name; an error keeps its exception.
                AkkaLogging.GetLogger(system, "Bittensor.Test.Named").Error(new InvalidOperationException("boom"), "named {Count}", 3);
                var named = await provider.WaitFor(s => s.Category == "Bittensor.Test.Named").WaitAsync(TimeSpan.FromMinutes(1));
                Assert.Equal(LogLevel.Error, named.Level);
                Assert.Equal("named 3", named.Message);
            }
            finally
            {
                await system.Terminate();
            }
        }
    }

    [Fact]
    public async Task Per_category_levels_filter_and_set_akkas_own_level()
    {
        var verbose = typeof(Verbose).FullName!.Replace('+', '.');
        var hocon = Hocon($"bittensor.logging {{ level = Warning, levels {{ \"{verbose}\" = Debug }} }}");
        var (factory, provider) = Factory(hocon);
        using (factory)
        {
            var system = BittensorLogging.CreateSystem("logging-levels", hocon, factory);
            try
            {
                // Akka must publish Debug for the one category that wants it.
                Assert.Equal(Akka.Event.LogLevel.DebugLevel, system.EventStream.LogLevel);
                var loud = AkkaLogging.GetLogger(system, typeof(Verbose));
                var quiet = AkkaLogging.GetLogger(system, typeof(Quiet));
                // One thread publishes in this order, and the bridge handles events in order: the barrier comes last.
                loud.Debug("verbose debug");
                quiet.Debug("quiet debug");
                quiet.Info("quiet info");
                quiet.Warning("quiet warning, the barrier");
                await provider.WaitFor(s => s.Message == "quiet warning, the barrier").WaitAsync(TimeSpan.FromMinutes(1));
                var messages = provider.Seen.Select(s => s.Message).ToList();
                Assert.Contains("verbose debug", messages);
                Assert.DoesNotContain("quiet debug", messages);
                Assert.DoesNotContain("quiet info", messages);
            }
            finally
            {
                await system.Terminate();
            }
        }
    }

    /// <summary>A provider whose logger blocks its caller on the event <c>held</c> until the gate opens; it keeps every event.</summary>
    private sealed class GatedProvider(ManualResetEventSlim gate) : ILoggerProvider
    {
        private readonly ConcurrentQueue<Seen> _seen = new();
        private readonly ManualResetEventSlim _gate = gate;

        public IReadOnlyList<Seen> Seen => [.. _seen];

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(GatedProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var message = formatter(state, exception);
                owner._seen.Enqueue(new Seen(category, logLevel, message, new Dictionary<string, object?>(), null));
                // A hang guard only: the gate opens when the system stops its loggers.
                if (message == "held") owner._gate.Wait(TimeSpan.FromMinutes(5));
            }
        }
    }

    /// <summary>Opens the gate when Akka has told its logger actors to stop (its "All default loggers stopped" event).</summary>
    private sealed class LoggersStopped(ManualResetEventSlim gate) : MinimalLogger
    {
        protected override void Log(object message)
        {
            if (message is Akka.Event.Debug d && d.Message?.ToString() == "All default loggers stopped") gate.Set();
        }
    }

    [Fact]
    public async Task Events_still_queued_for_the_bridge_when_the_system_stops_go_through_the_logger_factory_not_to_the_console()
    {
        // Akka's logger mailbox hands what a stopping logger actor has not handled yet to the system's start-up/shutdown
        // logger. On a busy machine the bridge lags, so a verb's last warnings and errors took that path and came out
        // as Akka-format "[ERROR]…" lines on the process's standard error. Here the bridge is held on one event until
        // Akka has told it to stop, so the two events behind it are left in its mailbox, as on a busy machine.
        var hocon = Hocon("bittensor.logging.level = Information");
        var settings = LoggingSettings.Create(BittensorRuntime.Section(hocon, LoggingSettings.SectionPath));
        using var gate = new ManualResetEventSlim();
        var provider = new GatedProvider(gate);
        var category = typeof(Quiet).FullName!.Replace('+', '.');
        var stderr = new StringWriter();
        var oldError = Console.Error;
        using (var factory = LoggerFactory.Create(b => BittensorLogging.AddFilters(b, settings).AddProvider(provider)))
        {
            Console.SetError(stderr);
            try
            {
                var system = BittensorLogging.CreateSystem("logging-drain", hocon, factory);
                Assert.True(Assert.IsType<StandardErrorMinimalLogger>(system.Settings.StdoutLogger).WritesToLoggerFactory);
                system.EventStream.Subscribe(new LoggersStopped(gate), typeof(Akka.Event.Debug));
                var log = AkkaLogging.GetLogger(system, typeof(Quiet));
                log.Warning("held");
                log.Error(new InvalidOperationException("late"), "queued error");
                log.Warning("queued warning");
                await system.Terminate().WaitAsync(TimeSpan.FromMinutes(5));
            }
            finally
            {
                Console.SetError(oldError);
            }
        }
        Assert.True(gate.IsSet, "the system stopped its loggers without the 'All default loggers stopped' event");
        Assert.Equal("", stderr.ToString());
        var seen = provider.Seen;
        Assert.Contains(seen, s => s.Message == "held" && s.Category == category && s.Level == LogLevel.Warning);
        var error = Assert.Single(seen, s => s.Message == "queued error");
        Assert.Equal((category, LogLevel.Error), (error.Category, error.Level));
        var warning = Assert.Single(seen, s => s.Message == "queued warning");
        Assert.Equal((category, LogLevel.Warning), (warning.Category, warning.Level));
    }

    [Fact]
    public async Task A_system_without_a_logger_factory_logs_to_the_standard_error_it_was_created_with()
    {
        // Tests swap Console.Error to capture a verb's output; an actor system made before (or after) must not write there.
        var before = new StringWriter();
        var later = new StringWriter();
        var oldError = Console.Error;
        ActorSystem system;
        Console.SetError(before);
        try
        {
            system = ActorSystem.Create("logging-stderr", ConfigurationFactory.ParseString(
                $"akka.loggers = [\"{StandardErrorLogger.TypeName}\"]\nakka.stdout-loglevel = OFF\nakka.stdout-logger-class = \"{StandardErrorMinimalLogger.TypeName}\""));
        }
        finally
        {
            Console.SetError(oldError);
        }
        try
        {
            Assert.False(Assert.IsType<StandardErrorMinimalLogger>(system.Settings.StdoutLogger).WritesToLoggerFactory);
            Console.SetError(later);
            try
            {
                // Through the logger actor, and straight to the start-up/shutdown logger (as Akka's mailbox drain does).
                AkkaLogging.GetLogger(system, typeof(Quiet)).Error("through the logger");
                system.Settings.StdoutLogger.Tell(new Akka.Event.Warning("test", typeof(Quiet), "through the minimal logger"));
                await system.Terminate().WaitAsync(TimeSpan.FromMinutes(5));
            }
            finally
            {
                Console.SetError(oldError);
            }
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromMinutes(5));
        }
        Assert.Equal("", later.ToString());
        var lines = before.ToString();
        Assert.Contains("through the logger", lines, StringComparison.Ordinal);
        Assert.Contains("through the minimal logger", lines, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bittensor.logging.level = Loud", "bittensor.logging.level = 'Loud'")]
    [InlineData("bittensor.logging.levels { \"Bittensor.Actors.Axon\" = Verbose }", "bittensor.logging.levels.\"Bittensor.Actors.Axon\" = 'Verbose'")]
    [InlineData("bittensor.logging.levels { Akka.Remote = 7 }", "bittensor.logging.levels.\"Akka.Remote\" = '7'")]
    [InlineData("bittensor.logging.levels = [Debug]", "bittensor.logging.levels")]
    [InlineData("bittensor.logging.format = xml", "bittensor.logging.format = 'xml'")]
    public void A_bad_logging_value_is_a_configuration_exception_naming_its_key(string hocon, string named)
    {
        var e = Assert.Throws<ConfigurationException>(() => LoggingSettings.Create(BittensorRuntime.Section(Hocon(hocon), LoggingSettings.SectionPath)));
        Assert.StartsWith(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_reference_levels_are_information_with_akka_and_the_web_hosts_at_warning()
    {
        var d = LoggingSettings.Default;
        Assert.Equal(LogLevel.Information, d.Level);
        Assert.Equal(LogLevel.Warning, d.Levels["Akka"]);
        Assert.Equal(LogLevel.Warning, d.Levels["Microsoft"]);
        Assert.Equal("INFO", d.AkkaLogLevel);
        Assert.Equal("simple", d.Format);
    }

    [Fact]
    public void Logging_flags_go_through_the_configuration_layers_in_both_spellings()
    {
        var file = Path.Combine(_dir, "logging.conf");
        File.WriteAllText(file, "bittensor.logging { level = Error, levels { \"Bittensor.Actors.Dendrite\" = Trace } }");
        var command = new RootCommand();
        var config = CliConfig.AddTo(command);
        var flags = CliLogging.AddFlags(command);
        var args = CliLogging.NormaliseArgs(["--config", file, "--logging.level", "debug", "--logging.levels.Bittensor.Actors.Axon", "Trace",
            "--logging.levels.Akka=Information", "--logging.levels", "Microsoft=None"]);
        var parse = command.Parse(args);
        Assert.Empty(parse.Errors);
        var settings = CliConfig.Settings(CliConfig.Load(parse, config, flags(parse)), LoggingSettings.SectionPath, LoggingSettings.Create);
        Assert.Equal(LogLevel.Debug, settings.Level); // the flag over the file
        Assert.Equal(LogLevel.Trace, settings.Levels["Bittensor.Actors.Axon"]);
        Assert.Equal(LogLevel.Trace, settings.Levels["Bittensor.Actors.Dendrite"]); // the file's
        Assert.Equal(LogLevel.Information, settings.Levels["Akka"]);
        Assert.Equal(LogLevel.None, settings.Levels["Microsoft"]);
        Assert.Equal(2 + 2, settings.Levels.Count); // the reference's Akka and Microsoft, overridden; the flags' and the file's
        Assert.Equal("DEBUG", settings.AkkaLogLevel);
    }

    [Fact]
    public async Task A_bad_logging_flag_is_one_error_line_naming_the_key_and_exit_code_1()
    {
        var (code, _, err) = await CliHarness.RunAsync("axon", "serve", "--uri", "//Bob", "--axon.ip", "127.0.0.1", "--axon.port", "0",
            "--axon.state_path", Path.Combine(_dir, "state"), "--logging.levels.Bittensor.Actors.Axon", "Chatty");
        Assert.Equal(1, code);
        Assert.Equal("error: bittensor.logging.levels.\"Bittensor.Actors.Axon\" = 'Chatty': not a log level; use one of Trace, Debug, Information, Warning, Error, Critical, None",
            err.Trim());
        (code, _, err) = await CliHarness.RunAsync("axon", "serve", "--uri", "//Bob", "--logging.levels", "NoLevel");
        Assert.Equal(1, code);
        Assert.StartsWith("error: --logging.levels 'NoLevel': expected CATEGORY=LEVEL", err.Trim(), StringComparison.Ordinal);
    }

    // ---- secrets -----------------------------------------------------------------------------------------------

    private static string BtcliDll => typeof(LoggingTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "BtcliDll").Value!;

    [GeneratedRegex(@"serving on [^ ]*:(\d+) ")]
    private static partial Regex ServingLine();

    private static Process Start(StringBuilder output, Action<string>? onLine, params string[] args)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var psi = new ProcessStartInfo(Shipped.CliProcess.Dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(BtcliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            onLine?.Invoke(line);
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    [Theory]
    [InlineData("lean")] // the default transport
    [InlineData("kestrel")]
    public async Task Serving_and_querying_with_secret_keys_at_trace_logs_no_secret(string transport)
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(4)); // a hang guard, not a timing assertion
        using var fixture = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Fixtures", "wallet-mnemonics.json"), guard.Token));
        var serverPhrase = fixture.RootElement[0].GetProperty("mnemonic").GetString()!;
        var callerPhrase = fixture.RootElement[1].GetProperty("mnemonic").GetString()!;
        var secrets = new List<string> { serverPhrase, callerPhrase, "//logged-secret-path" };
        foreach (var i in new[] { 0, 1 }) secrets.Add(fixture.RootElement[i].GetProperty("mini_secret").GetString()!);

        // The caller's hotkey is a wallet file restored from its mnemonic; its secret fields are secrets too.
        var wallets = Path.Combine(_dir, "wallets");
        var regen = await CliHarness.RunAsync("wallet", "regen_hotkey", "--mnemonic", callerPhrase, "--wallet.path", wallets, "--wallet.name", "caller",
            "--wallet.hotkey", "hot");
        Assert.True(regen.Code == 0, regen.Err);
        using (var keyfile = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(wallets, "caller", "hotkeys", "hot"), guard.Token)))
            foreach (var field in new[] { "privateKey", "secretSeed", "secretPhrase" })
                secrets.Add(keyfile.RootElement.GetProperty(field).GetString()!);

        string[] trace = ["--logging.level", "Trace", "--logging.levels.Akka", "Trace", "--logging.levels.Microsoft", "Trace"];
        var serverOutput = new StringBuilder();
        var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var callLogged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var server = Start(serverOutput, line =>
            {
                if (ServingLine().Match(line) is { Success: true } m) port.TrySetResult(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                if (line.Contains("Bittensor.Actors.Axon.Requests", StringComparison.Ordinal)) callLogged.TrySetResult();
            },
            ["axon", "serve", "--uri", serverPhrase + "//logged-secret-path", "--axon.ip", "127.0.0.1", "--axon.port", "0",
                "--axon.state_path", Path.Combine(_dir, "state"), "--axon.transport", transport, .. trace]);
        var queryOutput = new StringBuilder();
        try
        {
            var exited = server.WaitForExitAsync(guard.Token);
            if (await Task.WhenAny(port.Task, exited) != port.Task)
                Assert.Fail($"btcli axon serve exited with {server.ExitCode} before serving: {serverOutput}");
            using var query = Start(queryOutput, null, ["query", "--endpoint", $"127.0.0.1:{await port.Task}", "--text", "hello world",
                "--wallet.path", wallets, "--wallet.name", "caller", "--wallet.hotkey", "hot", .. trace]);
            await query.WaitForExitAsync(guard.Token);
            Assert.True(query.ExitCode == 0, $"btcli query exited with {query.ExitCode}: {queryOutput}");
            // The per-call Debug line is the last thing the server logs about the call: wait for it, then stop it.
            await callLogged.Task.WaitAsync(guard.Token);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync(CancellationToken.None);
            }
        }

        var logs = serverOutput + "\n" + queryOutput;
        // Trace was on: Akka's debug events, Kestrel's (when it serves) and the axon's per-call line are there.
        Assert.Contains("dbug: Akka.", serverOutput.ToString(), StringComparison.Ordinal);
        Assert.Contains("dbug: Akka.", queryOutput.ToString(), StringComparison.Ordinal);
        if (transport == "kestrel") Assert.Contains("Microsoft.AspNetCore.Server.Kestrel", serverOutput.ToString(), StringComparison.Ordinal);
        else Assert.DoesNotContain("Microsoft.AspNetCore.Server.Kestrel", serverOutput.ToString(), StringComparison.Ordinal);
        Assert.Matches(@"dbug: Bittensor\.Actors\.Axon\.Requests\[1\] .*Forward from 5\w+: Success", serverOutput.ToString());
        foreach (var secret in secrets.Where(s => s.Length > 0))
        {
            var bare = secret.StartsWith("0x", StringComparison.Ordinal) ? secret[2..] : secret;
            Assert.False(logs.Contains(bare, StringComparison.OrdinalIgnoreCase), $"a secret ({bare[..6]}…) is in the output");
            var b64 = Convert.ToBase64String(bare.All(Uri.IsHexDigit) && bare.Length % 2 == 0 ? Convert.FromHexString(bare) : Encoding.UTF8.GetBytes(bare));
            Assert.DoesNotContain(b64, logs, StringComparison.Ordinal);
        }
        // No three consecutive words of either phrase (a phrase cut or re-spaced is still a leak).
        foreach (var phrase in new[] { serverPhrase, callerPhrase })
        {
            var words = phrase.Split(' ');
            for (var i = 0; i + 3 <= words.Length; i++)
                Assert.DoesNotMatch(string.Join(@"\W+", words[i..(i + 3)]), logs);
        }
    }
}

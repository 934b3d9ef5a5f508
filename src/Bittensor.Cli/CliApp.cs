using System.CommandLine;
using System.Text.Json;

namespace Bittensor.Cli;

/// <summary>
/// Shared command-line plumbing: common options, one readable error line and a non-zero exit code on failure.
/// </summary>
internal static class CliApp
{
    /// <summary>Exit code for a user error (bad input, missing file, wrong password, chain refusal).</summary>
    public const int UserError = 1;

    /// <summary>Exit code for an unexpected internal failure.</summary>
    public const int InternalError = 2;

    /// <summary><c>--json</c>: machine-readable output on read verbs.</summary>
    public static readonly Option<bool> Json = new("--json") { Description = "Print JSON instead of tables", Recursive = true };

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static void AddCommonOptions(RootCommand root) => root.Options.Add(Json);

    /// <summary>
    /// Environment variable: when <c>1</c>, btcli stops as on Ctrl-C once its standard input reaches end of file, and
    /// exits after <see cref="StdinGrace"/> if it has not by then. A parent that runs btcli as a child (<c>btcli demo
    /// --processes</c>) keeps that pipe open, so the child cannot outlive it, even when the parent is killed with kill -9
    /// (the kernel closes the pipe) — and closing the pipe is the parent's way to stop it cleanly.
    /// </summary>
    public const string ExitWithStdinVariable = "BITTENSOR_EXIT_WITH_STDIN";

    /// <summary>How long a child whose standard input closed may take to stop before it exits regardless.</summary>
    public static readonly TimeSpan StdinGrace = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Exit code when even the error line could not be written: standard output and error both fail (redirected to a
    /// file on a full disk or over the file-size limit, a closed pipe). sysexits' EX_IOERR.
    /// </summary>
    public const int OutputError = 74;

    /// <summary>
    /// Parses and runs; converts <see cref="CliException"/> and any other failure into one line on stderr. Ctrl-C and
    /// SIGTERM cancel the verb, which stops within its own bounds; a second one ends the process at once
    /// (<see cref="Termination"/>).
    /// </summary>
    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
        try
        {
            using var signals = Termination.Register(Console.Error);
            using var stop = Environment.GetEnvironmentVariable(ExitWithStdinVariable) == "1"
                ? CancellationTokenSource.CreateLinkedTokenSource(signals.Token, StdinClosed())
                : CancellationTokenSource.CreateLinkedTokenSource(signals.Token);
            return await RunAsync(root, args, Console.Out, Console.Error, stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ArgumentOutOfRangeException or ObjectDisposedException)
        {
            // Only a failed write of the error line itself gets here (.NET reports EFBIG as ArgumentOutOfRangeException):
            // nothing can be told, but the exit code says so — rather than the runtime's abort on an unhandled exception.
            return OutputError;
        }
    }

    /// <summary>Cancelled when standard input reaches end of file (the parent closed it or died); then a hard exit after <see cref="StdinGrace"/>.</summary>
    private static CancellationToken StdinClosed()
    {
        var closed = new CancellationTokenSource();
        var reader = new Thread(() =>
        {
            try
            {
                using var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                while (stdin.Read(buffer, 0, buffer.Length) > 0)
                {
                    // Whatever the parent writes is ignored; only the end of the pipe matters.
                }
            }
            catch (IOException)
            {
            }
            closed.Cancel();
            Thread.Sleep(StdinGrace); // a backstop, not a wait for an event: a child that cannot stop must still go
            Environment.Exit(130);
        })
        { IsBackground = true, Name = "stdin-watch" };
        reader.Start();
        return closed.Token;
    }

    /// <summary>
    /// Parses and runs with the given writers (tests run the command tree in-process this way). Commands write to
    /// <c>parseResult.InvocationConfiguration.Output</c>; failures become one line on <paramref name="error"/>.
    /// </summary>
    public static async Task<int> RunAsync(RootCommand root, string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var parse = Parse(root, args);
        // Our own handler below turns exceptions into one line; the library's default would print a stack trace.
        // No ProcessTerminationTimeout: the library's signal handling would end the process 2 s after Ctrl-C / SIGTERM,
        // cutting a worker's drain short, and ignore a second signal. The process's signals are ours (Termination), and
        // in-process callers (tests) pass their own token.
        var invocation = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
        try
        {
            return await parse.InvokeAsync(invocation, cancellationToken).ConfigureAwait(false);
        }
        catch (CliException e)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return e.ExitCode;
        }
        catch (Akka.Configuration.ConfigurationException e)
        {
            // A settings record refused a value: the message names the HOCON key.
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return UserError;
        }
        catch (Bittensor.Chain.ChainNotSupportedException e)
        {
            // The connected runtime's semantics differ from what the client implements: say what, never a guess.
            await error.WriteLineAsync($"error: not supported: {e.Message}").ConfigureAwait(false);
            return UserError;
        }
        catch (Bittensor.Chain.ChainUnavailableException e)
        {
            await error.WriteLineAsync($"error: the chain is unavailable: {e.Message}").ConfigureAwait(false);
            return UserError;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("error: cancelled").ConfigureAwait(false);
            return 130;
        }
        catch (Exception e)
        {
            // Never a stack trace for the user; the type and message are enough to report a bug.
            await error.WriteLineAsync($"error: {e.GetType().Name}: {e.Message}").ConfigureAwait(false);
            return InternalError;
        }
    }

    /// <summary>
    /// How btcli parses: without response files. System.CommandLine's default reads any argument starting with <c>@</c>
    /// as a file of further arguments: <c>btcli @.</c> crashed reading a folder (UnauthorizedAccessException out of the
    /// parser, exit 134; found by AFL++), and a value such as <c>--message @hello</c> would have been replaced by a file.
    /// </summary>
    internal static readonly ParserConfiguration Parsing = new() { ResponseFileTokenReplacer = null };

    /// <summary>Parses <paramref name="args"/> as btcli does (legacy verbs, logging flags, no response files).</summary>
    internal static ParseResult Parse(RootCommand root, string[] args) =>
        root.Parse(CliLogging.NormaliseArgs(NormaliseLegacyVerbs(args)), Parsing);

    /// <summary>The 2021 flat verb names (<c>btcli new_coldkey</c>) map onto today's groups (<c>btcli wallet new_coldkey</c>).</summary>
    internal static string[] NormaliseLegacyVerbs(string[] args)
    {
        if (args.Length == 0) return args;
        return args[0] switch
        {
            "new_coldkey" or "new_hotkey" or "regen_coldkey" or "regen_hotkey" or "regen_coldkeypub"
                or "list" or "inspect" => ["wallet", .. args],
            _ => args,
        };
    }

    /// <summary>Writes an object as indented JSON to stdout.</summary>
    public static void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));
}

/// <summary>A failure to report to the user as one line, with an exit code.</summary>
internal sealed class CliException(string message, int exitCode = CliApp.UserError) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

namespace Bittensor.Cli;

/// <summary>
/// btcli runs socket completions inline: the thread that polls the sockets (epoll) runs what a completed receive or send
/// continues with, instead of queueing it to the thread pool. Set before the process opens its first socket (the runtime
/// reads the variable once); a value the user set wins (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0</c> turns it
/// off). Why and what it costs: docs/axon.md, "Socket completions inline".
/// </summary>
internal static class SocketCompletions
{
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Turns inline completions on unless the environment already says either way.</summary>
    public static void InlineUnlessSet()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable))) Environment.SetEnvironmentVariable(Variable, "1");
    }

    /// <summary>True when this process runs socket completions inline (what the runtime reads).</summary>
    public static bool Inline => Environment.GetEnvironmentVariable(Variable) == "1";

    /// <summary>The words the axon's "serving on" line carries: transport, and how socket completions run.</summary>
    public static string Describe(string transport) => $"h2c, {transport}, socket completions {(Inline ? "inline" : "on the thread pool")}";
}

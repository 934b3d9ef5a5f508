using System.CommandLine;

namespace Bittensor.Cli.Commands;

/// <summary>
/// The dendrite's connection flags: keep-alive (<c>bittensor.dendrite.keepalive_*</c>; docs/axon.md, "Keep-alive pings")
/// and how the lean client's connections wait (<c>bittensor.dendrite.io</c>; docs/axon.md, "The client's own I/O loop") and
/// where the dendrite's actors run (<c>bittensor.dendrite.dispatcher</c>).
/// </summary>
internal sealed class DendriteKeepAliveFlags
{
    private readonly Option<string?> _time = new("--dendrite.keepalive_time")
    {
        Description = "PING an axon once nothing came from it for this long while a call is open (a HOCON duration, e.g. 20s; 0s = no pings, else at least 10s; default 20s)",
    };
    private readonly Option<string?> _timeout = new("--dendrite.keepalive_timeout")
    {
        Description = "Close the connection when a PING is not answered within this (a HOCON duration, 1s to 1h; default 5s)",
    };
    private readonly Option<bool?> _withoutCalls = new("--dendrite.keepalive_without_calls")
    {
        Description = "Also PING idle connections (no call open); gRPC servers may answer too_many_pings (default false)",
    };

    private readonly Option<string?> _io = new("--dendrite.io")
    {
        Description = "How the lean client's connections wait: loop (its own epoll thread, Linux x86-64), batch (the loop, a round's requests sent by its thread in one pass) or sockets (.NET's socket engine) (bittensor.dendrite.io)",
    };

    private readonly Option<string?> _dispatcher = new("--dendrite.dispatcher")
    {
        Description = "Where the dendrite's actors run: loop (on the client I/O loop's thread, with --dendrite.io loop or batch) or pool (Akka's default dispatcher) (bittensor.dendrite.dispatcher)",
    };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { _time, _timeout, _withoutCalls, _io, _dispatcher }) command.Options.Add(o);
    }

    /// <summary>The flags given, as dotted HOCON keys for <see cref="CliConfig.Load"/>.</summary>
    public IEnumerable<(string Key, object? Value)> Values(ParseResult parse) =>
    [
        ("bittensor.dendrite.keepalive_time", parse.GetValue(_time)),
        ("bittensor.dendrite.keepalive_timeout", parse.GetValue(_timeout)),
        ("bittensor.dendrite.keepalive_without_calls", parse.GetValue(_withoutCalls)),
        ("bittensor.dendrite.io", parse.GetValue(_io)),
        ("bittensor.dendrite.dispatcher", parse.GetValue(_dispatcher)),
    ];
}

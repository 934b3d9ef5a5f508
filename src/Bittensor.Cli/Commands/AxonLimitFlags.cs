using System.CommandLine;

namespace Bittensor.Cli.Commands;

/// <summary>
/// The <c>--axon.transport</c>, <c>--axon.loopback_congestion_control</c> and <c>--axon.limits.*</c> flags (HOCON <c>bittensor.axon</c>, see hocon/bittensor.conf) shared by every verb
/// that serves an axon; unset flags leave the file's or the reference value.
/// </summary>
internal sealed class AxonLimitFlags
{
    private readonly Option<string?> _transport = new("--axon.transport")
    {
        Description = "Server transport: lean (the project's own HTTP/2 server, default) or kestrel (ASP.NET Core Kestrel; docs/axon.md)",
    };
    private readonly Option<string?> _loopbackCongestion = new("--axon.loopback_congestion_control")
    {
        Description = "TCP congestion control of the lean axon's connections from loopback peers (default reno: no per-connection pacing timers; \"\" = the system's, e.g. bbr; docs/axon.md)",
    };
    private readonly Option<int?> _forward = new("--axon.limits.forward_message_size") { Description = "Largest Forward request in bytes (default 1 MiB)" };
    private readonly Option<int?> _headers = new("--axon.limits.request_headers_size") { Description = "Largest total size of a request's headers in bytes (default 8192)" };
    private readonly Option<int?> _streams = new("--axon.limits.streams_per_connection") { Description = "Concurrent calls per connection (0 = automatic)" };
    private readonly Option<int?> _inFlight = new("--axon.limits.calls_in_flight")
    {
        Description = "Calls held at once (received, not yet answered); one more is answered NucleusFull from its headers (0 = no limit; default 64)",
    };
    private readonly Option<string?> _targetWait = new("--axon.limits.target_wait")
    {
        Description = "Admission by waiting (lean transport): once calls waited longer than this before the axon read them for an interval, such calls are answered NucleusFull from their headers (a HOCON duration; default 2ms; 0 = off: the queue then grows with the callers)",
    };
    private readonly Option<string?> _targetWaitInterval = new("--axon.limits.target_wait_interval")
    {
        Description = "How long the waits must stay above (below) target_wait to start (stop) shedding (a HOCON duration, 1ms..1m; default 100ms)",
    };
    private readonly Option<int?> _admitPerRead = new("--axon.limits.admit_per_read")
    {
        Description = "While target_wait's rule is engaged, calls each read of a connection admits; the rest of that read are answered NucleusFull at once (0..4096; 0 = shed each call whose own wait is over target_wait; default 12)",
    };
    private readonly Option<int?> _connections = new("--axon.limits.connections") { Description = "Open connections at once (0 = no limit; default 4096)" };
    private readonly Option<string?> _idle = new("--axon.limits.idle_timeout")
    {
        Description = "Close a connection with no open call that received nothing for this long (a HOCON duration, e.g. 130s; 0 = never; default 130s)",
    };
    private readonly Option<double?> _bodyRate = new("--axon.limits.min_request_body_rate.bytes_per_second")
    {
        Description = "A request body slower than this after its grace period is answered DEADLINE_EXCEEDED (0 = no minimum; default 240)",
    };
    private readonly Option<string?> _bodyGrace = new("--axon.limits.min_request_body_rate.grace_period")
    {
        Description = "How long a request body may arrive below its minimum rate first (a HOCON duration over 1s; default 5s)",
    };
    private readonly Option<double?> _responseRate = new("--axon.limits.min_response_rate.bytes_per_second")
    {
        Description = "An answer the caller takes slower than this after its grace period is reset, or its connection closed (0 = no minimum; default 240)",
    };
    private readonly Option<string?> _responseGrace = new("--axon.limits.min_response_rate.grace_period")
    {
        Description = "How long an answer may leave below its minimum rate first (a HOCON duration over 1s; default 5s)",
    };
    private readonly Option<int?> _perIpConnections = new("--axon.limits.per_ip.connections") { Description = "Open connections at once per caller address (0 = no limit; default 16)" };
    private readonly Option<double?> _perIpRate = new("--axon.limits.per_ip.requests_per_second") { Description = "Sustained calls per second per caller address (0 = no limit; default 500)" };
    private readonly Option<int?> _perIpBurst = new("--axon.limits.per_ip.burst") { Description = "Calls a caller address may make at once above its rate (default 1000)" };
    private readonly Option<bool?> _exemptLoopback = new("--axon.limits.per_ip.exempt_loopback") { Description = "Loopback callers are not limited per address (default true)" };

    private readonly Option<bool?> _warmUp = new("--axon.warm_up")
    {
        Description = "Before the axon reports itself serving (and announces itself on chain), make two signed calls to its own listener with a throwaway key, " +
            "so the first real caller does not pay the serving path's first use; not counted, never reaches the model (default true; docs/axon.md \"Warm-up\")",
    };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { _transport, _loopbackCongestion, _forward, _headers, _streams, _inFlight, _targetWait, _targetWaitInterval, _admitPerRead, _connections, _idle, _bodyRate, _bodyGrace, _responseRate, _responseGrace, _perIpConnections, _perIpRate, _perIpBurst, _exemptLoopback, _warmUp })
            command.Options.Add(o);
    }

    /// <summary>The flags given, as dotted HOCON keys for <see cref="CliConfig.Load"/>.</summary>
    public IEnumerable<(string Key, object? Value)> Values(ParseResult parse) =>
    [
        ("bittensor.axon.transport", parse.GetValue(_transport)),
        ("bittensor.axon.loopback_congestion_control", parse.GetValue(_loopbackCongestion)),
        ("bittensor.axon.limits.forward_message_size", parse.GetValue(_forward)),
        ("bittensor.axon.limits.request_headers_size", parse.GetValue(_headers)),
        ("bittensor.axon.limits.streams_per_connection", parse.GetValue(_streams)),
        ("bittensor.axon.limits.calls_in_flight", parse.GetValue(_inFlight)),
        ("bittensor.axon.limits.target_wait", parse.GetValue(_targetWait)),
        ("bittensor.axon.limits.target_wait_interval", parse.GetValue(_targetWaitInterval)),
        ("bittensor.axon.limits.admit_per_read", parse.GetValue(_admitPerRead)),
        ("bittensor.axon.limits.connections", parse.GetValue(_connections)),
        ("bittensor.axon.limits.idle_timeout", parse.GetValue(_idle)),
        ("bittensor.axon.limits.min_request_body_rate.bytes_per_second", parse.GetValue(_bodyRate)),
        ("bittensor.axon.limits.min_request_body_rate.grace_period", parse.GetValue(_bodyGrace)),
        ("bittensor.axon.limits.min_response_rate.bytes_per_second", parse.GetValue(_responseRate)),
        ("bittensor.axon.limits.min_response_rate.grace_period", parse.GetValue(_responseGrace)),
        ("bittensor.axon.limits.per_ip.connections", parse.GetValue(_perIpConnections)),
        ("bittensor.axon.limits.per_ip.requests_per_second", parse.GetValue(_perIpRate)),
        ("bittensor.axon.limits.per_ip.burst", parse.GetValue(_perIpBurst)),
        ("bittensor.axon.limits.per_ip.exempt_loopback", parse.GetValue(_exemptLoopback)),
        ("bittensor.axon.warm_up", parse.GetValue(_warmUp)),
    ];
}

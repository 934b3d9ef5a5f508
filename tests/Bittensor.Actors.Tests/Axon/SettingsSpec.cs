using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;

namespace Bittensor.Actors.Tests.Axon;

public sealed class SettingsSpec
{
    private static Config With(string hocon, string path) => BittensorRuntime.Section(ConfigurationFactory.ParseString(hocon), path);

    [Fact]
    public void The_reference_config_gives_the_documented_axon_defaults()
    {
        var s = AxonSettings.Default;

        Assert.Equal(("0.0.0.0", 8091, 10, 256, 1024), (s.Ip, s.Port, s.MaxWorkers, s.QueueCapacity, s.NetworkDim));
        Assert.Equal(TimeSpan.FromSeconds(12), s.CallTimeout);
        Assert.False(s.DisableSignatureVerification);
        Assert.Equal(150, s.ProtocolVersion);
        Assert.Equal((1000.0, TimeSpan.FromSeconds(1)), (s.NewCallerVerifiesPerSecond, s.FailedSignatureHold));
        Assert.Equal(TimeSpan.FromSeconds(130), s.IdleTimeout);
        Assert.Equal(s.IdleTimeout, s.TransportLimits.IdleTimeout);
        // The minimum data rates: Kestrel's defaults, handed to the transport as they are.
        Assert.Equal((240.0, TimeSpan.FromSeconds(5), 240.0, TimeSpan.FromSeconds(5)),
            (s.MinRequestBodyRate, s.MinRequestBodyGrace, s.MinResponseRate, s.MinResponseGrace));
        Assert.Equal((s.MinRequestBodyRate, s.MinRequestBodyGrace, s.MinResponseRate, s.MinResponseGrace),
            (s.TransportLimits.MinRequestBodyRate, s.TransportLimits.MinRequestBodyGrace, s.TransportLimits.MinResponseRate, s.TransportLimits.MinResponseGrace));
        var off = AxonSettings.Create(With("bittensor.axon.limits { min_request_body_rate.bytes_per_second = 0, min_response_rate.bytes_per_second = 0 }",
            AxonSettings.SectionPath));
        Assert.Equal((0.0, 0.0), (off.TransportLimits.MinRequestBodyRate, off.TransportLimits.MinResponseRate));
        Assert.Equal((1024 * 1024, 8192, 4096, 16, 500.0, 1000, true),
            (s.ForwardMessageSize, s.RequestHeadersSize, s.MaxConnections, s.PerIpConnections, s.PerIpRequestsPerSecond, s.PerIpBurst, s.PerIpExemptLoopback));
        Assert.Equal(Math.Max(100, s.QueueCapacity + s.MaxWorkers + 16), s.EffectiveStreamsPerConnection);
        Assert.Equal(64, s.CallsInFlight);
        Assert.Equal(0, AxonSettings.Create(With("bittensor.axon.limits.calls_in_flight = 0", AxonSettings.SectionPath)).CallsInFlight);
        // Loopback connections without the kernel's pacing timers; "" keeps the system's congestion control.
        Assert.Equal("reno", s.LoopbackCongestionControl);
        Assert.Equal("", AxonSettings.Create(With("bittensor.axon.loopback_congestion_control = \"\"", AxonSettings.SectionPath)).LoopbackCongestionControl);
        Assert.Equal("cubic", AxonSettings.Create(With("bittensor.axon.loopback_congestion_control = cubic", AxonSettings.SectionPath)).LoopbackCongestionControl);
        Assert.Equal((TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(100)), (s.TargetWait, s.TargetWaitInterval)); // on by default (session 18)
        Assert.Equal(TimeSpan.Zero, AxonSettings.Create(With("bittensor.axon.limits.target_wait = 0", AxonSettings.SectionPath)).TargetWait);
        Assert.Equal(TimeSpan.FromMilliseconds(5), AxonSettings.Create(With("bittensor.axon.limits.target_wait = 5ms", AxonSettings.SectionPath)).TargetWait);
        Assert.Equal(12, s.AdmitPerRead); // the at-read budget of the wait rule
        Assert.Equal(0, AxonSettings.Create(With("bittensor.axon.limits.admit_per_read = 0", AxonSettings.SectionPath)).AdmitPerRead);
        // The warm-up before the axon reports itself bound: on by default, bounded by warm_up_timeout.
        Assert.Equal((true, TimeSpan.FromSeconds(10)), (s.WarmUp, s.WarmUpTimeout));
        Assert.False(AxonSettings.Create(With("bittensor.axon.warm_up = off", AxonSettings.SectionPath)).WarmUp);
        Assert.Equal(TimeSpan.FromSeconds(2), AxonSettings.Create(With("bittensor.axon.warm_up_timeout = 2s", AxonSettings.SectionPath)).WarmUpTimeout);
    }

    [Fact]
    public void The_reference_config_gives_the_documented_dendrite_defaults()
    {
        var s = DendriteSettings.Default;

        Assert.Equal(4 * 1024 * 1024, s.PeerMaxMessageSize);
        Assert.Equal(TimeSpan.FromMilliseconds(200), s.BackoffMin);
        Assert.Equal(TimeSpan.FromSeconds(60), s.BackoffMax);
        Assert.Equal(1024, s.NetworkDim);
    }

    [Theory]
    [InlineData("bittensor.axon.ip = \"not-an-ip\"", "bittensor.axon.ip")]
    [InlineData("bittensor.axon.port = 70000", "bittensor.axon.port")]
    [InlineData("bittensor.axon.max_workers = 0", "max_workers")]
    [InlineData("bittensor.axon.auth.max_age = 20m", "bittensor.axon.auth.max_age")]
    [InlineData("bittensor.axon.auth.reorder_window = 2m", "bittensor.axon.auth.reorder_window")]
    [InlineData("bittensor.axon.auth.reorder_window = -1s", "bittensor.axon.auth.reorder_window")]
    [InlineData("bittensor.axon.blacklist.min_stake = -1", "bittensor.axon.blacklist.min_stake")]
    [InlineData("bittensor.axon.port = eighty", "bittensor.axon.port")]
    [InlineData("bittensor.axon.trace = maybe", "bittensor.axon.trace")]
    [InlineData("bittensor.axon.transport = tcp", "bittensor.axon.transport")]
    [InlineData("bittensor.axon.warm_up = maybe", "bittensor.axon.warm_up")]
    [InlineData("bittensor.axon.warm_up_timeout = 0", "bittensor.axon.warm_up_timeout")]
    [InlineData("bittensor.axon.warm_up_timeout = 10m", "bittensor.axon.warm_up_timeout")]
    [InlineData("bittensor.axon.loopback_congestion_control = \"BBR\"", "bittensor.axon.loopback_congestion_control")]
    [InlineData("bittensor.axon.loopback_congestion_control = \"a_name_too_long_x\"", "bittensor.axon.loopback_congestion_control")]
    [InlineData("bittensor.axon.limits.forward_message_size = 10", "bittensor.axon.limits.forward_message_size")]
    [InlineData("bittensor.axon.limits.request_headers_size = 100", "bittensor.axon.limits.request_headers_size")]
    [InlineData("bittensor.axon.limits.connections = -1", "bittensor.axon.limits.connections")]
    [InlineData("bittensor.axon.limits.calls_in_flight = -1", "bittensor.axon.limits.calls_in_flight")]
    [InlineData("bittensor.axon.limits.target_wait = 20s", "bittensor.axon.limits.target_wait")]
    [InlineData("bittensor.axon.limits.target_wait = soon", "bittensor.axon.limits.target_wait")]
    [InlineData("bittensor.axon.limits.target_wait_interval = 0", "bittensor.axon.limits.target_wait_interval")]
    [InlineData("bittensor.axon.limits.admit_per_read = -1", "bittensor.axon.limits.admit_per_read")]
    [InlineData("bittensor.axon.limits.admit_per_read = 4097", "bittensor.axon.limits.admit_per_read")]
    [InlineData("bittensor.axon.limits.per_ip.connections = -1", "bittensor.axon.limits.per_ip.connections")]
    [InlineData("bittensor.axon.limits.per_ip.requests_per_second = -5", "bittensor.axon.limits.per_ip.requests_per_second")]
    [InlineData("bittensor.axon.limits.per_ip.rate_period = 0s", "bittensor.axon.limits.per_ip.rate_period")]
    [InlineData("bittensor.axon.limits.min_request_body_rate.bytes_per_second = -1", "bittensor.axon.limits.min_request_body_rate.bytes_per_second")]
    [InlineData("bittensor.axon.limits.min_request_body_rate.grace_period = 1s", "bittensor.axon.limits.min_request_body_rate.grace_period")]
    [InlineData("bittensor.axon.limits.min_response_rate.bytes_per_second = fast", "bittensor.axon.limits.min_response_rate.bytes_per_second")]
    [InlineData("bittensor.axon.limits.min_response_rate.grace_period = 2h", "bittensor.axon.limits.min_response_rate.grace_period")]
    public void Invalid_axon_keys_are_refused_with_the_key_named(string hocon, string key)
    {
        var error = Assert.Throws<ConfigurationException>(() => AxonSettings.Create(With(hocon, AxonSettings.SectionPath)));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_axon_transport_is_lean_unless_kestrel_is_chosen()
    {
        Assert.Equal("lean", AxonSettings.Default.Transport);
        Assert.Equal("kestrel", AxonSettings.Create(With("bittensor.axon.transport = kestrel", AxonSettings.SectionPath)).Transport);
    }

    [Theory]
    [InlineData("bittensor.dendrite.backoff.max = 10ms", "bittensor.dendrite.backoff.max")]
    [InlineData("bittensor.dendrite.latency_ema_alpha = 0", "bittensor.dendrite.latency_ema_alpha")]
    [InlineData("bittensor.dendrite.max_endpoints = 0", "bittensor.dendrite.max_endpoints")]
    [InlineData("bittensor.dendrite.timeout = soon", "bittensor.dendrite.timeout")]
    [InlineData("bittensor.dendrite.signature_reuse = 2s", "bittensor.dendrite.signature_reuse")]
    public void Invalid_dendrite_keys_are_refused_with_the_key_named(string hocon, string key)
    {
        var error = Assert.Throws<ConfigurationException>(() => DendriteSettings.Create(With(hocon, DendriteSettings.SectionPath)));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_section_missing_a_key_is_refused_with_the_full_key_named_because_defaults_live_only_in_the_reference_file()
    {
        var partial = ConfigurationFactory.ParseString("ip = \"127.0.0.1\"\nport = 0");

        var error = Assert.Throws<ConfigurationException>(() => AxonSettings.Create(partial));

        Assert.StartsWith("bittensor.axon.external_ip", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_returns_the_record_itself_and_refuses_a_changed_value_with_its_key()
    {
        Assert.Same(AxonSettings.Default, AxonSettings.Default.Validate());

        var error = Assert.Throws<ConfigurationException>(() => (AxonSettings.Default with { MaxWorkers = 0 }).Validate());

        Assert.StartsWith("bittensor.axon.max_workers", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.0, int.MaxValue)]
    [InlineData(-5.0, int.MaxValue)]
    [InlineData(double.NaN, int.MaxValue)]
    public void Callers_without_stake_get_the_lowest_priority(double stake, int expected) => Assert.Equal(expected, StakePriority.From(stake));

    [Fact]
    public void More_stake_means_an_earlier_priority_and_huge_stakes_saturate()
    {
        Assert.True(StakePriority.From(10) < StakePriority.From(1));
        Assert.True(StakePriority.From(0.002) < StakePriority.From(0.001));
        Assert.True(StakePriority.From(1e12) > 0);
        Assert.Equal(StakePriority.From(1e12), StakePriority.From(1e15));
    }
}

using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Core.Crypto;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Axon;

/// <summary>
/// The axon's warm-up (<c>bittensor.axon.warm_up</c>): one signed Forward with a throwaway key through the axon's own
/// listener, made before the axon reports itself bound: by the time <see cref="AxonActor.Bound"/> comes it has gone through
/// the checks to the serve step (<see cref="AxonStatsSnapshot.WarmedUp"/>) and its throwaway key has a nonce in the journal,
/// and nothing else of it shows — no model call, no per-call callback, no counted call.
/// </summary>
public sealed class AxonWarmUpSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output), IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-axon-warm-").FullName;

    void IDisposable.Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private sealed class Counting
    {
        private int _model;
        private int _calls;

        public int Model => Volatile.Read(ref _model);

        public int Calls => Volatile.Read(ref _calls);

        public AxonHandlers Handlers(int dim) => new((r, _) =>
        {
            Interlocked.Increment(ref _model);
            return Task.FromResult(ModelResponse.Ok(DemoModels.EchoForward(r.Inputs, dim)));
        });

        public AxonOptions Options(TimeProvider? time = null) => new() { OnCall = _ => Interlocked.Increment(ref _calls), Time = time };
    }

    // The hotkeys with a line in the axon's nonce store (its snapshot and journal: nonces "<ss58> <nonce>", reservations
    // "r <ss58> <until>"); read once the axon has stopped (it holds the store locked while it runs).
    private async Task<string[]> JournalHotkeysAfterStop(IActorRef axon, string store)
    {
        Watch(axon);
        Sys.Stop(axon);
        ExpectTerminated(axon, Wait);
        var lines = new List<string>();
        foreach (var file in new[] { store, store + ".journal" }) // the snapshot a clean stop writes, and the journal
            if (File.Exists(file)) lines.AddRange(await File.ReadAllLinesAsync(file));
        return [.. lines.Select(l => l.Split(' ')).Where(p => p.Length >= 2)
            .Select(p => p[0] == "r" && p.Length == 3 ? p[1] : p[0]).Where(AxonService.LooksLikeSs58).Distinct().Order(StringComparer.Ordinal)];
    }

    private AxonSettings Settings(string name, bool warmUp) =>
        Loopback(networkDim: 16) with { NonceStorePath = Path.Combine(_dir, name, "nonces"), WarmUp = warmUp };

    private static readonly string[] Known = [.. new[] { Alice, Bob, Charlie, Dave, Eve }.Select(k => k.ToSs58())];

    [Fact]
    public async Task The_warm_up_call_is_served_before_Bound_and_reaches_neither_the_model_nor_the_stats()
    {
        var counting = new Counting();
        var settings = Settings("on", warmUp: true);
        var (axon, port) = await StartAxon(settings, counting.Handlers(16), counting.Options());

        // Bound came after the warm-up had gone through the checks to the serve step; nothing of it was counted.
        var stats = await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait);
        Assert.True(stats.WarmedUp);
        Assert.Equal(0, stats.TotalCalls);
        Assert.Empty(stats.PerCaller);
        Assert.Equal(0, counting.Model);
        Assert.Equal(0, counting.Calls);

        // The first real call is served and counted as ever.
        await AssertAnswersGoodCall(RawClient(port), Alice);
        Assert.Equal(1, counting.Model);
        Assert.Equal(1, counting.Calls);
        stats = await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait);
        Assert.Equal(1, stats.TotalCalls);
        Assert.Equal([Alice.ToSs58()], stats.PerCaller.Keys);

        // The nonce store saw two callers: Alice and the warm-up's throwaway key (no one else's).
        var journaled = await JournalHotkeysAfterStop(axon, settings.NonceStorePath);
        Assert.Equal(2, journaled.Length);
        Assert.Contains(Alice.ToSs58(), journaled);
        Assert.Single(journaled, k => !Known.Contains(k));
    }

    /// <summary>
    /// Session 24: the warm-up also sheds two calls of its own through the lean transport's shed path (the at-read
    /// budget's answer, then calls_in_flight's), so that path is compiled before the axon serves, not at its first
    /// overload; neither shed shows anywhere — not in the stats (no call, no shed), not in the admission rule (no shed, no
    /// budget read, never engaged), nothing held in flight — and the warm-up key's place in the prepared-key cache is free
    /// again.
    /// </summary>
    [Fact]
    public async Task The_warm_up_sheds_two_calls_before_Bound_and_leaves_no_trace_in_the_stats_the_budget_or_the_key_cache()
    {
        var counting = new Counting();
        var settings = Settings("shed", warmUp: true);
        var (axon, port) = await StartAxon(settings, counting.Handlers(16), counting.Options());

        var seen = await axon.Ask<AxonActor.WarmUpSeen>(AxonActor.GetWarmUp.Instance, Wait);
        Assert.Equal(2, seen.Answered);
        Assert.Equal(2, seen.Shed);
        var stats = await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait);
        Assert.True(stats.WarmedUp);
        Assert.Equal(0, stats.TotalCalls);
        Assert.Empty(stats.PerCaller);
        Assert.True(stats.Shed is null || stats.Shed.Values.All(n => n == 0), "the warm-up's sheds were counted as sheds");
        var lean = Assert.IsType<LeanServer>(seen.Binding);
        Assert.Equal(0, lean.CallsHeld);
        Assert.Equal(0, lean.PassSheds);
        if (lean.Admission is { } admission)
        {
            Assert.False(admission.Engaged);
            Assert.Equal(0, admission.Shed);
            Assert.Equal(0, admission.BudgetReads);
            Assert.Equal(0, admission.Engagements);
        }
        Assert.Equal(0, counting.Model);
        Assert.Equal(0, counting.Calls);

        // The first real call is served and counted as ever.
        await AssertAnswersGoodCall(RawClient(port), Alice);
        stats = await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait);
        Assert.Equal(1, stats.TotalCalls);
        Assert.True(stats.Shed is null || stats.Shed.Values.All(n => n == 0));

        // The warm-up's throwaway key (the nonce store's one unknown hotkey) holds no place in the prepared-key cache.
        var warmUpKey = Assert.Single(await JournalHotkeysAfterStop(axon, settings.NonceStorePath), k => !Known.Contains(k));
        Assert.False(Sr25519.IsVerifyingKeyPrepared(Ss58.Decode(warmUpKey)), "the warm-up key still holds a place in the prepared-key cache");
    }

    [Fact]
    public async Task With_warm_up_off_no_call_is_made_before_Bound()
    {
        var counting = new Counting();
        var settings = Settings("off", warmUp: false);
        var (axon, port) = await StartAxon(settings, counting.Handlers(16), counting.Options());
        Assert.False((await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).WarmedUp);
        await AssertAnswersGoodCall(RawClient(port), Alice);
        Assert.Equal(1, (await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).TotalCalls);
        Assert.Equal([Alice.ToSs58()], await JournalHotkeysAfterStop(axon, settings.NonceStorePath));
    }

    [Fact]
    public async Task The_stake_rules_do_not_refuse_the_warm_up_and_still_bind_real_callers()
    {
        var counting = new Counting();
        var settings = Settings("registered", warmUp: true) with { BlacklistRegisteredOnly = true };
        var (axon, port) = await StartAxon(settings, counting.Handlers(16), counting.Options());
        Assert.True((await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).WarmedUp);
        var refused = await Forward(RawClient(port), Alice, Tokens(Alice));
        Assert.Equal(ReturnCode.SenderUnknown, refused.ReturnCode);
        Assert.Equal(0, counting.Model);
    }

    [Fact]
    public async Task With_loopback_limited_per_address_the_warm_up_is_skipped_and_leaves_the_budget_to_real_callers()
    {
        // One call per hour from 127.0.0.1 (burst 1): a warm-up from loopback would leave a local caller nothing.
        var counting = new Counting();
        var settings = Settings("per-ip", warmUp: true) with
        {
            PerIpExemptLoopback = false, PerIpRequestsPerSecond = 1.0 / 3600, PerIpRatePeriod = TimeSpan.FromHours(1), PerIpBurst = 1,
        };
        var (axon, port) = await StartAxon(settings, counting.Handlers(16), counting.Options());
        Assert.False((await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).WarmedUp);
        await AssertAnswersGoodCall(RawClient(port), Alice);
        Assert.Equal([Alice.ToSs58()], await JournalHotkeysAfterStop(axon, settings.NonceStorePath));
    }

    [Fact]
    public async Task A_warm_up_that_fails_logs_one_warning_and_the_axon_serves_anyway()
    {
        // The axon's clock runs 52 minutes behind the machine's (not a whole quarter hour: no time zone's offset): the
        // warm-up's nonce, signed by the machine's clock, is outside its window and refused, as a caller with a wrong clock would be.
        var behind = new ShiftedClock(TimeSpan.FromMinutes(-52));
        var counting = new Counting();
        var settings = Settings("fails", warmUp: true);
        (IActorRef Axon, int Port) started = default;
        await EventFilter.Warning(contains: "axon warm-up call failed").ExpectOneAsync(async () =>
            started = await StartAxon(settings, counting.Handlers(16), counting.Options(behind)));
        var (axon, port) = (started.Axon!, started.Port);
        Assert.False((await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).WarmedUp);

        var auth = new RequestAuth(new KeyPairRequestSigner(Alice), behind);
        var ok = await RawClient(port).ForwardAsync(Tokens(Alice), await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(20));
        Assert.Equal(ReturnCode.Success, ok.ReturnCode);
        Assert.Equal(1, counting.Model);
        Assert.Equal(1, (await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).TotalCalls);
        Assert.Equal([Alice.ToSs58()], await JournalHotkeysAfterStop(axon, settings.NonceStorePath));
    }

    private sealed class ShiftedClock(TimeSpan shift) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + shift;
    }
}

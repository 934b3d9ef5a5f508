using Bittensor.Protocol.Wire;
using Grpc.Core;
using static Bittensor.Protocol.Tests.RequestAuthTests;

namespace Bittensor.Protocol.Tests;

public sealed class RequestVerifierTests : IDisposable
{
    private const string Alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    private const string Bob = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
    private static readonly DateTimeOffset Start = new(2021, 10, 14, 9, 30, 15, TimeSpan.Zero);

    private readonly string _dir = TempDir.Create();
    private readonly ManualClock _clock = new(Start);
    private readonly FakeSignatures _signatures = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private RequestVerifier NewVerifier(RequestVerifierOptions? options = null)
        => new(options ?? new RequestVerifierOptions { NonceFilePath = Path.Combine(_dir, "nonces") }, _signatures, _clock);

    [Fact]
    public void A_replayed_request_is_rejected_as_unauthenticated()
    {
        using var v = NewVerifier();
        var headers = Headers(NonceAt(Start), Alice);
        Assert.True(v.Verify(headers).IsAccepted);
        var replay = v.Verify(headers);
        Assert.False(replay.IsAccepted);
        Assert.Equal(ReturnCode.Unauthenticated, replay.Code);
        Assert.Contains("1 ms newer", replay.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_nonce_less_than_a_millisecond_newer_is_rejected_and_one_a_millisecond_newer_accepted()
    {
        using var v = NewVerifier();
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        Assert.False(v.Verify(Headers(NonceAt(Start.AddTicks(9990)), Alice)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1)), Alice)).IsAccepted);
    }

    [Fact]
    public void A_replay_is_turned_away_before_spending_a_signature_check()
    {
        using var v = NewVerifier();
        var headers = Headers(NonceAt(Start), Alice);
        v.Verify(headers);
        var calls = _signatures.Calls;
        v.Verify(headers);
        Assert.Equal(calls, _signatures.Calls);
    }

    [Fact]
    public void A_far_future_nonce_from_an_unsigned_caller_does_not_lock_out_the_real_caller()
    {
        using var v = NewVerifier();
        // The 2021 axon stored this nonce before checking the signature; the victim was then locked out.
        var forged = Headers(NonceAt(Start.AddSeconds(20)), Alice, signatureHex: new string('a', 128));
        var attack = v.Verify(forged);
        Assert.False(attack.IsAccepted);
        Assert.Contains("signature", attack.Reason, StringComparison.Ordinal);
        Assert.Equal(0, v.TrackedCallers);

        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
    }

    [Fact]
    public void A_nonce_beyond_the_future_skew_is_rejected_even_when_signed()
    {
        using var v = NewVerifier();
        var r = v.Verify(Headers(NonceAt(Start.AddMinutes(3)), Alice));
        Assert.False(r.IsAccepted);
        Assert.Contains("skew", r.Reason, StringComparison.Ordinal);
        Assert.Equal(0, v.TrackedCallers);
    }

    [Fact]
    public void A_stale_nonce_is_rejected()
    {
        using var v = NewVerifier();
        var r = v.Verify(Headers(NonceAt(Start.AddSeconds(-61)), Alice));
        Assert.False(r.IsAccepted);
        Assert.Equal(ReturnCode.Unauthenticated, r.Code);
        Assert.True(v.Verify(Headers(NonceAt(Start.AddSeconds(-59)), Alice)).IsAccepted);
    }

    [Fact]
    public void Callers_in_any_time_zone_pass_because_the_nonce_is_their_local_time()
    {
        using var v = NewVerifier();
        var india = Start.ToOffset(TimeSpan.FromMinutes(330));
        var newYork = Start.ToOffset(TimeSpan.FromHours(-4));
        Assert.True(v.Verify(Headers(NonceAt(india), Alice)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(newYork), Bob)).IsAccepted);
        // 20 minutes off any quarter-hour offset is outside the window whatever the zone.
        Assert.False(v.Verify(Headers(NonceAt(Start.AddMinutes(7)), "5CiPPseXPECbkjWCa6MnjNokrgYjMqmKndv2rSnekmSK2DjL")).IsAccepted);
    }

    [Fact]
    public void Without_any_offset_the_nonce_is_compared_with_this_machines_local_time()
    {
        var clock = new ManualClock(Start, TimeZoneInfo.CreateCustomTimeZone("X", TimeSpan.FromHours(2), "X", "X"));
        using var v = new RequestVerifier(new RequestVerifierOptions { AcceptAnyUtcOffset = false }, _signatures, clock);
        Assert.False(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(Start.ToOffset(TimeSpan.FromHours(2))), Alice)).IsAccepted);
    }

    [Theory]
    [InlineData("139", false)]
    [InlineData("140", true)]
    [InlineData("300", true)]
    public void Callers_more_than_ten_versions_behind_are_incompatible(string version, bool accepted)
    {
        using var v = NewVerifier();
        var r = v.Verify(Headers(NonceAt(Start), Alice, version: version));
        Assert.Equal(accepted, r.IsAccepted);
        if (!accepted) Assert.Equal(ReturnCode.RequestIncompatibleVersion, r.Code);
    }

    [Fact]
    public void Missing_or_malformed_headers_are_rejected_with_a_reason_and_never_throw()
    {
        using var v = NewVerifier();
        var nonce = NonceAt(Start);
        Assert.Contains("rpc-auth-header", v.Verify(new Metadata()).Reason, StringComparison.Ordinal);
        Assert.Contains("version", v.Verify(Headers(nonce, Alice, version: null)).Reason, StringComparison.Ordinal);
        Assert.False(v.Verify(Headers(nonce, Alice, version: "15O")).IsAccepted);
        Assert.False(v.Verify("Bittensor", "garbage", "150").IsAccepted);
        Assert.False(v.Verify("Bittensor", $"{nonce}bitxx{Alice}", "150").IsAccepted);
        Assert.False(v.Verify("Bittensor", $"{nonce}bitxx{Alice}bitxx0x{new string('z', 128)}", "150").IsAccepted);
        Assert.False(v.Verify("Bittensor", $"{nonce}bitxx{Alice}bitxx0x00", "150").IsAccepted);
        Assert.False(v.Verify("Bittensor", $"99999999999999999999bitxx{Alice}bitxx0x{new string('0', 128)}", "150").IsAccepted);
        Assert.False(v.Verify("Bittensor", new string('x', 100_000), "150").IsAccepted);
        Assert.False(v.Verify("bittensor", $"{nonce}bitxx{Alice}bitxx0x{new string('0', 128)}", "150").IsAccepted);
        Assert.Equal(0, v.TrackedCallers);
    }

    [Fact]
    public void Headers_are_read_by_name_in_any_order()
    {
        using var v = NewVerifier();
        var h = Headers(NonceAt(Start), Alice);
        var reordered = new Metadata { { "user-agent", "grpc-dotnet" }, h[2], h[1], h[0] };
        Assert.True(v.Verify(reordered).IsAccepted);
    }

    [Fact]
    public void An_ss58_address_containing_the_separator_still_parses()
    {
        using var v = NewVerifier();
        const string odd = "5Gbitxxz5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
        var r = v.Verify(Headers(NonceAt(Start), odd));
        Assert.True(r.IsAccepted, r.Reason);
        Assert.Equal(odd, r.Hotkey);
    }

    [Fact]
    public void Of_many_concurrent_copies_of_one_signed_request_exactly_one_is_accepted()
    {
        using var v = NewVerifier();
        var headers = Headers(NonceAt(Start), Alice);
        var accepted = 0;
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ =>
        {
            if (v.Verify(headers).IsAccepted) Interlocked.Increment(ref accepted);
        });
        Assert.Equal(1, accepted);
    }

    [Fact]
    public void After_a_restart_over_the_same_file_the_replay_is_still_rejected()
    {
        var headers = Headers(NonceAt(Start), Alice);
        using (var first = NewVerifier())
        {
            Assert.True(first.Verify(headers).IsAccepted);
        }
        using var second = NewVerifier();
        Assert.Equal(1, second.TrackedCallers);
        Assert.False(second.Verify(headers).IsAccepted);
        Assert.True(second.Verify(Headers(NonceAt(Start.AddMilliseconds(1)), Alice)).IsAccepted);
    }

    [Fact]
    public void An_accepted_nonce_is_on_disk_before_the_accept_so_a_crash_right_after_it_cannot_reopen_it()
    {
        var v = NewVerifier();
        var headers = Headers(NonceAt(Start), Alice);
        Assert.True(v.Verify(headers).IsAccepted);
        v.SimulateCrash(); // no compaction, no dispose: the process is gone

        using var restarted = NewVerifier();
        var replay = restarted.Verify(headers);
        Assert.False(replay.IsAccepted);
        Assert.Equal(ReturnCode.Unauthenticated, replay.Code);
        Assert.True(restarted.Verify(Headers(NonceAt(Start.AddMilliseconds(1)), Alice)).IsAccepted);
    }

    [Fact]
    public void A_crash_between_compactions_loses_none_of_the_accepted_nonces()
    {
        var v = NewVerifier();
        var before = Headers(NonceAt(Start), Alice);
        Assert.True(v.Verify(before).IsAccepted);
        v.Flush(); // a compaction is due at the writer's next turn
        var after = Enumerable.Range(0, 20).Select(i => Headers(NonceAt(Start.AddMilliseconds(i)), $"5Caller{i:D4}")).ToArray();
        foreach (var h in after) Assert.True(v.Verify(h).IsAccepted);
        v.SimulateCrash();

        using var restarted = NewVerifier();
        Assert.Equal(21, restarted.TrackedCallers);
        Assert.False(restarted.Verify(before).IsAccepted);
        foreach (var h in after) Assert.False(restarted.Verify(h).IsAccepted);
    }

    [Fact]
    public async Task A_request_whose_nonce_is_not_yet_written_is_not_accepted_and_a_crash_then_leaves_it_unaccepted()
    {
        var v = NewVerifier();
        using var hold = new ManualResetEventSlim(false);
        v.Journal!.HoldWrites = hold;
        var headers = Headers(NonceAt(Start), Alice);

        var pending = v.VerifyAsync(headers);
        Assert.False(pending.IsCompleted); // the answer waits for the journal write
        Assert.False(v.Verify(headers).IsAccepted); // a concurrent copy is already refused
        // The crash is marked before the held write is released, so the writer sees it and never writes the batch.
        v.SimulateCrash(afterCrashMarked: hold.Set);
        var answer = await pending;
        Assert.False(answer.IsAccepted);
        Assert.Equal(ReturnCode.UnknownException, answer.Code);

        // Never answered Accept, never written: the caller may send it again after the restart.
        using var restarted = NewVerifier();
        Assert.True(restarted.Verify(headers).IsAccepted);
    }

    [Fact]
    public void Each_lone_call_is_accepted_only_once_its_own_batch_is_written_and_survives_a_crash()
    {
        var v = NewVerifier();
        for (var i = 0; i < 3; i++) Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(i)), Alice)).IsAccepted);
        Assert.Equal(3, v.Journal!.BatchesWritten); // one after another: one batch each
        v.SimulateCrash(); // the accepts were durable when they returned
        using var restarted = NewVerifier();
        Assert.False(restarted.Verify(Headers(NonceAt(Start.AddMilliseconds(2)), Alice)).IsAccepted);
        Assert.True(restarted.Verify(Headers(NonceAt(Start.AddMilliseconds(3)), Alice)).IsAccepted);
    }

    [Fact]
    public async Task Calls_that_queue_while_a_write_is_under_way_are_written_together_as_the_next_batch()
    {
        var v = NewVerifier();
        using var hold = new ManualResetEventSlim(false);
        v.Journal!.HoldWrites = hold; // the first turn goes to the thread pool and waits there
        var calls = Enumerable.Range(0, 20)
            .Select(i => v.VerifyAsync(Headers(NonceAt(Start), $"5Caller{i:D4}")).AsTask()).ToArray();
        Assert.All(calls, c => Assert.False(c.IsCompleted)); // none answered before its nonce is written
        hold.Set();
        var results = await Task.WhenAll(calls);
        Assert.All(results, r => Assert.True(r.IsAccepted));
        Assert.Equal(1, v.Journal.BatchesWritten); // one write (and one fsync) for all twenty
        v.Journal.HoldWrites = null;
        v.SimulateCrash();
        using var restarted = NewVerifier();
        Assert.Equal(20, restarted.TrackedCallers);
    }

    [Fact]
    public async Task A_clean_stop_writes_what_is_queued_and_compacts()
    {
        var v = NewVerifier();
        using var hold = new ManualResetEventSlim(false);
        v.Journal!.HoldWrites = hold;
        var call = v.VerifyAsync(Headers(NonceAt(Start), Alice)).AsTask();
        var stop = Task.Run(v.Dispose); // waits for the held turn
        Assert.False(call.IsCompleted);
        hold.Set();
        Assert.True((await call).IsAccepted);
        await stop;
        Assert.Contains(Alice, File.ReadAllText(Path.Combine(_dir, "nonces")), StringComparison.Ordinal); // in the snapshot
        using var restarted = NewVerifier();
        Assert.False(restarted.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
    }

    [Fact]
    public void A_torn_last_journal_line_is_dropped_and_later_records_are_not_glued_to_it()
    {
        var path = Path.Combine(_dir, "nonces");
        var bob = Headers(NonceAt(Start), Bob);
        var alice = Headers(NonceAt(Start), Alice);
        var aliceNext = Headers(NonceAt(Start.AddMilliseconds(5)), Alice);
        var ticks = Start.DateTime.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllText(path + ".journal", $"bittensor-nonce-journal v1\n{Bob} {ticks}\n{Alice} {ticks[..10]}");

        var v = NewVerifier();
        Assert.False(v.Verify(bob).IsAccepted); // a whole line: its request was answered
        Assert.True(v.Verify(alice).IsAccepted); // the torn line's batch was never answered
        Assert.True(v.Verify(aliceNext).IsAccepted);
        v.SimulateCrash();

        using var restarted = NewVerifier();
        Assert.False(restarted.Verify(alice).IsAccepted);
        Assert.False(restarted.Verify(aliceNext).IsAccepted);
        Assert.False(restarted.Verify(bob).IsAccepted);
    }

    private RequestVerifier NewVerifierOnBoot(string? boot) =>
        new(new RequestVerifierOptions { NonceFilePath = Path.Combine(_dir, "nonces"), BootId = () => boot }, _signatures, _clock);

    [Fact]
    public async Task A_callers_first_call_is_fsynced_with_a_reservation_and_its_next_calls_inside_it_are_written_without_one()
    {
        using var v = NewVerifierOnBoot("boot-a");
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        Assert.Equal(1, v.Journal!.Syncs);
        for (var i = 1; i <= 5; i++)
        {
            // Written on the calling thread (no fsync needed): the answer is there when VerifyAsync returns.
            var pending = v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(i)), Alice));
            Assert.True(pending.IsCompletedSuccessfully);
            Assert.True((await pending).IsAccepted);
        }
        Assert.Equal(6, v.Journal.BatchesWritten);
        Assert.Equal(1, v.Journal.Syncs); // inside Alice's reservation: written, not fsynced
        Assert.True(v.Verify(Headers(NonceAt(Start), Bob)).IsAccepted);
        Assert.Equal(2, v.Journal.Syncs); // Bob's first call
        // Past the reservation (10 s of Alice's nonce time): she reserves again, fsynced.
        _clock.Advance(TimeSpan.FromSeconds(11));
        Assert.True(v.Verify(Headers(NonceAt(Start.AddSeconds(11)), Alice)).IsAccepted);
        Assert.Equal(3, v.Journal.Syncs);
    }

    [Fact]
    public void After_a_killed_process_restarts_on_the_same_boot_the_callers_next_nonce_passes_and_its_replays_do_not()
    {
        var v = NewVerifierOnBoot("boot-a");
        var last = Headers(NonceAt(Start.AddMilliseconds(3)), Alice);
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        Assert.True(v.Verify(last).IsAccepted); // written, not fsynced: the kernel keeps it when the process dies
        v.SimulateCrash();

        using var restarted = NewVerifierOnBoot("boot-a");
        Assert.False(restarted.Verify(last).IsAccepted);
        Assert.True(restarted.Verify(Headers(NonceAt(Start.AddMilliseconds(4)), Alice)).IsAccepted); // no reservation floor
    }

    [Fact]
    public void After_the_machine_went_down_every_nonce_inside_a_callers_reservation_is_refused_though_its_line_was_lost()
    {
        var v = NewVerifierOnBoot("boot-a");
        var unsynced = Headers(NonceAt(Start.AddMilliseconds(3)), Alice);
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        Assert.True(v.Verify(unsynced).IsAccepted);
        Assert.Equal(1, v.Journal!.Syncs);
        v.SimulateCrash();
        // A power loss may drop what was written but never fsynced: Alice's second line.
        var journal = Path.Combine(_dir, "nonces.journal");
        var lost = $"{Alice} {Start.AddMilliseconds(3).DateTime.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        var lines = File.ReadAllLines(journal);
        Assert.Contains(lost, lines);
        File.WriteAllLines(journal, lines.Where(l => l != lost));

        using var rebooted = NewVerifierOnBoot("boot-b");
        var replay = rebooted.Verify(unsynced);
        Assert.False(replay.IsAccepted);
        Assert.Equal(ReturnCode.Unauthenticated, replay.Code);
        Assert.False(rebooted.Verify(Headers(NonceAt(Start.AddSeconds(9)), Alice)).IsAccepted); // inside the reservation
        _clock.Advance(TimeSpan.FromSeconds(11));
        Assert.True(rebooted.Verify(Headers(NonceAt(Start.AddSeconds(11)), Alice)).IsAccepted);
        Assert.True(rebooted.Verify(Headers(NonceAt(_clock.GetUtcNow()), Bob)).IsAccepted); // callers never seen are not held
    }

    [Fact]
    public void With_no_known_boot_the_reservations_always_count_after_an_unclean_stop()
    {
        var v = NewVerifierOnBoot(null);
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        v.SimulateCrash();
        using var restarted = NewVerifierOnBoot(null);
        Assert.False(restarted.Verify(Headers(NonceAt(Start.AddMilliseconds(5)), Alice)).IsAccepted);
    }

    [Fact]
    public void A_compaction_keeps_the_callers_reservations_on_disk_so_their_next_calls_need_no_fsync()
    {
        // Session 16: until then a compaction dropped every reservation and each caller's next call was fsynced again
        // (at 1,024 signed callers a compaction about every second, so nearly every batch carried a reservation).
        using var v = NewVerifierOnBoot("boot-a");
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(Start), Bob)).IsAccepted);
        Assert.Equal(2, v.Journal!.Syncs);
        v.Journal.CompactNow();
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1)), Alice)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1)), Bob)).IsAccepted);
        Assert.Equal(2, v.Journal.Syncs); // inside the kept reservations: written, not fsynced
        // Past the reservation (10 s of Alice's nonce time) she reserves again, as before a compaction.
        _clock.Advance(TimeSpan.FromSeconds(11));
        Assert.True(v.Verify(Headers(NonceAt(Start.AddSeconds(11)), Alice)).IsAccepted);
        Assert.Equal(3, v.Journal.Syncs);
    }

    [Fact]
    public void After_a_compaction_and_the_machine_going_down_the_kept_reservation_still_refuses_the_nonces_inside_it()
    {
        var v = NewVerifierOnBoot("boot-a");
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        v.Journal!.CompactNow();
        var unsynced = Headers(NonceAt(Start.AddSeconds(5)), Alice);
        Assert.True(v.Verify(unsynced).IsAccepted);
        Assert.Equal(1, v.Journal.Syncs);
        v.SimulateCrash();
        // A power loss may drop what was written but never fsynced: Alice's line after the compaction.
        var journal = Path.Combine(_dir, "nonces.journal");
        var lost = $"{Alice} {Start.AddSeconds(5).DateTime.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        var lines = File.ReadAllLines(journal);
        Assert.Contains(lost, lines);
        File.WriteAllLines(journal, lines.Where(l => l != lost));

        using var rebooted = NewVerifierOnBoot("boot-b");
        Assert.False(rebooted.Verify(unsynced).IsAccepted); // the reservation written again at the compaction holds it
        Assert.False(rebooted.Verify(Headers(NonceAt(Start.AddSeconds(9)), Alice)).IsAccepted);
    }

    [Fact]
    public void A_clean_stop_leaves_no_reservation_behind_so_a_reboot_refuses_nothing_of_the_callers_next_seconds()
    {
        var v = NewVerifierOnBoot("boot-a");
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        v.Journal!.CompactNow(); // keeps Alice's reservation in the emptied journal
        v.Dispose();
        Assert.DoesNotContain(File.ReadAllLines(Path.Combine(_dir, "nonces.journal")), l => l.StartsWith("r ", StringComparison.Ordinal));

        using var rebooted = NewVerifierOnBoot("boot-b");
        Assert.False(rebooted.Verify(Headers(NonceAt(Start), Alice)).IsAccepted); // the replay: in the snapshot
        Assert.True(rebooted.Verify(Headers(NonceAt(Start.AddSeconds(1)), Alice)).IsAccepted);
    }

    [Fact]
    public void A_second_verifier_cannot_open_a_store_another_one_holds()
    {
        using var v = NewVerifier();
        Assert.Throws<IOException>(() => NewVerifier());
    }

    [Fact]
    public void Without_fsync_the_accept_still_waits_for_the_write_and_survives_a_crash()
    {
        var options = new RequestVerifierOptions { NonceFilePath = Path.Combine(_dir, "nonces"), NonceFileSync = false };
        var v = NewVerifier(options);
        var headers = Headers(NonceAt(Start), Alice);
        Assert.True(v.Verify(headers).IsAccepted);
        v.SimulateCrash();
        using var restarted = NewVerifier(options);
        Assert.False(restarted.Verify(headers).IsAccepted);
    }

    [Fact]
    public void A_file_that_is_not_a_nonce_store_is_refused_at_start()
    {
        var path = Path.Combine(_dir, "nonces");
        File.WriteAllText(path, "{\"not\": \"ours\"}");
        Assert.Throws<InvalidDataException>(() => NewVerifier());
    }

    [Fact]
    public void The_store_never_holds_more_than_its_capacity()
    {
        using var v = NewVerifier(new RequestVerifierOptions { NonceCapacity = 10 });
        for (var i = 0; i < 50; i++)
            Assert.True(v.Verify(Headers(NonceAt(Start), $"5Caller{i:D4}")).IsAccepted);
        Assert.Equal(10, v.TrackedCallers);
    }

    [Fact]
    public void Entries_whose_nonce_left_the_window_are_dropped_because_the_stale_check_covers_them()
    {
        using var v = NewVerifier(new RequestVerifierOptions { AcceptAnyUtcOffset = false });
        var old = Headers(NonceAt(Start), Alice);
        Assert.True(v.Verify(old).IsAccepted);
        _clock.Advance(TimeSpan.FromSeconds(61));
        Assert.True(v.Verify(Headers(NonceAt(_clock.GetUtcNow()), Bob)).IsAccepted);
        Assert.Equal(1, v.TrackedCallers);
        // Alice's entry is gone, yet her old request still cannot be replayed.
        Assert.Contains("stale", v.Verify(old).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_verifier_that_throws_on_a_bad_key_counts_as_a_failed_signature()
    {
        using var v = new RequestVerifier(null, new ThrowingVerifier(), _clock);
        var r = v.Verify(Headers(NonceAt(Start), Alice));
        Assert.False(r.IsAccepted);
        Assert.Equal(ReturnCode.Unauthenticated, r.Code);
    }

    [Fact]
    public void Options_that_make_the_window_meaningless_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new RequestVerifierOptions { MaxAge = TimeSpan.FromMinutes(20) }.Validate());
        Assert.Throws<ArgumentException>(() => new RequestVerifierOptions { NonceCapacity = 0 }.Validate());
        new RequestVerifierOptions { MaxAge = TimeSpan.FromMinutes(20), AcceptAnyUtcOffset = false }.Validate();
    }

    private sealed class ThrowingVerifier : ISignatureVerifier
    {
        public bool Verify(string ss58Address, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
            => throw new FormatException("bad ss58");
    }

    [Fact]
    public void By_default_a_request_verified_after_a_newer_one_from_the_same_caller_is_rejected()
    {
        using var v = NewVerifier();
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        Assert.False(v.Verify(Headers(NonceAt(Start.AddMilliseconds(-2)), Alice)).IsAccepted);
    }

    [Fact]
    public void With_a_reorder_window_an_older_unused_nonce_passes_once_and_replays_still_fail()
    {
        using var v = NewVerifier(new RequestVerifierOptions { ReorderWindow = TimeSpan.FromSeconds(5) });
        var newest = Headers(NonceAt(Start), Alice);
        var older = Headers(NonceAt(Start.AddMilliseconds(-2)), Alice);
        Assert.True(v.Verify(newest).IsAccepted);
        Assert.True(v.Verify(older).IsAccepted);
        Assert.False(v.Verify(older).IsAccepted);
        Assert.False(v.Verify(newest).IsAccepted);
        Assert.False(v.Verify(Headers(NonceAt(Start.AddMilliseconds(-2.5)), Alice)).IsAccepted);
        Assert.False(v.Verify(Headers(NonceAt(Start.AddSeconds(-6)), Alice)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1)), Alice)).IsAccepted);
        Assert.False(v.Verify(older).IsAccepted);
    }

    [Fact]
    public void With_a_reorder_window_forgotten_nonces_are_covered_by_the_floor()
    {
        using var v = NewVerifier(new RequestVerifierOptions { ReorderWindow = TimeSpan.FromSeconds(5) });
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        // 40 late arrivals, more than the 32 remembered: the forgotten ones sit under the raised floor.
        var olders = Enumerable.Range(1, 40).Select(i => Headers(NonceAt(Start.AddMilliseconds(-410 + 10 * i)), Alice)).ToList();
        foreach (var h in olders) Assert.True(v.Verify(h).IsAccepted);
        foreach (var h in olders) Assert.False(v.Verify(h).IsAccepted);
        Assert.False(v.Verify(Headers(NonceAt(Start.AddMilliseconds(-395)), Alice)).IsAccepted);
    }

    [Fact]
    public void After_a_restart_the_reorder_window_opens_only_above_the_newest_nonce()
    {
        var options = new RequestVerifierOptions { ReorderWindow = TimeSpan.FromSeconds(5), NonceFilePath = Path.Combine(_dir, "nonces") };
        using (var first = NewVerifier(options))
            Assert.True(first.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        using var second = NewVerifier(options);
        Assert.False(second.Verify(Headers(NonceAt(Start.AddMilliseconds(-5)), Alice)).IsAccepted);
        Assert.True(second.Verify(Headers(NonceAt(Start.AddMilliseconds(1)), Alice)).IsAccepted);
    }

    private const string Charlie = "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y";
    private const string Dave = "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy";

    [Fact]
    public void Callers_without_a_remembered_nonce_share_a_budget_of_signature_checks_that_known_callers_do_not_need()
    {
        var clock = new SteppedClock(Start);
        using var v = new RequestVerifier(new RequestVerifierOptions { NewCallerVerifiesPerSecond = 2 }, _signatures, clock);
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted); // a new caller: one of the two checks

        // Bob floods with well-formed bad signatures: his first is checked (the second token), the rest are refused
        // without a signature check.
        var bad = new string('a', 128);
        var calls = _signatures.Calls;
        Assert.Contains("signature does not verify", v.Verify(Headers(NonceAt(Start), Bob, signatureHex: bad)).Reason, StringComparison.Ordinal);
        for (var i = 1; i <= 20; i++)
        {
            var r = v.Verify(Headers(NonceAt(Start.AddMilliseconds(i)), Bob, signatureHex: bad));
            Assert.False(r.IsAccepted);
            Assert.Equal(ReturnCode.Unauthenticated, r.Code);
            Assert.Contains("too many new callers", r.Reason, StringComparison.Ordinal);
        }
        Assert.Equal(calls + 1, _signatures.Calls);

        // Alice has signed correctly (her nonce is remembered): checked and accepted while the budget is empty.
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(30)), Alice)).IsAccepted);
        // A new honest caller waits for the budget like the flood: half a second refills one check.
        Assert.Contains("too many new callers", v.Verify(Headers(NonceAt(Start.AddMilliseconds(40)), Charlie)).Reason, StringComparison.Ordinal);
        clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(540)), Charlie)).IsAccepted);
    }

    [Fact]
    public void With_no_new_caller_budget_every_well_formed_call_gets_its_signature_checked()
    {
        var clock = new SteppedClock(Start);
        using var v = new RequestVerifier(new RequestVerifierOptions { NewCallerVerifiesPerSecond = 0 }, _signatures, clock);
        var calls = _signatures.Calls;
        for (var i = 0; i < 50; i++)
            Assert.Contains("signature does not verify", v.Verify(Headers(NonceAt(Start.AddMilliseconds(i)), Bob, signatureHex: new string('a', 128))).Reason, StringComparison.Ordinal);
        Assert.Equal(calls + 50, _signatures.Calls);
        Assert.Throws<ArgumentException>(() => new RequestVerifierOptions { NewCallerVerifiesPerSecond = -1 }.Validate());
        Assert.Throws<ArgumentException>(() => new RequestVerifierOptions { NewCallerVerifiesPerSecond = double.NaN }.Validate());
    }

    [Fact]
    public void After_a_bad_signature_under_a_known_callers_hotkey_its_calls_draw_from_the_new_caller_budget_for_the_hold()
    {
        var clock = new SteppedClock(Start);
        using var v = new RequestVerifier(new RequestVerifierOptions { NewCallerVerifiesPerSecond = 2, FailedSignatureHold = TimeSpan.FromSeconds(1) },
            _signatures, clock);
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted); // Alice is new: the first of two tokens

        // An impersonator floods bad signatures under Alice's (known) hotkey. The first is checked without a token (Alice is
        // trusted until then) and holds her hotkey; the next takes the budget's last token; the rest are refused unchecked.
        var bad = new string('a', 128);
        var calls = _signatures.Calls;
        for (var i = 1; i <= 2; i++)
            Assert.Contains("signature does not verify", v.Verify(Headers(NonceAt(Start.AddMilliseconds(i)), Alice, signatureHex: bad)).Reason, StringComparison.Ordinal);
        for (var i = 3; i <= 40; i++)
        {
            var r = v.Verify(Headers(NonceAt(Start.AddMilliseconds(i)), Alice, signatureHex: bad));
            Assert.False(r.IsAccepted);
            Assert.Equal(ReturnCode.Unauthenticated, r.Code);
            Assert.Contains("just failed its signature check", r.Reason, StringComparison.Ordinal);
        }
        Assert.Equal(calls + 2, _signatures.Calls);

        // The cost: Alice herself, while held and with the budget spent, is refused unchecked too (she retries) ...
        Assert.Contains("just failed its signature check", v.Verify(Headers(NonceAt(Start.AddMilliseconds(50)), Alice)).Reason, StringComparison.Ordinal);
        // ... and so is a new caller: the impersonation spent the shared budget.
        Assert.Contains("too many new callers", v.Verify(Headers(NonceAt(Start.AddMilliseconds(60)), Bob)).Reason, StringComparison.Ordinal); // Bob is new: no token left
        clock.Advance(TimeSpan.FromMilliseconds(1100));
        // The hold is over (and the budget refilled): Alice is trusted again, without a token; Bob takes one.
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1200)), Alice)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1210)), Bob)).IsAccepted);
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1220)), Bob)).IsAccepted); // known now: no token
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1230)), Charlie)).IsAccepted); // the second token
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(1240)), Alice)).IsAccepted); // trusted: needs none
        Assert.Contains("too many new callers", v.Verify(Headers(NonceAt(Start.AddMilliseconds(1250)), Dave)).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_signature_holds_its_hotkey_only_for_calls_from_its_address_IPv6_by_the_64()
    {
        // A budget of two checks that does not refill on its own (the clock moves only by hand), a hold of a minute.
        var clock = new SteppedClock(Start);
        using var v = new RequestVerifier(new RequestVerifierOptions { NewCallerVerifiesPerSecond = 2, FailedSignatureHold = TimeSpan.FromMinutes(1) },
            _signatures, clock);
        var owner = System.Net.IPAddress.Parse("127.0.0.2");
        var impostor = System.Net.IPAddress.Parse("127.0.0.1");
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start), Alice), owner)).IsAccepted); // Alice is new: the first token

        // The impersonator's first bad signature is checked (Alice is known) and holds (Alice, 127.0.0.1); the second
        // takes the budget's last token; from then on its calls are refused unchecked.
        var bad = new string('a', 128);
        var ms = 1;
        for (var i = 0; i < 2; i++)
            Assert.Contains("signature does not verify", (await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice, signatureHex: bad), impostor)).Reason,
                StringComparison.Ordinal);
        var calls = _signatures.Calls;
        for (var i = 0; i < 10; i++)
            Assert.Contains("from this address just failed", (await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice, signatureHex: bad), impostor)).Reason,
                StringComparison.Ordinal);
        Assert.Equal(calls, _signatures.Calls);
        // The same address as an IPv4-mapped IPv6 address is the same hold; so is a correctly signed call from there.
        Assert.Contains("from this address just failed", (await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice), impostor.MapToIPv6())).Reason,
            StringComparison.Ordinal);

        // The real Alice from her own address: trusted as before (no token needed, none left), call after call.
        for (var i = 0; i < 5; i++)
            Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice), owner)).IsAccepted);
        // A call without an address is not held by a hold on an address.
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice)).IsAccepted);

        // IPv6: a hold covers the /64 its bad signature came from, and no other /64.
        clock.Advance(TimeSpan.FromSeconds(2)); // refills the budget (the hold of a minute lasts)
        var v6 = System.Net.IPAddress.Parse("2001:db8:1:2::10");
        Assert.Contains("signature does not verify", (await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2)), Alice, signatureHex: bad), v6)).Reason,
            StringComparison.Ordinal);
        Assert.Contains("signature does not verify", (await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2).AddMilliseconds(1)), Bob, signatureHex: bad), owner)).Reason,
            StringComparison.Ordinal); // Bob is new: the budget's first token
        Assert.Contains("signature does not verify", (await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2).AddMilliseconds(2)), Bob, signatureHex: bad), owner)).Reason,
            StringComparison.Ordinal); // the last token
        Assert.Contains("from this address just failed",
            (await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2).AddMilliseconds(3)), Alice), System.Net.IPAddress.Parse("2001:db8:1:2:ffff::1"))).Reason,
            StringComparison.Ordinal);
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2).AddMilliseconds(4)), Alice), System.Net.IPAddress.Parse("2001:db8:1:3::10"))).IsAccepted);

        // The hold ends: Alice from the impostor's address is trusted again.
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(62)), Alice), impostor)).IsAccepted);
    }

    [Fact]
    public async Task Bad_signatures_under_one_hotkey_from_several_addresses_hold_it_from_every_address()
    {
        // A budget of one check that does not refill on its own (the clock moves only by hand), a hold of a minute.
        var clock = new SteppedClock(Start);
        using var v = new RequestVerifier(new RequestVerifierOptions { NewCallerVerifiesPerSecond = 1, FailedSignatureHold = TimeSpan.FromMinutes(1) },
            _signatures, clock);
        var owner = System.Net.IPAddress.Parse("127.0.0.2");
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start), Alice), owner)).IsAccepted); // Alice is new: the only token
        var bad = new string('a', 128);
        var ms = 1;
        var calls = _signatures.Calls;

        // Bad signatures under Alice's hotkey from three addresses (one IPv6 /64 among them): each address's first is
        // checked (Alice is trusted there until then) and holds only that address; the owner is still trusted.
        string[] spread = ["10.0.0.1", "10.0.0.2", "2001:db8:7:7::1"];
        foreach (var address in spread)
            Assert.Contains("signature does not verify",
                (await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice, signatureHex: bad), System.Net.IPAddress.Parse(address))).Reason,
                StringComparison.Ordinal);
        Assert.Equal(calls + RequestVerifier.HeldAddressesBeforeAll - 1, _signatures.Calls);
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice), owner)).IsAccepted);
        calls = _signatures.Calls; // (that call's signature was checked too)

        // The fourth address's bad signature is checked too, and from then on the hotkey is held from every address:
        // the owner's own calls draw from the spent budget and are refused unchecked, as is any further address.
        Assert.Contains("signature does not verify",
            (await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice, signatureHex: bad), System.Net.IPAddress.Parse("10.0.0.4"))).Reason,
            StringComparison.Ordinal);
        Assert.Equal(calls + 1, _signatures.Calls);
        Assert.Contains("from several addresses just failed",
            (await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice), owner)).Reason, StringComparison.Ordinal);
        for (var i = 0; i < 20; i++)
            Assert.Contains("from several addresses just failed",
                (await v.VerifyAsync(Headers(NonceAt(Start.AddMilliseconds(ms++)), Alice, signatureHex: bad), System.Net.IPAddress.Parse($"10.1.0.{i}"))).Reason,
                StringComparison.Ordinal);
        Assert.Equal(calls + 1, _signatures.Calls);
        // Another known hotkey is not held by Alice's hold.
        clock.Advance(TimeSpan.FromSeconds(2)); // refills the budget's one token (the hold of a minute lasts)
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2)), Bob), owner)).IsAccepted); // Bob is new: the token
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2).AddMilliseconds(1)), Bob), System.Net.IPAddress.Parse("10.0.0.1"))).IsAccepted);
        Assert.Contains("from several addresses just failed",
            (await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(2).AddMilliseconds(2)), Alice), owner)).Reason, StringComparison.Ordinal);

        // The hold ends: Alice is trusted again from everywhere, without a token.
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(62)), Alice), owner)).IsAccepted);
        Assert.True((await v.VerifyAsync(Headers(NonceAt(Start.AddSeconds(62).AddMilliseconds(1)), Alice), System.Net.IPAddress.Parse("10.0.0.4"))).IsAccepted);
    }

    [Fact]
    public void With_no_failed_signature_hold_every_bad_signature_under_a_known_hotkey_is_checked()
    {
        var clock = new SteppedClock(Start);
        using var v = new RequestVerifier(new RequestVerifierOptions { NewCallerVerifiesPerSecond = 2, FailedSignatureHold = TimeSpan.Zero }, _signatures, clock);
        Assert.True(v.Verify(Headers(NonceAt(Start), Alice)).IsAccepted);
        var calls = _signatures.Calls;
        for (var i = 1; i <= 30; i++)
            Assert.Contains("signature does not verify", v.Verify(Headers(NonceAt(Start.AddMilliseconds(i)), Alice, signatureHex: new string('a', 128))).Reason,
                StringComparison.Ordinal);
        Assert.Equal(calls + 30, _signatures.Calls);
        Assert.True(v.Verify(Headers(NonceAt(Start.AddMilliseconds(40)), Alice)).IsAccepted);
        Assert.Throws<ArgumentException>(() => new RequestVerifierOptions { FailedSignatureHold = TimeSpan.FromSeconds(-1) }.Validate());
    }

    /// <summary>Wall clock and timestamps both move only by hand (ManualClock keeps the real Stopwatch for timestamps).</summary>
    private sealed class SteppedClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

        public override DateTimeOffset GetUtcNow() => _now;

        public override long GetTimestamp() => _now.UtcTicks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public void Advance(TimeSpan by) => _now += by;
    }
}

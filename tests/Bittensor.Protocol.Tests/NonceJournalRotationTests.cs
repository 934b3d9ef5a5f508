using Grpc.Core;
using static Bittensor.Protocol.Tests.RequestAuthTests;

namespace Bittensor.Protocol.Tests;

/// <summary>
/// The nonce journal's compaction as a rotation between two files (session 20): the calls' nonce writes go on while the
/// snapshot is written, and a crash (the process's, or the machine's with the unsynced tail of either file lost at any
/// byte) at any point of it reopens no answered nonce. Real files in an own temp folder; time only moves by hand.
/// </summary>
public sealed class NonceJournalRotationTests : IDisposable
{
    private const string Alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    private const string Bob = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
    private static readonly DateTimeOffset Start = new(2021, 10, 14, 9, 30, 15, TimeSpan.Zero);

    private readonly string _dir = TempDir.Create();
    private readonly string _cuts = TempDir.Create();
    private readonly ManualClock _clock = new(Start);
    private readonly FakeSignatures _signatures = new();

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        Directory.Delete(_cuts, recursive: true);
    }

    private RequestVerifier Open(string folder, string? boot, bool fsync = true) =>
        new(new RequestVerifierOptions { NonceFilePath = Path.Combine(folder, "nonces"), BootId = () => boot, NonceFileSync = fsync }, _signatures, _clock);

    private static Metadata Call(string ss58, int ms) => Headers(NonceAt(Start.AddMilliseconds(ms)), ss58);

    // Accepted with its nonce written on the calling thread (inside its caller's reservation: no fsync, no wait).
    private static void AcceptedAtOnce(RequestVerifier v, Metadata call)
    {
        var pending = v.VerifyAsync(call);
        Assert.True(pending.IsCompletedSuccessfully, "the call's nonce write waited");
        Assert.True(pending.Result.IsAccepted, pending.Result.Reason);
    }

    [Fact]
    public async Task While_a_rotation_writes_its_snapshot_the_calls_are_written_at_once_and_a_crash_then_reopens_none_of_them()
    {
        var v = Open(_dir, "boot-a");
        var answered = new List<Metadata> { Call(Alice, 0), Call(Bob, 0) };
        foreach (var c in answered) Assert.True(v.Verify(c).IsAccepted); // first calls: reservations, fsynced
        foreach (var c in new[] { Call(Alice, 1), Call(Bob, 1) })
        {
            AcceptedAtOnce(v, c); // written, not fsynced
            answered.Add(c);
        }
        using var hold = new ManualResetEventSlim(false);
        var switched = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        v.Journal!.HoldRotation = hold;
        v.Journal.AfterSwitch = () => switched.TrySetResult();
        v.Flush();
        await switched.Task.WaitAsync(TimeSpan.FromSeconds(60));

        // The snapshot is held (as a slow disk's fsyncs hold it): the calls go on, written into the other file.
        var syncs = v.Journal.Syncs;
        for (var i = 2; i <= 6; i++)
        {
            foreach (var ss58 in new[] { Alice, Bob })
            {
                var c = Call(ss58, i);
                AcceptedAtOnce(v, c);
                answered.Add(c);
            }
        }
        Assert.Equal(syncs, v.Journal.Syncs); // inside the reservations the rotation carried over: no fsync
        Assert.Equal(0, v.Journal.Rotations);
        var active = v.Journal.ActiveFile;
        var old = v.Journal.StandbyFile;
        Assert.NotEqual(active.Path, old.Path);
        v.SimulateCrash(afterCrashMarked: hold.Set); // killed before the snapshot: both files full

        // Same boot (the process died): every written line is there.
        CopyTo(_dir, Path.Combine(_cuts, "same"));
        using (var restarted = Open(Path.Combine(_cuts, "same"), "boot-a", fsync: false))
        {
            foreach (var c in answered) Assert.False(restarted.Verify(c).IsAccepted);
            Assert.True(restarted.Verify(Call(Alice, 7)).IsAccepted);
        }
        // The machine went down: either file may have lost any part of what was not fsynced.
        AssertEveryCutRefuses(active, answered);
        AssertEveryCutRefuses(old, answered);
    }

    [Fact]
    public async Task A_caller_that_reserved_in_the_old_file_while_the_standby_was_prepared_reserves_again_in_the_new_one()
    {
        var v = Open(_dir, "boot-a");
        var answered = new List<Metadata> { Call(Alice, 0) };
        Assert.True(v.Verify(answered[0]).IsAccepted);
        var rotated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Bob's first call comes after the standby got its copy of the reservations, before the switch: his reservation
        // is in the old file only, which the rotation empties.
        v.Journal!.BeforeSwitch = () =>
        {
            var first = Call(Bob, 0);
            Assert.True(v.Verify(first).IsAccepted);
            answered.Add(first);
        };
        v.Journal.AfterSwitch = () => v.Journal.BeforeSwitch = null;
        v.Flush();
        v.Journal.WaitIdle();
        Assert.Equal(1, v.Journal.Rotations);
        var syncs = v.Journal.Syncs;

        var second = Call(Bob, 1);
        Assert.True(v.Verify(second).IsAccepted);
        answered.Add(second);
        Assert.Equal(syncs + 1, v.Journal.Syncs); // reserved again, in the file appends go to now
        var alice = Call(Alice, 1);
        AcceptedAtOnce(v, alice); // carried over: no fsync
        answered.Add(alice);
        Assert.Equal(syncs + 1, v.Journal.Syncs);
        var active = v.Journal.ActiveFile;
        var old = v.Journal.StandbyFile;
        v.SimulateCrash();
        Assert.Equal(0, new FileInfo(old.Path).Length); // emptied once the snapshot held it

        AssertEveryCutRefuses(active, answered);
    }

    [Fact]
    public void Rotations_alternate_the_two_files_and_a_restart_after_each_refuses_every_answered_nonce()
    {
        var v = Open(_dir, "boot-a");
        var answered = new List<Metadata>();
        var paths = new HashSet<string>();
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < 4; i++)
            {
                var c = Call(i % 2 == 0 ? Alice : Bob, (round * 10) + i);
                Assert.True(v.Verify(c).IsAccepted);
                answered.Add(c);
            }
            paths.Add(v.Journal!.ActiveFile.Path);
            v.Flush();
            v.Journal.WaitIdle();
            Assert.Equal(round + 1, v.Journal.Rotations);
        }
        Assert.Equal(2, paths.Count);
        v.SimulateCrash();
        foreach (var boot in new[] { "boot-a", "boot-b" })
        {
            var copy = Path.Combine(_cuts, boot);
            CopyTo(_dir, copy);
            using var restarted = Open(copy, boot, fsync: false);
            foreach (var c in answered) Assert.False(restarted.Verify(c).IsAccepted);
        }
    }

    // For every length of `file` from its fsynced part to its end (a power loss keeps what was fsynced and any prefix of
    // the rest), reopens a copy of the store under another boot: no answered call may pass again.
    private void AssertEveryCutRefuses((string Path, long Synced) file, IReadOnlyList<Metadata> answered)
    {
        var length = new FileInfo(file.Path).Length;
        Assert.True(file.Synced > 0 && file.Synced <= length, $"synced {file.Synced} of {length}");
        Assert.True(length > file.Synced, "nothing unsynced to cut"); // the test must cut something
        var name = Path.GetFileName(file.Path);
        for (var cut = file.Synced; cut <= length; cut++)
        {
            var copy = Path.Combine(_cuts, $"{name}-{cut}");
            CopyTo(_dir, copy);
            using (var f = new FileStream(Path.Combine(copy, name), FileMode.Open, FileAccess.Write)) f.SetLength(cut);
            using (var rebooted = Open(copy, "boot-b", fsync: false))
            {
                foreach (var c in answered)
                    Assert.False(rebooted.Verify(c).IsAccepted, $"{name} cut at byte {cut} of {length} reopened {c.GetValue(AuthHeaders.SignatureName)}");
            }
            Directory.Delete(copy, recursive: true);
        }
    }

    private static void CopyTo(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}

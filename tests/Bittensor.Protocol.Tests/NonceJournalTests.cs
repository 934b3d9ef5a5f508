namespace Bittensor.Protocol.Tests;

/// <summary>
/// The nonce journal's writes without large objects (session 13): a compaction of thousands of callers and a batch of
/// thousands of nonces allocate, on the thread that runs them, less than one large-object-heap object's threshold
/// (85,000 bytes) in all, so none of it can have gone to the LOH; until session 13 each built its whole text as a
/// string and a byte array (several hundred KB on the LOH per compaction). Counted with the thread's allocation
/// counter, never timed. The files they write load back to the same store.
/// </summary>
public sealed class NonceJournalTests : IDisposable
{
    private const int LargeObjectThreshold = 85_000;
    private readonly string _dir = TempDir.Create();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // 48 characters, as an ss58 address.
    private static string Caller(int i) => $"5Caller{i:D8}".PadRight(48, 'x');

    private static NonceJournal.SnapshotSource SourceOf(NonceStore store) => (ref (string Ss58, long NonceTicks)[] entries) =>
    {
        lock (store) return store.CopyTo(ref entries);
    };

    [Fact]
    public void A_compaction_of_five_thousand_callers_allocates_no_large_object_and_writes_what_serialize_would()
    {
        const int callers = 5_000;
        var path = Path.Combine(_dir, "nonces");
        var store = new NonceStore(100_000);
        for (var i = 0; i < callers; i++) store.Record(Caller(i), 1_000_000 + i, 0, 0);
        using var journal = NonceJournal.Open(path, fsync: false, new NonceStore(100_000), 0, SourceOf(store));

        journal.CompactNow(); // the kept copy of the entries has its size now (it grew once, as in a running axon)
        var before = GC.GetAllocatedBytesForCurrentThread();
        var size = journal.CompactNow();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The snapshot is ~285 KB (as UTF-16 text ~570 KB): the old string, and its bytes, were each on the LOH.
        Assert.True(size > 3 * LargeObjectThreshold, $"snapshot of {size} bytes");
        Assert.True(allocated < LargeObjectThreshold, $"a compaction allocated {allocated} bytes on its thread");

        // Byte for byte what NonceStore.Serialize writes, and it loads back to every caller.
        Assert.Equal(NonceStore.Serialize(store.Snapshot()), File.ReadAllText(path));
        Assert.Equal(size, new FileInfo(path).Length);
        var loaded = new NonceStore(100_000);
        loaded.Load(File.ReadAllText(path), 0);
        Assert.Equal(callers, loaded.Count);
        Assert.False(loaded.IsFresh(Caller(4_321), 1_000_000 + 4_321, 0));
        Assert.True(loaded.IsFresh(Caller(4_321), 1_000_000 + 4_321 + TimeSpan.TicksPerMillisecond, 0));
    }

    [Fact]
    public void A_batch_of_three_thousand_nonces_is_written_without_a_large_object_and_replays_after_a_crash()
    {
        const int callers = 3_000;
        var path = Path.Combine(_dir, "nonces");
        var store = new NonceStore(100_000);
        var journal = NonceJournal.Open(path, fsync: false, new NonceStore(100_000), 0, SourceOf(store));
        var names = Enumerable.Range(0, callers).Select(Caller).ToArray();

        // A first batch of the same size: the journal's buffers reach their size, as after an axon's first seconds.
        for (var i = 0; i < callers; i++) _ = journal.Append(names[i], 1_000_000 + i);
        journal.Commit();
        journal.WaitIdle();

        var tasks = new Task[callers];
        for (var i = 0; i < callers; i++) tasks[i] = journal.Append(names[i], 2_000_000 + i);
        var batches = journal.BatchesWritten;
        // Without fsync no batch carries a reservation, so Commit writes it on this thread.
        var before = GC.GetAllocatedBytesForCurrentThread();
        journal.Commit();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        journal.WaitIdle();

        Assert.Equal(batches + 1, journal.BatchesWritten);
        Assert.All(tasks, t => Assert.True(t.IsCompletedSuccessfully));
        Assert.True(allocated < LargeObjectThreshold, $"writing a batch of {callers} nonces allocated {allocated} bytes on its thread");

        // Killed: the journal alone holds the second batch, and a restart reads every nonce of it.
        journal.SimulateCrash();
        var restarted = new NonceStore(100_000);
        using var reopened = NonceJournal.Open(path, fsync: false, restarted, 0, SourceOf(restarted));
        Assert.Equal(callers, restarted.Count);
        Assert.False(restarted.IsFresh(names[1_234], 2_000_000 + 1_234, 0));
        Assert.True(restarted.IsFresh(names[1_234], 2_000_000 + 1_234 + TimeSpan.TicksPerMillisecond, 0));
    }
}

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// CI's fuzz run (issue 13 B): each target over its seed corpus (Corpus/&lt;target&gt;/, including the regressions/
/// inputs of every finding fixed so far) and a fixed, seeded number of mutations. Fails on a crash (an exception the
/// target does not expect) or a hang, printing the input as base64 (save it under Corpus/&lt;target&gt;/regressions/ and
/// replay it with <c>dotnet Bittensor.Fuzz.Tests.dll repro TARGET FILE</c>). BT_FUZZ_SCALE=N runs N× the mutations.
/// </summary>
public sealed class FuzzTests
{
    public static TheoryData<string> Targets => [.. FuzzTargets.Names];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Target_survives_its_corpus_and_seeded_mutations(string name)
    {
        var target = FuzzTargets.Get(name);
        var scale = int.TryParse(Environment.GetEnvironmentVariable("BT_FUZZ_SCALE"), out var s) && s > 0 ? s : 1;
        var report = FuzzDriver.Run(target, FuzzDriver.Corpus(name), target.Iterations * scale, seed: 13, hangAfter: TimeSpan.FromMinutes(2));
        Assert.True(report.Clean, report.ToString());
        Assert.True(report.Executions > target.Iterations * scale, report.ToString());
    }

    [Fact]
    public void Every_target_has_a_seed_corpus_in_the_repository()
    {
        foreach (var name in FuzzTargets.Names)
            Assert.True(Directory.Exists(Path.Combine(AppContext.BaseDirectory, "Corpus", name)) &&
                        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Corpus", name)).Length > 0, $"no seeds for {name}");
    }

    [Fact]
    public void The_driver_reports_a_crash_with_its_input()
    {
        var target = new FuzzTarget("boom", input => { if (input.Length > 0 && input[0] == 0x42) throw new IndexOutOfRangeException(); }, 16, 10);
        var report = FuzzDriver.Run(target, [[0x41], [0x42, 0x43]], 10, seed: 1, hangAfter: TimeSpan.FromMinutes(2));
        Assert.False(report.Clean);
        Assert.IsType<IndexOutOfRangeException>(report.Failure);
        Assert.Equal(new byte[] { 0x42, 0x43 }, report.Input);
    }

    [Fact]
    public void The_driver_reports_a_hang()
    {
        using var release = new ManualResetEventSlim();
        var target = new FuzzTarget("hang", input => { if (input.Length > 0) release.Wait(); }, 16, 10);
        var report = FuzzDriver.Run(target, [[1]], 0, seed: 1, hangAfter: TimeSpan.FromMilliseconds(200));
        release.Set();
        Assert.True(report.Hung);
        Assert.Equal(new byte[] { 1 }, report.Input);
    }
}

using Bittensor.Actors.Metagraph;
using Bittensor.Actors.Tests.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Tests.Metagraph;

public sealed class MetagraphStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-mg-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static MetagraphSnapshot Sample(int n = 5) => MetagraphSnapshot.FromNeurons("local", 1, 77, TestNeurons.Many(n));

    [Fact]
    public void A_saved_snapshot_loads_back_identical()
    {
        var s = Sample();
        var path = MetagraphStore.DefaultPath(_dir, "local", 1);
        MetagraphStore.Save(s, path);
        var back = MetagraphStore.Load(path);

        Assert.Equal(("local", (ushort)1, 77ul, 5), (back.Network, back.Netuid, back.Block, back.N));
        Assert.Equal(s.HotkeyIds.ToArray(), back.HotkeyIds.ToArray());
        Assert.Equal(s.ColdkeyIds.ToArray(), back.ColdkeyIds.ToArray());
        Assert.Equal(s.StakeRao.ToArray(), back.StakeRao.ToArray());
        Assert.Equal(s.S.ToArray(), back.S.ToArray());
        Assert.Equal(s.RankU16.ToArray(), back.RankU16.ToArray());
        Assert.Equal(s.TrustU16.ToArray(), back.TrustU16.ToArray());
        Assert.Equal(s.ConsensusU16.ToArray(), back.ConsensusU16.ToArray());
        Assert.Equal(s.IncentiveU16.ToArray(), back.IncentiveU16.ToArray());
        Assert.Equal(s.DividendsU16.ToArray(), back.DividendsU16.ToArray());
        Assert.Equal(s.ValidatorTrustU16.ToArray(), back.ValidatorTrustU16.ToArray());
        Assert.Equal(s.EmissionRao.ToArray(), back.EmissionRao.ToArray());
        Assert.Equal(s.ValidatorPermit.ToArray(), back.ValidatorPermit.ToArray());
        Assert.Equal(s.Active.ToArray(), back.Active.ToArray());
        Assert.Equal(s.LastUpdate.ToArray(), back.LastUpdate.ToArray());
        Assert.Equal(s.Endpoints.ToArray(), back.Endpoints.ToArray());
        Assert.Equal(s.W.Select(r => r.ToArray()), back.W.Select(r => r.ToArray()));
        Assert.Equal(s.B.Select(r => r.ToArray()), back.B.Select(r => r.ToArray()));
    }

    [Fact]
    public void Saving_leaves_no_temp_files_and_a_private_file_in_a_private_folder()
    {
        var path = MetagraphStore.DefaultPath(_dir, "local", 3);
        MetagraphStore.Save(Sample(), path);
        MetagraphStore.Save(Sample(2), path);
        Assert.Equal(new[] { "netuid3.bin" }, Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        Assert.Equal(2, MetagraphStore.Load(path).N);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        }
    }

    [Fact]
    public void Every_truncation_and_every_flipped_byte_is_detected_as_corrupt()
    {
        var bytes = MetagraphStore.Encode(Sample(3));
        for (var len = 0; len < bytes.Length; len += 7)
            Assert.Throws<InvalidDataException>(() => MetagraphStore.Decode(bytes.AsSpan(0, len)));
        for (var i = 0; i < bytes.Length; i += 5)
        {
            var copy = (byte[])bytes.Clone();
            copy[i] ^= 0x40;
            Assert.Throws<InvalidDataException>(() => MetagraphStore.Decode(copy));
        }
    }

    [Fact]
    public void Garbage_and_missing_files_give_clear_errors()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "x.bin");
        File.WriteAllText(path, "{ not a snapshot }");
        Assert.Contains("bad magic", Assert.Throws<InvalidDataException>(() => MetagraphStore.Load(path)).Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => MetagraphStore.Load(Path.Combine(_dir, "none.bin")));
    }

    [Fact]
    public void Network_names_that_are_not_folder_names_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => MetagraphStore.DefaultPath(_dir, "../etc", 1));
        Assert.Throws<ArgumentException>(() => MetagraphStore.DefaultPath(_dir, "..", 1));
        Assert.EndsWith(Path.Combine("finney", "netuid42.bin"), MetagraphStore.DefaultPath(_dir, "finney", 42), StringComparison.Ordinal);
    }

    [Fact]
    public void The_snapshot_exposes_the_python_accessors()
    {
        var s = Sample(4);
        Assert.Equal(4, s.N);
        Assert.Equal(new ushort[] { 0, 1, 2, 3 }, s.Uids.ToArray());
        Assert.Equal(77ul, s.Block);
        Assert.Equal([0.0, 1.0, 2.0, 3.0], s.S.ToArray());
        Assert.Equal(3 / 65535.0, s.R[1], 12);
        Assert.Equal(13 / 65535.0, s.I[1], 12);
        Assert.Equal(1e-6, s.E[1], 12);
        Assert.Equal("none", s.Endpoints[0].ToString());
        Assert.Equal("10.0.0.2:8092", s.Endpoints[2].ToString());
        Assert.Equal(2, s.UidOf(TestNeurons.Key(3)));
        Assert.Equal(-1, s.UidOf(TestNeurons.Key(200)));
        var w = s.DenseWeights(2);
        Assert.Equal([1.0, 0, 100 / 65535.0, 0], w);
    }

    [Fact]
    public void Columns_of_different_lengths_are_refused()
    {
        var n = TestNeurons.Many(2);
        Assert.Throws<ArgumentException>(() => MetagraphSnapshot.FromNeurons("local", 1, 1, [n[1], n[0]]));
        Assert.Throws<ArgumentException>(() => new MetagraphSnapshot("local", 1, 1, [TestNeurons.Key(1)], [], [], [], [], [], [], [], [], [], [], [], [], [], [], []));
    }
}

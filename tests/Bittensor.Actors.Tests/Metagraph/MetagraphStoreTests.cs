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

    /// <summary>The chain the samples were read from.</summary>
    private static readonly string Genesis = MetagraphSnapshot.GenesisHex(Enumerable.Range(0, 32).Select(i => (byte)(0xa0 + i)).ToArray());

    private static MetagraphSnapshot Sample(int n = 5, string? genesis = null) =>
        MetagraphSnapshot.FromNeurons("local", 1, 77, TestNeurons.Many(n), genesis ?? Genesis);

    /// <summary>
    /// The bytes the first format (version 1: no genesis field) held for <paramref name="s"/>: today's encoding of the
    /// same snapshot without a genesis, its marker byte removed, the version set to 1 and the checksum recomputed.
    /// </summary>
    private static byte[] Version1(MetagraphSnapshot s)
    {
        var unknown = new MetagraphSnapshot(s.Network, s.Netuid, s.Block, s.HotkeyIds, s.ColdkeyIds, s.StakeRao, s.RankU16, s.TrustU16, s.ConsensusU16,
            s.IncentiveU16, s.DividendsU16, s.ValidatorTrustU16, s.EmissionRao, s.ValidatorPermit, s.Active, s.LastUpdate, s.Endpoints, s.W, s.B);
        var v2 = MetagraphStore.Encode(unknown);
        var marker = 4 + 2 + 2 + System.Text.Encoding.UTF8.GetByteCount(s.Network);
        Assert.Equal(0, v2[marker]); // "genesis not known"
        var body = v2[..marker].Concat(v2[(marker + 1)..^32]).ToArray();
        body[4] = 1;
        body[5] = 0;
        return [.. body, .. System.Security.Cryptography.SHA256.HashData(body)];
    }

    [Fact]
    public void A_snapshot_saved_before_the_genesis_field_still_loads_with_no_chain_named()
    {
        var s = Sample(3);
        var back = MetagraphStore.Decode(Version1(s));
        Assert.Null(back.GenesisHash);
        Assert.Equal(("local", (ushort)1, 77ul, 3), (back.Network, back.Netuid, back.Block, back.N));
        Assert.Equal(s.HotkeyIds.ToArray(), back.HotkeyIds.ToArray());
        Assert.Equal(s.W.Select(r => r.ToArray()), back.W.Select(r => r.ToArray()));
    }

    [Fact]
    public void A_snapshot_without_a_genesis_round_trips_as_not_known_and_a_bad_marker_is_refused()
    {
        var s = Sample(2);
        var unknown = MetagraphSnapshot.FromNeurons(s.Network, s.Netuid, s.Block, TestNeurons.Many(2));
        var bytes = MetagraphStore.Encode(unknown);
        Assert.Null(MetagraphStore.Decode(bytes).GenesisHash);
        var marker = 4 + 2 + 2 + "local".Length;
        bytes[marker] = 2;
        System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32), bytes.AsSpan(bytes.Length - 32));
        Assert.Contains("genesis marker", Assert.Throws<InvalidDataException>(() => MetagraphStore.Decode(bytes)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_genesis_hash_that_is_not_32_bytes_of_lowercase_hex_is_refused()
    {
        Assert.Throws<ArgumentException>(() => MetagraphSnapshot.GenesisHex(new byte[31]));
        Assert.Throws<ArgumentException>(() => Sample(1, "0x" + new string('A', 64)));
        Assert.Throws<ArgumentException>(() => Sample(1, new string('a', 66)));
        Assert.Throws<ArgumentException>(() => Sample(1, "0x" + new string('a', 62)));
    }

    [Fact]
    public void A_saved_snapshot_loads_back_identical()
    {
        var s = Sample();
        var path = MetagraphStore.DefaultPath(_dir, "local", 1);
        MetagraphStore.Save(s, path);
        var back = MetagraphStore.Load(path);

        Assert.Equal(("local", (ushort)1, 77ul, 5), (back.Network, back.Netuid, back.Block, back.N));
        Assert.Equal(Genesis, back.GenesisHash);
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

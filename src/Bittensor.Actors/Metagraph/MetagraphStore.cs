using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Metagraph;

/// <summary>
/// Saves and loads <see cref="MetagraphSnapshot"/>s as compact binary files, atomically: written to a temp file in
/// the same folder (mode 0600, folder 0700), flushed, then renamed over the old file, so a crash leaves either the
/// old or the new snapshot, never a torn one. A SHA-256 trailer detects truncation and corruption on load.
/// </summary>
/// <remarks>
/// Layout (little-endian): "BTMG", u16 version (2), network (u16 length + UTF-8), genesis (u8 0 = not known, or 1
/// followed by the chain's 32-byte genesis hash; version 2 only), u16 netuid, u64 block, u32 n;
/// per uid: hotkey[32], coldkey[32], u64 stake, u16 rank, trust, consensus, incentive, dividends, validator_trust,
/// u64 emission, u8 flags (bit0 permit, bit1 active), u64 last_update, axon {u32 version, u128 ip, u8 ip_type,
/// u16 port, u8 protocol, u64 block}; then per uid a weights row and a bonds row (u32 count, count × (u16 uid,
/// u16 value)); then SHA-256 of everything before it. Binary rather than JSON because a dense n = 4096 subnet
/// has 16 M weight entries. Version 1 files (no genesis field) are still read: their snapshot's
/// <see cref="MetagraphSnapshot.GenesisHash"/> is null (chain not known), which <see cref="MetagraphActor"/> never serves.
/// </remarks>
public static class MetagraphStore
{
    /// <summary>Largest file <see cref="Load"/> accepts (bounds the allocation for a hostile or damaged file).</summary>
    public const long MaxFileBytes = 1L << 30;

    private static readonly byte[] Magic = "BTMG"u8.ToArray();
    private const ushort Version = 2;

    /// <summary>The first format, without the genesis field: still read.</summary>
    private const ushort VersionWithoutGenesis = 1;
    private const int PerUidFixed = 32 + 32 + 8 + 6 * 2 + 8 + 1 + 8 + (4 + 16 + 1 + 2 + 1 + 8);

    /// <summary>The default file of a subnet's snapshot: <c>&lt;root&gt;/&lt;network&gt;/netuid&lt;N&gt;.bin</c>.</summary>
    public static string DefaultPath(string root, string network, ushort netuid)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(network);
        if (network.Length == 0 || network.IndexOfAny(['/', '\\', '\0']) >= 0 || network is "." or "..")
            throw new ArgumentException($"network name '{network}' cannot be used as a folder name");
        return Path.Combine(root, network, $"netuid{netuid}.bin");
    }

    /// <summary>Encodes a snapshot to bytes (format above).</summary>
    public static byte[] Encode(MetagraphSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var net = Encoding.UTF8.GetBytes(snapshot.Network);
        if (net.Length > 256) throw new ArgumentException("network name longer than 256 bytes");
        var genesis = snapshot.GenesisHash is { } g ? Convert.FromHexString(g.AsSpan(2)) : Array.Empty<byte>();
        long size = 4 + 2 + 2 + net.Length + 1 + genesis.Length + 2 + 8 + 4 + (long)snapshot.N * (PerUidFixed + 8) + 32;
        for (var i = 0; i < snapshot.N; i++) size += 4L * (snapshot.W[i].Length + snapshot.B[i].Length);
        if (size > MaxFileBytes) throw new ArgumentException($"snapshot of {size} bytes exceeds the {MaxFileBytes}-byte limit");

        var buf = new byte[size];
        var w = new Writer(buf);
        w.Bytes(Magic);
        w.U16(Version);
        w.U16((ushort)net.Length);
        w.Bytes(net);
        w.U8(genesis.Length == 0 ? (byte)0 : (byte)1);
        w.Bytes(genesis);
        w.U16(snapshot.Netuid);
        w.U64(snapshot.Block);
        w.U32((uint)snapshot.N);
        for (var i = 0; i < snapshot.N; i++)
        {
            snapshot.HotkeyIds[i].CopyTo(w.Take(32));
            snapshot.ColdkeyIds[i].CopyTo(w.Take(32));
            w.U64(snapshot.StakeRao[i]);
            w.U16(snapshot.RankU16[i]);
            w.U16(snapshot.TrustU16[i]);
            w.U16(snapshot.ConsensusU16[i]);
            w.U16(snapshot.IncentiveU16[i]);
            w.U16(snapshot.DividendsU16[i]);
            w.U16(snapshot.ValidatorTrustU16[i]);
            w.U64(snapshot.EmissionRao[i]);
            w.U8((byte)((snapshot.ValidatorPermit[i] ? 1 : 0) | (snapshot.Active[i] ? 2 : 0)));
            w.U64(snapshot.LastUpdate[i]);
            var a = snapshot.Endpoints[i].Axon;
            w.U32(a.Version);
            w.U64((ulong)a.Ip);
            w.U64((ulong)(a.Ip >> 64));
            w.U8(a.IpType);
            w.U16(a.Port);
            w.U8(a.Protocol);
            w.U64(a.Block);
        }
        foreach (var rows in new[] { snapshot.W, snapshot.B })
            foreach (var row in rows)
            {
                w.U32((uint)row.Length);
                foreach (var e in row)
                {
                    w.U16(e.Uid);
                    w.U16(e.Value);
                }
            }
        SHA256.HashData(buf.AsSpan(0, w.Position), w.Take(32));
        return buf;
    }

    /// <summary>Decodes bytes written by <see cref="Encode"/>; throws <see cref="InvalidDataException"/> on any damage.</summary>
    public static MetagraphSnapshot Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 4 && !data[..4].SequenceEqual(Magic)) throw new InvalidDataException("not a metagraph snapshot file (bad magic)");
        if (data.Length < 4 + 2 + 2 + 2 + 8 + 4 + 32) throw new InvalidDataException("metagraph file is too short");
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(data[..^32], hash);
        if (!hash.SequenceEqual(data[^32..])) throw new InvalidDataException("metagraph file is corrupt (checksum mismatch)");

        var r = new Reader(data[..^32]);
        r.Skip(4);
        var version = r.U16();
        if (version is not (Version or VersionWithoutGenesis)) throw new InvalidDataException($"unsupported metagraph file version {version}");
        var network = Encoding.UTF8.GetString(r.Take(r.U16()));
        string? genesis = null;
        if (version >= Version)
        {
            var known = r.U8();
            if (known > 1) throw new InvalidDataException($"metagraph file has a bad genesis marker {known}");
            if (known == 1) genesis = MetagraphSnapshot.GenesisHex(r.Take(32));
        }
        var netuid = r.U16();
        var block = r.U64();
        var n = r.U32();
        if (n > 65_536 || (long)n * PerUidFixed > r.Remaining) throw new InvalidDataException($"metagraph file claims {n} uids but is too short");
        var count = (int)n;
        var hot = new AccountId[count];
        var cold = new AccountId[count];
        var stake = new ulong[count];
        var rank = new ushort[count];
        var trust = new ushort[count];
        var cons = new ushort[count];
        var inc = new ushort[count];
        var div = new ushort[count];
        var vtrust = new ushort[count];
        var emission = new ulong[count];
        var permit = new bool[count];
        var active = new bool[count];
        var last = new ulong[count];
        var endpoints = new Endpoint[count];
        for (var i = 0; i < count; i++)
        {
            hot[i] = new AccountId(r.Take(32));
            cold[i] = new AccountId(r.Take(32));
            stake[i] = r.U64();
            rank[i] = r.U16();
            trust[i] = r.U16();
            cons[i] = r.U16();
            inc[i] = r.U16();
            div[i] = r.U16();
            vtrust[i] = r.U16();
            emission[i] = r.U64();
            var flags = r.U8();
            permit[i] = (flags & 1) != 0;
            active[i] = (flags & 2) != 0;
            last[i] = r.U64();
            var av = r.U32();
            var lo = r.U64();
            var hi = r.U64();
            var ipType = r.U8();
            var port = r.U16();
            var protocol = r.U8();
            var ablock = r.U64();
            endpoints[i] = new Endpoint((ushort)i, hot[i], cold[i], new AxonInfo(ablock, av, new UInt128(hi, lo), port, ipType, protocol));
        }
        var weights = ReadRows(ref r, count);
        var bonds = ReadRows(ref r, count);
        if (r.Remaining != 0) throw new InvalidDataException("metagraph file has trailing bytes");
        return new MetagraphSnapshot(network, netuid, block, [.. hot], [.. cold], [.. stake], [.. rank], [.. trust], [.. cons],
            [.. inc], [.. div], [.. vtrust], [.. emission], [.. permit], [.. active], [.. last], [.. endpoints], weights, bonds, genesis);
    }

    /// <summary>
    /// Writes the snapshot to <paramref name="path"/> atomically (temp file in the same folder, fsync, rename).
    /// Creates the folder with mode 0700 and the file with mode 0600.
    /// </summary>
    public static void Save(MetagraphSnapshot snapshot, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = Encode(snapshot);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(dir);
            else Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var fs = new FileStream(tmp, options))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Reads a snapshot; throws <see cref="InvalidDataException"/> when the file is damaged or too large.</summary>
    public static MetagraphSnapshot Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"no metagraph snapshot at {path}", path);
        if (info.Length > MaxFileBytes) throw new InvalidDataException($"metagraph file {path} is larger than {MaxFileBytes} bytes");
        return Decode(File.ReadAllBytes(path));
    }

    private static ImmutableArray<ImmutableArray<UidWeight>> ReadRows(ref Reader r, int n)
    {
        var rows = ImmutableArray.CreateBuilder<ImmutableArray<UidWeight>>(n);
        for (var i = 0; i < n; i++)
        {
            var len = r.U32();
            if (len > n || len * 4L > r.Remaining) throw new InvalidDataException($"metagraph row {i} claims {len} entries");
            var row = new UidWeight[len];
            for (var j = 0; j < len; j++)
            {
                var uid = r.U16();
                if (uid >= n) throw new InvalidDataException($"metagraph row {i} points at uid {uid} of {n}");
                row[j] = new UidWeight(uid, r.U16());
            }
            rows.Add(ImmutableArray.Create(row));
        }
        return rows.MoveToImmutable();
    }

    private ref struct Writer(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;
        public int Position { get; private set; }

        public Span<byte> Take(int count)
        {
            var s = _buffer.Slice(Position, count);
            Position += count;
            return s;
        }

        public void Bytes(ReadOnlySpan<byte> b) => b.CopyTo(Take(b.Length));
        public void U8(byte v) => Take(1)[0] = v;
        public void U16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), v);
        public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), v);
        public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public readonly int Remaining => _data.Length - _pos;

        public ReadOnlySpan<byte> Take(int count)
        {
            if (count > Remaining) throw new InvalidDataException("metagraph file is truncated");
            var s = _data.Slice(_pos, count);
            _pos += count;
            return s;
        }

        public void Skip(int count) => Take(count);
        public byte U8() => Take(1)[0];
        public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
    }
}

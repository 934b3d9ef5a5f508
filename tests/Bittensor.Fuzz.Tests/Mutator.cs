namespace Bittensor.Fuzz.Tests;

/// <summary>
/// A coverage-less mutator (AFL's havoc stage in small): bit flips, interesting values, inserts, deletes, duplicated
/// ranges, splices with another corpus entry and dictionary tokens, stacked 1–8 per input. Seeded: a run is repeatable.
/// </summary>
internal sealed class Mutator(Random random, IReadOnlyList<byte[]> corpus, IReadOnlyList<byte[]> dictionary, int maxLength)
{
    private static readonly byte[] Interesting8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0x64, 0xc0, 0xc1, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, (byte)'"', (byte)'\\', (byte)'{', (byte)'['];

    public byte[] Next()
    {
        var data = new List<byte>(corpus[random.Next(corpus.Count)]);
        var rounds = 1 << random.Next(4);
        for (var i = 0; i < rounds; i++) MutateOnce(data);
        if (data.Count > maxLength) data.RemoveRange(maxLength, data.Count - maxLength);
        return [.. data];
    }

    private void MutateOnce(List<byte> d)
    {
        switch (random.Next(11))
        {
            case 0 when d.Count > 0: // flip a bit
                var i = random.Next(d.Count);
                d[i] ^= (byte)(1 << random.Next(8));
                break;
            case 1 when d.Count > 0: // interesting byte
                d[random.Next(d.Count)] = Interesting8[random.Next(Interesting8.Length)];
                break;
            case 2 when d.Count > 0: // random byte
                d[random.Next(d.Count)] = (byte)random.Next(256);
                break;
            case 3 when d.Count > 3: // interesting 32-bit value, little or big endian
                var at = random.Next(d.Count - 3);
                uint v = random.Next(5) switch { 0 => 0, 1 => uint.MaxValue, 2 => int.MaxValue, 3 => 0x8000_0000, _ => (uint)random.Next(1 << 16) };
                var bytes = BitConverter.GetBytes(v);
                if (random.Next(2) == 0) Array.Reverse(bytes);
                for (var k = 0; k < 4; k++) d[at + k] = bytes[k];
                break;
            case 4: // insert random bytes
                var n = 1 + random.Next(16);
                var pos = random.Next(d.Count + 1);
                var ins = new byte[n];
                random.NextBytes(ins);
                d.InsertRange(pos, ins);
                break;
            case 5 when d.Count > 1: // delete a range
                var start = random.Next(d.Count);
                d.RemoveRange(start, 1 + random.Next(Math.Min(32, d.Count - start)));
                break;
            case 6 when d.Count > 1: // duplicate a range
                var s = random.Next(d.Count);
                var len = 1 + random.Next(Math.Min(64, d.Count - s));
                d.InsertRange(random.Next(d.Count + 1), d.GetRange(s, len));
                break;
            case 7 when corpus.Count > 1: // splice with another entry
                var other = corpus[random.Next(corpus.Count)];
                if (other.Length == 0) break;
                var cut = random.Next(d.Count + 1);
                var from = random.Next(other.Length);
                d.RemoveRange(cut, d.Count - cut);
                d.AddRange(other.AsSpan(from).ToArray());
                break;
            case 8 when dictionary.Count > 0: // insert a token
                d.InsertRange(random.Next(d.Count + 1), dictionary[random.Next(dictionary.Count)]);
                break;
            case 9 when dictionary.Count > 0 && d.Count > 0: // overwrite with a token
                var t = dictionary[random.Next(dictionary.Count)];
                var o = random.Next(d.Count);
                for (var k = 0; k < t.Length && o + k < d.Count; k++) d[o + k] = t[k];
                break;
            case 10 when d.Count > 0: // truncate
                var keep = random.Next(d.Count);
                d.RemoveRange(keep, d.Count - keep);
                break;
        }
    }
}

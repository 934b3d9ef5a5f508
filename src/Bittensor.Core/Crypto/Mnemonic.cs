using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Bittensor.Core.Crypto;

/// <summary>BIP39 English mnemonics with Substrate's entropy-based mini secret.</summary>
public static class Bip39
{
    private static readonly Lazy<(string[] Words, Dictionary<string, int> Index)> WordList = new(LoadWordList);

    /// <summary>The 2048-word BIP-39 English list, in order.</summary>
    public static IReadOnlyList<string> EnglishWords => WordList.Value.Words;

    /// <summary>A new mnemonic of 12, 15, 18, 21 or 24 words from the OS CSPRNG.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Any other word count.</exception>
    public static string Generate(int words = 12)
    {
        if (words is not (12 or 15 or 18 or 21 or 24))
            throw new ArgumentOutOfRangeException(nameof(words), words, "a mnemonic has 12, 15, 18, 21 or 24 words");
        Span<byte> entropy = stackalloc byte[words * 4 / 3];
        RandomNumberGenerator.Fill(entropy);
        try { return FromEntropy(entropy); }
        finally { CryptographicOperations.ZeroMemory(entropy); }
    }

    /// <summary>Entropy (16, 20, 24, 28 or 32 bytes) → mnemonic with its SHA-256 checksum.</summary>
    /// <exception cref="ArgumentException">Other entropy lengths.</exception>
    public static string FromEntropy(ReadOnlySpan<byte> entropy)
    {
        if (entropy.Length is < 16 or > 32 || entropy.Length % 4 != 0)
            throw new ArgumentException("BIP-39 entropy must be 16, 20, 24, 28 or 32 bytes", nameof(entropy));
        var words = WordList.Value.Words;
        var entBits = entropy.Length * 8;
        var csBits = entBits / 32;
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(entropy, hash);
        Span<byte> bits = stackalloc byte[33];
        entropy.CopyTo(bits);
        bits[entropy.Length] = hash[0];
        var count = (entBits + csBits) / 11;
        var sb = new StringBuilder(count * 9);
        for (var w = 0; w < count; w++)
        {
            var index = 0;
            for (var b = 0; b < 11; b++)
            {
                var bit = w * 11 + b;
                index = (index << 1) | ((bits[bit >> 3] >> (7 - (bit & 7))) & 1);
            }
            if (w > 0) sb.Append(' ');
            sb.Append(words[index]);
        }
        CryptographicOperations.ZeroMemory(bits);
        return sb.ToString();
    }

    /// <summary>Mnemonic → entropy; throws <see cref="FormatException"/> on unknown words, bad count or checksum.</summary>
    public static byte[] ToEntropy(string mnemonic)
    {
        if (!TryToEntropy(mnemonic, out var entropy, out var error)) throw new FormatException(error);
        return entropy;
    }

    /// <summary>True when the words, their count and the checksum are valid.</summary>
    public static bool IsValid(string mnemonic)
    {
        if (!TryToEntropy(mnemonic, out var entropy, out _)) return false;
        CryptographicOperations.ZeroMemory(entropy);
        return true;
    }

    /// <summary>Substrate's mini secret: PBKDF2-HMAC-SHA512(entropy, "mnemonic"+passphrase, 2048)[0..32].</summary>
    /// <exception cref="FormatException">The mnemonic is not valid.</exception>
    public static byte[] ToMiniSecret(string mnemonic, string passphrase = "")
    {
        var entropy = ToEntropy(mnemonic);
        try { return EntropyToMiniSecret(entropy, passphrase); }
        finally { CryptographicOperations.ZeroMemory(entropy); }
    }

    /// <summary>
    /// substrate-bip39's <c>mini_secret_from_entropy</c>: PBKDF2-HMAC-SHA512 with the entropy as password and
    /// "mnemonic"+passphrase (UTF-8, not normalised, as Substrate and polkadot-js do) as salt, 2048 rounds;
    /// the first 32 of the 64 output bytes.
    /// </summary>
    public static byte[] EntropyToMiniSecret(ReadOnlySpan<byte> entropy, string passphrase = "")
    {
        ArgumentNullException.ThrowIfNull(passphrase);
        if (entropy.Length is < 16 or > 32 || entropy.Length % 4 != 0)
            throw new ArgumentException("BIP-39 entropy must be 16, 20, 24, 28 or 32 bytes", nameof(entropy));
        var salt = Encoding.UTF8.GetBytes("mnemonic" + passphrase);
        Span<byte> seed = stackalloc byte[64];
        try
        {
            Rfc2898DeriveBytes.Pbkdf2(entropy, salt, seed, 2048, HashAlgorithmName.SHA512);
            return seed[..32].ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            CryptographicOperations.ZeroMemory(salt);
        }
    }

    private static bool TryToEntropy(string? mnemonic, out byte[] entropy, out string error)
    {
        entropy = [];
        if (mnemonic is null) { error = "mnemonic is missing"; return false; }
        // 24 words of at most 8 letters plus separators fit easily; refuse hostile sizes before splitting.
        if (mnemonic.Length > 1024) { error = "mnemonic is too long"; return false; }
        var words = Normalise(mnemonic).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (words.Length is not (12 or 15 or 18 or 21 or 24))
        {
            error = $"a mnemonic has 12, 15, 18, 21 or 24 words (this one has {words.Length})";
            return false;
        }
        var index = WordList.Value.Index;
        var totalBits = words.Length * 11;
        var csBits = totalBits / 33;
        var entBytes = (totalBits - csBits) / 8;
        Span<byte> bits = stackalloc byte[33];
        bits.Clear();
        for (var w = 0; w < words.Length; w++)
        {
            // The message names the position only: mnemonic words are secret.
            if (!index.TryGetValue(words[w], out var value))
            {
                error = $"word #{w + 1} of the mnemonic is not in the BIP-39 English list";
                return false;
            }
            for (var b = 0; b < 11; b++)
            {
                if (((value >> (10 - b)) & 1) == 0) continue;
                var bit = w * 11 + b;
                bits[bit >> 3] |= (byte)(0x80 >> (bit & 7));
            }
        }
        var result = bits[..entBytes].ToArray();
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(result, hash);
        var mask = (byte)(0xFF << (8 - csBits));
        var ok = (hash[0] & mask) == (bits[entBytes] & mask);
        CryptographicOperations.ZeroMemory(bits);
        if (!ok)
        {
            CryptographicOperations.ZeroMemory(result);
            error = "the mnemonic checksum does not match (a word is wrong or out of order)";
            return false;
        }
        entropy = result;
        error = "";
        return true;
    }

    /// <summary>
    /// NFKD, lower case. Under invariant globalisation .NET has no ICU and <see cref="string.Normalize()"/>
    /// leaves non-ASCII text alone, so the compatibility forms that matter in practice (full-width Latin letters
    /// and the ideographic space from CJK input methods) are folded by hand.
    /// </summary>
    internal static string Normalise(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text.Normalize(NormalizationForm.FormKD))
        {
            if (c is >= '\uFF01' and <= '\uFF5E') sb.Append((char)(c - 0xFEE0));
            else if (c == '\u3000') sb.Append(' ');
            else sb.Append(c);
        }
        return sb.ToString().ToLowerInvariant();
    }

    private static (string[] Words, Dictionary<string, int> Index) LoadWordList()
    {
        using var stream = typeof(Bip39).Assembly.GetManifestResourceStream("Bittensor.Core.Crypto.bip39-english.txt")
            ?? throw new InvalidOperationException("the embedded BIP-39 word list is missing");
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var words = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length != 2048) throw new InvalidOperationException("the embedded BIP-39 word list does not have 2048 words");
        var index = new Dictionary<string, int>(2048, StringComparer.Ordinal);
        for (var i = 0; i < words.Length; i++) index[words[i]] = i;
        return (words, index);
    }
}

/// <summary>Substrate secret URIs: <c>phrase[/soft|//hard]*[///password]</c>, <c>//Alice</c>, <c>0x&lt;mini&gt;</c>.</summary>
public static class SecretUri
{
    /// <summary>The public development phrase used when a URI starts with '/'.</summary>
    public const string DevPhrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

    /// <summary>Parses a SURI and returns the sr25519 key pair it names; throws <see cref="FormatException"/>.</summary>
    public static Sr25519KeyPair ToSr25519(string suri)
    {
        var parsed = Parse(suri);
        var seed = RootSeed(parsed);
        Sr25519KeyPair pair;
        try { pair = Sr25519KeyPair.FromMiniSecret(seed); }
        finally { CryptographicOperations.ZeroMemory(seed); }
        foreach (var j in parsed.Path)
        {
            var next = j.IsHard ? pair.DeriveHard(j.ChainCode) : pair.DeriveSoft(j.ChainCode);
            pair.Dispose();
            pair = next;
        }
        return pair;
    }

    /// <summary>
    /// Parses a SURI and returns the ed25519 key pair it names (hard junctions only, as Substrate);
    /// throws <see cref="FormatException"/>, also for a soft junction.
    /// </summary>
    public static Ed25519KeyPair ToEd25519(string suri)
    {
        var parsed = Parse(suri);
        if (parsed.Path.Any(j => !j.IsHard)) throw new FormatException("ed25519 keys cannot be soft-derived (use '//' junctions)");
        var seed = RootSeed(parsed);
        try
        {
            var pair = Ed25519KeyPair.FromSeed(seed);
            foreach (var j in parsed.Path)
            {
                var next = pair.DeriveHard(j.ChainCode);
                pair.Dispose();
                pair = next;
            }
            return pair;
        }
        finally { CryptographicOperations.ZeroMemory(seed); }
    }

    internal sealed record Parsed(string Phrase, IReadOnlyList<Junction> Path, string? Password)
    {
        // A record's generated ToString would print the phrase and the password.
        public override string ToString() => $"SecretUri(junctions: {Path.Count}, password: {(Password is null ? "no" : "yes")})";
    }

    /// <summary>
    /// Splits <c>phrase? (/soft | //hard)* (///password)?</c> like polkadot-sdk's SecretUri regex
    /// <c>^([\d\w ]+)?((//?[^/]+)*)(///(.*))?$</c>. A missing phrase means <see cref="DevPhrase"/>.
    /// </summary>
    internal static Parsed Parse(string suri)
    {
        if (suri is null) throw new FormatException("secret URI is missing");
        string? password = null;
        var rest = suri;
        var pw = suri.IndexOf("///", StringComparison.Ordinal);
        if (pw >= 0)
        {
            password = suri[(pw + 3)..];
            rest = suri[..pw];
        }
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var phrase = slash >= 0 ? rest[..slash] : rest;
        var pathText = slash >= 0 ? rest[slash..] : "";
        foreach (var c in phrase)
        {
            if (!(char.IsLetterOrDigit(c) || c == '_' || c == ' ' || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.NonSpacingMark
                    or System.Globalization.UnicodeCategory.ConnectorPunctuation))
                throw new FormatException("secret URI phrase may contain only letters, digits and spaces");
        }
        var path = new List<Junction>();
        var i = 0;
        while (i < pathText.Length)
        {
            var hard = i + 1 < pathText.Length && pathText[i + 1] == '/';
            var start = i + (hard ? 2 : 1);
            var end = pathText.IndexOf('/', start);
            if (end < 0) end = pathText.Length;
            if (end == start) throw new FormatException("secret URI has an empty junction");
            path.Add(Junction.FromText(pathText[start..end], hard));
            i = end;
        }
        return new Parsed(phrase.Length == 0 ? DevPhrase : phrase, path, password);
    }

    private static byte[] RootSeed(Parsed parsed)
    {
        var phrase = parsed.Phrase;
        if (phrase.StartsWith("0x", StringComparison.Ordinal))
        {
            if (!Hex.TryDecode(phrase, out var seed) || seed.Length != 32)
                throw new FormatException("secret URI seed must be 0x followed by 64 hex digits");
            return seed;
        }
        return Bip39.ToMiniSecret(phrase, parsed.Password ?? "");
    }
}

/// <summary>A derivation junction: a 32-byte chain code and whether it is hard (<c>//</c>) or soft (<c>/</c>).</summary>
internal readonly record struct Junction(byte[] ChainCode, bool IsHard)
{
    /// <summary>
    /// Substrate's <c>DeriveJunction</c> from text: a u64 (Rust <c>str::parse</c>: optional '+', digits) is
    /// SCALE-encoded as 8 bytes LE; anything else as a SCALE string (compact length + UTF-8). Encodings up to
    /// 32 bytes are zero-padded, longer ones are BLAKE2b-256 hashed.
    /// </summary>
    internal static Junction FromText(string text, bool hard)
    {
        byte[] encoded;
        if (TryParseU64(text, out var n))
        {
            encoded = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(encoded, n);
        }
        else
        {
            var utf8 = Encoding.UTF8.GetBytes(text);
            var prefix = CompactLength(utf8.Length);
            encoded = new byte[prefix.Length + utf8.Length];
            prefix.CopyTo(encoded, 0);
            utf8.CopyTo(encoded, prefix.Length);
        }
        var cc = new byte[32];
        if (encoded.Length <= 32) encoded.CopyTo(cc, 0);
        else Blake2b.Hash(encoded, cc);
        return new Junction(cc, hard);
    }

    private static bool TryParseU64(string s, out ulong value)
    {
        value = 0;
        var span = s.AsSpan();
        if (span.Length > 0 && span[0] == '+') span = span[1..];
        if (span.IsEmpty) return false;
        foreach (var c in span)
        {
            if (c is < '0' or > '9') return false;
            var digit = (ulong)(c - '0');
            if (value > (ulong.MaxValue - digit) / 10) return false;
            value = value * 10 + digit;
        }
        return true;
    }

    private static byte[] CompactLength(int n)
    {
        if (n < 64) return [(byte)(n << 2)];
        if (n < 1 << 14)
        {
            var b = new byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)((n << 2) | 1));
            return b;
        }
        if (n < 1 << 30)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, ((uint)n << 2) | 2);
            return b;
        }
        // SCALE big-integer mode: 0b11 with (byte count - 4) in the upper six bits, then the value LE.
        return [0x03, (byte)n, (byte)(n >> 8), (byte)(n >> 16), (byte)(n >> 24)];
    }
}

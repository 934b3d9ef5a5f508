using System.Text;
using System.Text.Json;
using Bittensor.Models.Tokenization;

namespace Bittensor.Models.Data;

/// <summary>A batch of token blocks: <paramref name="Tokens"/> is [batch, seq] row-major.</summary>
public sealed record TokenBatch(long[] Tokens, int Batch, int Seq);

/// <summary>
/// Text from local files, folders (recursive) or JSONL files (one <c>{"text": ...}</c> object per line), as an
/// lazy sequence of shuffled token blocks (Bittensor.Neurons wraps it as an Akka.Streams source: TextDatasetSource). Files are read in ordinal path order, every document is tokenized
/// and followed by &lt;|endoftext|&gt;, the token stream is cut into blocks of N tokens, the blocks are shuffled
/// with a seeded RNG and grouped into batches of B (a last, incomplete batch is dropped). The same paths and seed
/// give the same batches. Work happens when the sequence is enumerated, not when it is built, and each
/// enumeration reads afresh.
/// </summary>
public static class TextDataset
{
    /// <summary>Largest file read (bytes); bigger files fail the stream rather than exhaust memory.</summary>
    public const long MaxFileBytes = 64L << 20;

    /// <summary>
    /// Where the demo's corpus lives on Debian: the fortunes-min package (fortune cookies, mostly literature
    /// quotations; test.sh installs it) and /usr/share/common-licenses, present on every Debian system. See docs/corpus.md.
    /// </summary>
    public static IReadOnlyList<string> DebianCorpus { get; } = ["/usr/share/games/fortunes", "/usr/share/common-licenses"];

    /// <summary>The entries of <see cref="DebianCorpus"/> that exist on this machine.</summary>
    public static IReadOnlyList<string> AvailableDebianCorpus() =>
        DebianCorpus.Where(p => Directory.Exists(p) || File.Exists(p)).ToList();

    /// <summary>Batches of <paramref name="batchSize"/> shuffled blocks of <paramref name="blockSize"/> tokens.</summary>
    /// <param name="paths">Files or folders; a missing path throws <see cref="FileNotFoundException"/> here, at once.</param>
    /// <param name="tokenizer">Usually <see cref="BittensorTokenizer.Instance"/>.</param>
    /// <param name="blockSize">Tokens per row (N).</param>
    /// <param name="batchSize">Rows per batch (B).</param>
    /// <param name="seed">Shuffle seed.</param>
    /// <param name="maxTokens">Stop reading once this many tokens are collected (bounds memory).</param>
    public static IEnumerable<TokenBatch> Batches(IEnumerable<string> paths, BittensorTokenizer tokenizer, int blockSize, int batchSize, int seed, long maxTokens = 4_000_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        return Blocks(paths, tokenizer, blockSize, seed, maxTokens)
            .Chunk(batchSize)
            .Where(rows => rows.Length == batchSize)
            .Select(rows =>
            {
                var tokens = new long[batchSize * blockSize];
                var i = 0;
                foreach (var row in rows)
                {
                    row.CopyTo(tokens, i);
                    i += blockSize;
                }
                return new TokenBatch(tokens, batchSize, blockSize);
            });
    }

    /// <summary>Shuffled blocks of <paramref name="blockSize"/> tokens (see <see cref="Batches"/>).</summary>
    public static IEnumerable<long[]> Blocks(IEnumerable<string> paths, BittensorTokenizer tokenizer, int blockSize, int seed, long maxTokens = 4_000_000)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, blockSize);
        var files = ListFiles(paths);
        return Deferred(files, tokenizer, blockSize, seed, maxTokens);
    }

    /// <summary>
    /// The text files under <paramref name="paths"/>, sorted: folders are walked recursively; symbolic links,
    /// fortune index files (*.dat) and files with NUL bytes in their first 8 KiB (binary) are left out.
    /// </summary>
    public static IReadOnlyList<string> ListFiles(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var result = new List<string>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
                result.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Where(IsTextFile).Order(StringComparer.Ordinal));
            else if (File.Exists(path))
                result.Add(path);
            else
                throw new FileNotFoundException($"dataset path {path} does not exist", path);
        }
        return result;
    }

    /// <summary>The documents of one file: JSONL lines' "text", fortune cookies split at '%' lines, else the whole file.</summary>
    public static IEnumerable<string> ReadDocuments(string file)
    {
        var info = new FileInfo(file);
        if (info.Length > MaxFileBytes) throw new InvalidDataException($"{file}: {info.Length} bytes is over the {MaxFileBytes} byte limit of one dataset file");
        if (file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return ReadJsonLines(file);
        var text = File.ReadAllText(file, Encoding.UTF8);
        return text.Split("\n%\n").Select(d => d.Trim()).Where(d => d.Length > 0);
    }

    private static IEnumerable<string> ReadJsonLines(string file)
    {
        var number = 0;
        foreach (var line in File.ReadLines(file, Encoding.UTF8))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string? text;
            try
            {
                using var doc = JsonDocument.Parse(line);
                text = doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String
                    ? t.GetString()
                    : throw new InvalidDataException($"{file}:{number}: expected an object with a string \"text\"");
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{file}:{number}: not JSON ({e.Message})");
            }
            if (!string.IsNullOrEmpty(text)) yield return text;
        }
    }

    // An iterator: nothing is read until the caller enumerates, and each enumeration reads afresh.
    private static IEnumerable<long[]> Deferred(IReadOnlyList<string> files, BittensorTokenizer tokenizer, int blockSize, int seed, long maxTokens)
    {
        foreach (var block in ShuffledBlocks(files, tokenizer, blockSize, seed, maxTokens)) yield return block;
    }

    private static List<long[]> ShuffledBlocks(IReadOnlyList<string> files, BittensorTokenizer tokenizer, int blockSize, int seed, long maxTokens)
    {
        var blocks = new List<long[]>();
        var current = new long[blockSize];
        var filled = 0;
        long total = 0;
        foreach (var file in files)
        {
            foreach (var document in ReadDocuments(file))
            {
                foreach (var id in tokenizer.Encode(document).Append(BittensorTokenizer.EndOfTextId))
                {
                    current[filled++] = id;
                    if (filled < blockSize) continue;
                    blocks.Add(current);
                    current = new long[blockSize];
                    filled = 0;
                }
                total = (long)blocks.Count * blockSize + filled;
                if (total >= maxTokens) break;
            }
            if (total >= maxTokens) break;
        }
        var random = new Random(seed);
        for (var i = blocks.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (blocks[i], blocks[j]) = (blocks[j], blocks[i]);
        }
        return blocks;
    }

    private static bool IsTextFile(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null || path.EndsWith(".dat", StringComparison.Ordinal)) return false;
        Span<byte> head = stackalloc byte[8192];
        using var stream = File.OpenRead(path);
        var read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return !head[..read].Contains((byte)0);
    }
}

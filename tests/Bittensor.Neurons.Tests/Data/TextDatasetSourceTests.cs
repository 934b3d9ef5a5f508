using Akka.Streams;
using Akka.Streams.Dsl;
using Akka.Streams.TestKit;
using Akka.TestKit.Xunit2;
using Bittensor.Models.Data;
using Bittensor.Models.Tokenization;
using Bittensor.Neurons.Pipelines;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests.Data;

public sealed class TextDatasetSourceTests : TestKit, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dataset-").FullName;
    private readonly IMaterializer _materializer;

    public TextDatasetSourceTests(ITestOutputHelper output) : base(TestConfig.Waits, output) // ExpectCompleteAsync() below waits the default
    {
        _materializer = Sys.Materializer();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        base.Dispose(disposing);
    }

    private string WriteCorpus()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "books"));
        File.WriteAllText(Path.Combine(_dir, "books", "a.txt"), string.Join(' ', Enumerable.Range(0, 200).Select(i => $"word{i}")));
        File.WriteAllText(Path.Combine(_dir, "books", "quotes"), "A horse! A horse!\n%\nMy kingdom for a horse!\n");
        File.WriteAllBytes(Path.Combine(_dir, "books", "quotes.dat"), [0, 0, 0, 2, 0, 1]);
        File.WriteAllLines(Path.Combine(_dir, "docs.jsonl"), ["{\"text\": \"Hello world\"}", "", "{\"text\": \"The quick brown fox\"}"]);
        return _dir;
    }

    [Fact]
    public async Task Batches_are_b_rows_of_n_tokens_and_the_stream_completes()
    {
        var corpus = WriteCorpus();
        await this.AssertAllStagesStoppedAsync(async () =>
        {
            var probe = TextDatasetSource.Batches([corpus], BittensorTokenizer.Instance, blockSize: 16, batchSize: 4, seed: 1)
                .RunWith(this.SinkProbe<TokenBatch>(), _materializer);
            var tokens = TextDataset.ListFiles([corpus]).SelectMany(TextDataset.ReadDocuments).Sum(d => BittensorTokenizer.Instance.Encode(d).Length + 1);
            var expected = tokens / 16 / 4;
            probe.Request(expected + 1);
            var batches = new List<TokenBatch>();
            await foreach (var b in probe.ExpectNextNAsync(expected, TimeSpan.FromSeconds(30))) batches.Add(b);
            await probe.ExpectCompleteAsync();

            Assert.NotEmpty(batches);
            Assert.All(batches, b => Assert.Equal((4, 16, 64), (b.Batch, b.Seq, b.Tokens.Length)));
            Assert.All(batches.SelectMany(b => b.Tokens), t => Assert.InRange(t, 0, BittensorTokenizer.MaskId));
        }, _materializer);
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_shuffle_and_another_seed_a_different_one()
    {
        var corpus = WriteCorpus();
        async Task<long[]> Run(int seed) =>
            (await TextDatasetSource.Blocks([corpus], BittensorTokenizer.Instance, 8, seed).RunWith(Sink.Seq<long[]>(), _materializer)).SelectMany(b => b).ToArray();

        var first = await Run(1);
        Assert.Equal(first, await Run(1));
        Assert.NotEqual(first, await Run(2));
        Assert.Equal(first.Order(), (await Run(2)).Order());
    }

    [Fact]
    public void Files_are_read_as_documents_and_index_files_are_skipped()
    {
        var corpus = WriteCorpus();
        var files = TextDataset.ListFiles([corpus]);

        Assert.DoesNotContain(files, f => f.EndsWith(".dat", StringComparison.Ordinal));
        Assert.Equal(["A horse! A horse!", "My kingdom for a horse!"], TextDataset.ReadDocuments(files.Single(f => f.EndsWith("quotes", StringComparison.Ordinal))));
        Assert.Equal(["Hello world", "The quick brown fox"], TextDataset.ReadDocuments(Path.Combine(corpus, "docs.jsonl")));
    }

    [Fact]
    public async Task A_malformed_jsonl_line_fails_the_stream_with_the_file_and_line()
    {
        var file = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllLines(file, ["{\"text\": \"fine\"}", "{\"text\": 5}"]);
        var thrown = await Record.ExceptionAsync(() =>
            TextDatasetSource.Blocks([file], BittensorTokenizer.Instance, 4, 0).RunWith(Sink.Seq<long[]>(), _materializer));
        var error = Assert.IsType<InvalidDataException>(thrown is AggregateException a ? a.Flatten().InnerExceptions.Single() : thrown);
        Assert.Contains("bad.jsonl:2", error.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => TextDatasetSource.Blocks([Path.Combine(_dir, "absent")], BittensorTokenizer.Instance, 4, 0));
    }

    [Fact]
    public async Task The_debian_corpus_is_there_and_gives_batches()
    {
        var paths = TextDataset.AvailableDebianCorpus();
        Assert.Contains("/usr/share/common-licenses", paths);
        var first = await TextDatasetSource.Batches(paths, BittensorTokenizer.Instance, 32, 8, seed: 0).Take(2).RunWith(Sink.Seq<TokenBatch>(), _materializer);
        Assert.Equal(2, first.Count);
    }
}

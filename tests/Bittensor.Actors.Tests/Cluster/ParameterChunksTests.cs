using Bittensor.Actors.Cluster;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>Splitting a parameter vector into chunks and reassembling it (docs/cluster.md "Parameter averaging").</summary>
public sealed class ParameterChunksTests
{
    private static float[] Vector(int n) => [.. Enumerable.Range(0, n).Select(i => i * 0.25f)];

    [Fact]
    public void Chunks_are_consecutive_slices_of_the_one_array_and_reassemble_to_it()
    {
        var values = Vector(10);
        var chunks = ParameterChunks.Of(values, 4).ToArray();
        Assert.Equal(new[] { 0, 4, 8 }, chunks.Select(c => c.Offset).ToArray());
        Assert.Equal(new[] { 4, 4, 2 }, chunks.Select(c => c.Values.Length).ToArray());
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(chunks[1].Values, out var segment) && ReferenceEquals(segment.Array, values));

        var assembly = new ParameterAssembly(7, values.Length);
        foreach (var (offset, chunk) in chunks)
        {
            Assert.False(assembly.Complete);
            Assert.Throws<InvalidOperationException>(() => assembly.Values);
            Assert.Null(assembly.Add(7, offset, values.Length, chunk));
        }
        Assert.True(assembly.Complete);
        Assert.Equal(values, assembly.Values);
        Assert.Single(ParameterChunks.Of(values)); // 10 floats: one chunk of the default size
    }

    [Theory]
    [InlineData(8, 10, 7, "arrived where 4 was expected")] // chunk 1 lost
    [InlineData(4, 10, 8, "round 8 arrived during round 7")] // another round's chunk
    [InlineData(4, 12, 7, "of 12 parameters arrived for 10")] // another size
    public void A_chunk_out_of_order_of_another_round_or_size_is_refused_and_nothing_is_complete(int offset, int total, long round, string why)
    {
        var values = Vector(10);
        var assembly = new ParameterAssembly(7, values.Length);
        Assert.Null(assembly.Add(7, 0, values.Length, values.AsMemory(0, 4)));
        var problem = assembly.Add(round, offset, total, values.AsMemory(offset % 10, 2));
        Assert.NotNull(problem);
        Assert.Contains(why, problem, StringComparison.Ordinal);
        Assert.False(assembly.Complete);
        Assert.Equal(4, assembly.Received);
    }

    [Fact]
    public void A_chunk_that_overruns_the_vector_is_refused()
    {
        var assembly = new ParameterAssembly(1, 5);
        Assert.NotNull(assembly.Add(1, 0, 5, Vector(6)));
        Assert.NotNull(assembly.Add(1, 0, 5, ReadOnlyMemory<float>.Empty));
        Assert.False(assembly.Complete);
    }
}

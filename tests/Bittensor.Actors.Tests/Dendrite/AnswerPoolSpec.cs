using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using DendriteClient = Bittensor.Actors.Dendrite.Dendrite;

namespace Bittensor.Actors.Tests.Dendrite;

/// <summary>
/// The dendrite's answer arrays (<see cref="AnswerBufferPool"/>, <see cref="EndpointResult.Release"/>): real axons over
/// loopback, the shipped fan-out path (endpoint actors, lean client, landing). A round's Success answers live in pooled
/// arrays; given back, the next round lands in them instead of allocating; an array goes back at most once however often
/// it is released, and a released answer's tensor is refused, not silently read.
/// </summary>
public sealed class AnswerPoolSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 8;

    private DendriteClient NewDendrite() =>
        new(Sys, new KeyPairRequestSigner(Alice), DendriteSettings.Default with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(20) });

    private async Task<EndpointInfo[]> Axons(int n)
    {
        var endpoints = new EndpointInfo[n];
        for (var i = 0; i < n; i++)
        {
            var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
            endpoints[i] = new EndpointInfo($"axon-{i}", "127.0.0.1", port);
        }
        return endpoints;
    }

    // The echo model's representation of token t at position s, dimension d (DemoModels.Echo).
    private static void AssertEcho(EndpointResult r, long[,] tokens)
    {
        Assert.True(r.Code == ReturnCode.Success, r.Message);
        Assert.True(r.Tensor.HasShape(tokens.GetLength(0), tokens.GetLength(1), Dim));
        var floats = r.Tensor.Floats!;
        for (var s = 0; s < tokens.GetLength(1); s++)
            Assert.Equal((float)((tokens[0, s] * 1e-3) + (5 * 1e-6)), floats[(s * Dim) + 5]);
    }

    [Fact]
    public async Task Released_answers_arrays_are_landed_in_by_the_next_round_and_hold_its_answers()
    {
        var endpoints = await Axons(3);
        var dendrite = NewDendrite();
        long[,] first = { { 3, 4 } }, second = { { 7, 9 } };

        var round1 = await dendrite.ForwardText(endpoints, first);
        foreach (var r in round1) AssertEcho(r, first);
        Assert.All(round1, r => Assert.True(r.IsPooled));
        var pool = dendrite.AnswerPools.Single();
        Assert.Equal(2 * Dim, pool.ElementCount);
        var arrays1 = round1.Select(r => r.Tensor.Floats!).ToArray();
        Assert.Equal(3, arrays1.Distinct(ReferenceEqualityComparer.Instance).Count());
        var allocated = pool.Allocated;

        Assert.Equal(3, DendriteClient.Release(round1));
        Assert.Equal(3, pool.Available);
        var round2 = await dendrite.ForwardText(endpoints, second);

        foreach (var r in round2) AssertEcho(r, second); // the reused arrays hold this round's answers, not the last one's
        Assert.Equal(allocated, pool.Allocated); // nothing allocated: every answer landed in a given-back array
        Assert.Equal(3, pool.Reused);
        var arrays2 = round2.Select(r => r.Tensor.Floats!).ToArray();
        Assert.Equal(3, arrays2.Distinct(ReferenceEqualityComparer.Instance).Count()); // no array handed to two answers
        Assert.All(arrays2, a => Assert.Contains(a, arrays1));
    }

    [Fact]
    public async Task An_answer_released_twice_goes_back_once_and_its_tensor_is_refused_afterwards()
    {
        var endpoints = await Axons(2);
        var dendrite = NewDendrite();
        long[,] tokens = { { 5, 6 } };
        var round = await dendrite.ForwardText(endpoints, tokens);
        var pool = dendrite.AnswerPools.Single();
        var copy = round[0] with { Message = "copied" }; // a record copy shares the lease

        Assert.True(round[0].Release());
        Assert.False(round[0].Release());
        Assert.False(copy.Release());
        Assert.Equal(1, DendriteClient.Release(round)); // the round's other answer; the first is not given back again
        Assert.Equal(0, DendriteClient.Release(round));

        Assert.Equal(2, pool.Available); // two arrays, each once
        Assert.Equal(2, pool.Returned);
        Assert.True(round[0].IsReleased);
        Assert.Throws<ObjectDisposedException>(() => round[0].Tensor);
        Assert.Throws<ObjectDisposedException>(() => copy.Tensor);
        Assert.Contains("(released)", round[0].ToString()); // logging a released answer does not throw
        Assert.Equal(ReturnCode.Success, round[0].Code); // what is not the array stays readable

        // Two rounds after that: four answers over the two given-back arrays and two fresh ones, never one array twice.
        var a = await dendrite.ForwardText(endpoints, tokens);
        var b = await dendrite.ForwardText(endpoints, tokens);
        foreach (var r in a.Concat(b)) AssertEcho(r, tokens);
        Assert.Equal(4, a.Concat(b).Select(r => r.Tensor.Floats!).Distinct(ReferenceEqualityComparer.Instance).Count());
    }

    [Fact]
    public async Task Answers_never_released_are_the_callers_to_keep_and_the_next_rounds_allocate()
    {
        var endpoints = await Axons(2);
        var dendrite = NewDendrite();
        long[,] t1 = { { 1, 2 } }, t2 = { { 8, 8 } };

        var kept = await dendrite.ForwardText(endpoints, t1);
        var next = await dendrite.ForwardText(endpoints, t2);

        foreach (var r in kept) AssertEcho(r, t1); // untouched by the later round
        foreach (var r in next) AssertEcho(r, t2);
        Assert.Equal(4, dendrite.AnswerPools.Single().Allocated);
        Assert.Equal(0, dendrite.AnswerPools.Single().Reused);
    }

    [Fact]
    public async Task Forward_and_backward_rounds_alternating_keep_one_pool_each_and_both_reuse()
    {
        var endpoints = await Axons(2);
        var dendrite = NewDendrite();
        long[,] tokens = { { 2, 3 } };
        var grads = DenseTensor.Float32([1, 2, Dim], Enumerable.Repeat(0.5f, 2 * Dim).ToArray());

        for (var round = 0; round < 3; round++)
        {
            var forward = await dendrite.ForwardText(endpoints, tokens);
            foreach (var r in forward) AssertEcho(r, tokens);
            var backward = await dendrite.Backward(endpoints, DenseTensor.FromTokens(tokens), [grads]);
            Assert.All(backward, r => Assert.Equal([Dim * 0.5f, Dim * 0.5f], r.Tensor.Floats!));
            Assert.Equal(2, DendriteClient.Release(forward));
            Assert.Equal(2, DendriteClient.Release(backward));
        }

        var pools = dendrite.AnswerPools.OrderBy(p => p.ElementCount).ToArray();
        Assert.Equal([2, 2 * Dim], pools.Select(p => p.ElementCount));
        Assert.All(pools, p => Assert.Equal((2L, 4L), (p.Allocated, p.Reused))); // two arrays each, reused in rounds 2 and 3
    }

    [Fact]
    public async Task Failed_calls_carry_no_pooled_array()
    {
        var dendrite = NewDendrite();
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // a port just freed: the call is refused
        var dead = new EndpointInfo("dead", "127.0.0.1", port);

        var r = (await dendrite.ForwardText([dead], new long[,] { { 1 } }))[0];

        Assert.NotEqual(ReturnCode.Success, r.Code);
        Assert.False(r.IsPooled);
        Assert.False(r.Release());
        Assert.Equal(new float[Dim], r.Tensor.Floats); // zeros, still readable
    }
}

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// <see cref="AnswerBufferPool"/> and its leases: bounded, an array goes back at most once per lease, one lease per
/// landing's array, bad arguments refused with their reason.
/// </summary>
public sealed class AnswerBufferPoolTests
{
    private static readonly Float32AnswerShape Shape = new([1, 4, 8]);

    [Fact]
    public void A_released_array_is_rented_again_and_an_empty_pool_allocates()
    {
        var pool = new AnswerBufferPool(32);
        var a = pool.Rent();
        var b = pool.Rent();
        Assert.Equal(32, a.Length);
        Assert.NotSame(a, b);
        Assert.Equal(2, pool.Allocated);

        Assert.True(pool.Lease(a).Release());
        Assert.Same(a, pool.Rent());
        Assert.Equal(1, pool.Reused);
        Assert.Equal(0, pool.Available);
    }

    [Fact]
    public void A_lease_gives_its_array_back_once_however_often_it_is_released()
    {
        var pool = new AnswerBufferPool(32);
        var lease = pool.Lease(pool.Rent());

        Assert.False(lease.IsReleased);
        Assert.True(lease.Release());
        Assert.False(lease.Release());
        Assert.True(lease.IsReleased);
        Assert.Equal(1, pool.Available);
        Assert.Equal(1, pool.Returned);
        var again = pool.Rent();
        Assert.Equal(0, pool.Available); // not two copies of one array waiting to be handed to two answers
        Assert.NotSame(again, pool.Rent());
    }

    [Fact]
    public void Releases_racing_on_one_lease_give_the_array_back_once()
    {
        var pool = new AnswerBufferPool(32);
        for (var round = 0; round < 200; round++)
        {
            var lease = pool.Lease(pool.Rent());
            var wins = 0;
            Parallel.For(0, 4, _ => { if (lease.Release()) Interlocked.Increment(ref wins); });
            Assert.Equal(1, wins);
            Assert.Equal(1, pool.Available);
            pool.Rent();
        }
    }

    [Fact]
    public void The_pool_keeps_at_most_its_capacity_and_leaves_the_rest_to_the_GC()
    {
        var pool = new AnswerBufferPool(1024, maxBytes: 8 * 4096); // 8 arrays of 4 KiB
        Assert.Equal(8, pool.Capacity);
        var arrays = Enumerable.Range(0, 20).Select(_ => pool.Rent()).ToArray();

        foreach (var a in arrays) pool.Lease(a).Release();

        Assert.Equal(8, pool.Available);
        Assert.Equal(20, pool.Returned);
        Assert.Equal(4, new AnswerBufferPool(1 << 20, maxBytes: 1).Capacity); // at least 4 arrays
    }

    [Fact]
    public void Bad_arguments_are_refused_with_their_reason()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AnswerBufferPool(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AnswerBufferPool(8, maxBytes: 0));
        var pool = new AnswerBufferPool(32);
        var e = Assert.Throws<ArgumentException>(() => pool.Lease(new float[31]));
        Assert.Contains("31", e.Message);
        Assert.Throws<ArgumentException>(() => new AnswerLanding(Shape, new AnswerBufferPool(33)));
    }

    [Fact]
    public void A_landing_rents_its_array_on_first_use_and_leases_it_once()
    {
        var pool = new AnswerBufferPool(Shape.ElementCount);
        var given = pool.Rent();
        pool.Lease(given).Release();
        var landing = new AnswerLanding(Shape, pool);

        Assert.Null(landing.TakeLease()); // no array yet: nothing to lease
        Assert.Same(given, landing.Values);
        var lease = landing.TakeLease();
        Assert.NotNull(lease);
        Assert.Null(landing.TakeLease()); // one lease per array: it cannot go back twice through two leases

        Assert.True(lease.Release());
        Assert.Equal(1, pool.Available);
        Assert.Null(new AnswerLanding(Shape).TakeLease()); // no pool, no lease
    }
}

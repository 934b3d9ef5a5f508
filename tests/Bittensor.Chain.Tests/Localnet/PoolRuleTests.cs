using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class PoolRuleTests
{
    [Fact]
    public async Task A_call_signed_by_another_key_fails_with_BadSignature_and_uses_no_nonce()
    {
        await using var t = Create();
        var byBob = await t.Sign("//Bob", new Transfer(DevAccounts.Charlie, Balance.FromTao(1)));
        var forged = byBob with { Signer = DevAccounts.Alice };
        AssertFails("BadSignature", await t.Chain.SubmitAsync(forged));
        Assert.Equal(0u, await t.Chain.GetNonceAsync(DevAccounts.Alice));
    }

    [Fact]
    public async Task A_signature_for_another_chain_fails_with_BadSignature()
    {
        await using var t = Create();
        await using var other = Create();
        var signed = CallSigner.Sign(new Transfer(DevAccounts.Bob, Balance.FromTao(1)), Key("//Alice"), 0, other.Chain.Identity);
        AssertFails("BadSignature", await t.Chain.SubmitAsync(signed));
    }

    [Fact]
    public async Task A_used_nonce_fails_with_Stale_a_skipped_one_waits_for_the_gap_and_one_too_far_ahead_fails_with_Future()
    {
        await using var t = Create();
        var first = await t.Sign("//Alice", new Transfer(DevAccounts.Bob, Balance.FromTao(1)));
        var pending = t.Chain.SubmitAsync(first);
        await t.Chain.ProduceBlockAsync();
        AssertOk(await pending);
        AssertFails("Stale", await t.Chain.SubmitAsync(first));

        // Nonce 3 while the next is 1: it waits in the future queue (not in the ready pool, not in a block).
        var key = Key("//Alice");
        var third = t.Chain.Submit(CallSigner.Sign(new Transfer(DevAccounts.Bob, Balance.FromTao(3)), key, 3, t.Chain.Identity).ToExtrinsic());
        Assert.Null(third.Rejected);
        Assert.True(third.Future);
        Assert.Empty(t.Chain.PendingExtrinsics());
        Assert.Equal(1u, await t.Chain.GetNonceAsync(DevAccounts.Alice));
        AssertFails("PriorityTooLow", await t.Chain.SubmitAsync(CallSigner.Sign(new Transfer(DevAccounts.Bob, Balance.FromTao(9)), key, 3, t.Chain.Identity)));
        await t.Chain.ProduceBlockAsync();
        Assert.False(third.Included!.IsCompleted);
        // Nonce 2 is still a gap; nonce 1 fills it: 1, 2 and 3 become ready together, in nonce order.
        var second = t.Chain.SubmitAsync(CallSigner.Sign(new Transfer(DevAccounts.Bob, Balance.FromTao(2)), key, 2, t.Chain.Identity));
        Assert.Empty(t.Chain.PendingExtrinsics());
        var one = t.Chain.SubmitAsync(CallSigner.Sign(new Transfer(DevAccounts.Bob, Balance.FromTao(1)), key, 1, t.Chain.Identity));
        Assert.Equal(3, t.Chain.PendingExtrinsics().Count);
        Assert.Equal(4u, await t.Chain.GetNonceAsync(DevAccounts.Alice));
        var block = await t.Chain.ProduceBlockAsync();
        Assert.Equal(new CallResult.InBlock(block.Number, 0), await one);
        Assert.Equal(new CallResult.InBlock(block.Number, 1), await second);
        Assert.Equal(new CallResult.InBlock(block.Number, 2), await third.Included!);

        var tooFar = CallSigner.Sign(new Transfer(DevAccounts.Bob, Balance.FromTao(1)), key, 4 + Bittensor.Chain.Local.Localnet.FutureNonceWindow + 1, t.Chain.Identity);
        AssertFails("Future", await t.Chain.SubmitAsync(tooFar));
    }

    [Fact]
    public async Task Consecutive_nonces_queue_in_one_block_and_failed_calls_still_use_their_nonce()
    {
        await using var t = Create();
        var key = Key("//Alice");
        var a = t.Chain.SubmitAsync(CallSigner.Sign(new BurnedRegister(42, Id("//hot0")), key, 0, t.Chain.Identity));
        Assert.Equal(1u, await t.Chain.GetNonceAsync(DevAccounts.Alice));
        var b = t.Chain.SubmitAsync(CallSigner.Sign(new Transfer(DevAccounts.Bob, Balance.FromTao(1)), key, 1, t.Chain.Identity));
        var block = await t.Chain.ProduceBlockAsync();
        var failed = Assert.IsType<CallResult.Failed>(await a);
        Assert.Equal(("NetworkDoesNotExist", (ulong?)block.Number), (failed.Error, failed.Block));
        Assert.Equal(new CallResult.InBlock(block.Number, 1), await b);
        Assert.Equal(2u, await t.Chain.GetNonceAsync(DevAccounts.Alice));
    }

    [Fact]
    public async Task Undecodable_call_bytes_fail_with_BadCall()
    {
        await using var t = Create();
        var signed = CallSigner.Sign(new byte[] { 7, 0, 1 }, Key("//Alice"), 0, t.Chain.Identity);
        var failed = Assert.IsType<CallResult.Failed>(await t.Chain.SubmitAsync(signed));
        Assert.Equal("BadCall", failed.Error);
        Assert.Contains("byte", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dev_account_keys_derive_to_the_genesis_accounts()
    {
        await using var t = Create();
        foreach (var (suri, account) in DevAccounts.All)
        {
            Assert.Equal(account, Id(suri));
            Assert.Equal(Balance.FromTao(1_000_000), await t.Chain.GetBalanceAsync(account));
        }
    }

    [Fact]
    public async Task Subscribers_see_every_new_block_in_order()
    {
        await using var t = Create();
        // MoveNextAsync runs the iterator up to its first wait, which registers the subscription.
        await using var blocks = t.Chain.SubscribeBlocksAsync().GetAsyncEnumerator();
        var first = blocks.MoveNextAsync();
        await t.Blocks(3);
        var seen = new List<ulong>();
        Assert.True(await first);
        seen.Add(blocks.Current.Number);
        for (var i = 0; i < 2; i++)
        {
            Assert.True(await blocks.MoveNextAsync());
            seen.Add(blocks.Current.Number);
        }
        Assert.Equal([1UL, 2UL, 3UL], seen);
    }
}

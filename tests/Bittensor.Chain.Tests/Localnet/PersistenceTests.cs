using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class PersistenceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-localnet-" + Guid.NewGuid().ToString("N"));

    private LocalnetOptions Options => new() { Path = _dir, SubnetDefaults = Relaxed, TargetStakesPerInterval = 100 };

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_reopened_localnet_continues_from_the_last_block_with_its_state()
    {
        ulong block;
        ChainIdentity identity;
        await using (var t = Create(Options))
        {
            var netuid = await t.CreateSubnet();
            await t.Register(netuid, "//hot0");
            AssertOk(await t.Submit("//hot0", new ServeAxon(netuid, 1, 0x0a000001, 8091, 4, 4)));
            await t.Blocks(12);
            block = t.Chain.BlockNumber;
            identity = t.Chain.Identity;
        }
        await using (var t = Create(Options))
        {
            Assert.Null(t.Chain.RecoveryWarning);
            Assert.Equal(block, t.Chain.BlockNumber);
            Assert.True(t.Chain.Identity.GenesisHash.Span.SequenceEqual(identity.GenesisHash.Span));
            var n = (await t.Chain.GetNeuronAsync(1, 0))!;
            Assert.Equal(Id("//hot0"), n.Hotkey);
            Assert.Equal("10.0.0.1:8091", n.Axon.Endpoint);
            Assert.Equal(1u, await t.Chain.GetNonceAsync(DevAccounts.Alice)); // burned_register
            Assert.Equal(1u, await t.Chain.GetNonceAsync(DevAccounts.Ferdie)); // register_network
            Assert.Equal(1u, await t.Chain.GetNonceAsync(Id("//hot0")));
            await t.Blocks(1);
            Assert.Equal(block + 1, t.Chain.BlockNumber);
        }
    }

    [Fact]
    public async Task Bodies_and_events_of_recent_blocks_survive_a_restart()
    {
        LocalnetBlock included;
        byte[] extrinsic;
        await using (var t = Create(Options))
        {
            var signed = await t.Sign("//Alice", new Transfer(DevAccounts.Bob, Balance.FromTao(1)));
            extrinsic = signed.ToExtrinsic();
            var pending = t.Chain.SubmitAsync(signed);
            await t.Chain.ProduceBlockAsync();
            var inBlock = Assert.IsType<CallResult.InBlock>(await pending);
            included = t.Chain.FindBlock(inBlock.Block)!;
            Assert.NotNull(included.Extrinsics);
            await t.Blocks(3);
        }
        await using (var t = Create(Options))
        {
            var again = t.Chain.FindBlock(included.Number)!;
            Assert.Equal(included.Hash.ToArray(), again.Hash.ToArray());
            Assert.Equal(extrinsic, Assert.Single(again.Extrinsics!));
            Assert.Equal(included.Events, again.Events);
            Assert.Equal(included.Timestamp, again.Timestamp);
            Assert.NotNull(t.Chain.FindBlock(t.Chain.BlockNumber)!.Events); // the best block's events too
        }
    }

    [Fact]
    public async Task A_second_owner_gets_in_use_by_PID()
    {
        await using var t = Create(Options);
        var e = Assert.Throws<LocalnetException>(() => Bittensor.Chain.Local.Localnet.Open(Options, TestEpochRunners.Default));
        Assert.Equal($"localnet at {Path.GetFullPath(_dir)} is in use by PID {Environment.ProcessId}", e.Message);
    }

    [Fact]
    public async Task A_corrupt_state_file_falls_back_to_the_previous_block_with_a_warning()
    {
        ulong block;
        await using (var t = Create(Options))
        {
            await t.Blocks(5);
            block = t.Chain.BlockNumber;
        }
        var state = Path.Combine(_dir, "state.bin");
        var bytes = await File.ReadAllBytesAsync(state);
        bytes[bytes.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(state, bytes);
        await using (var t = Create(Options))
        {
            Assert.Equal(block - 1, t.Chain.BlockNumber);
            Assert.Contains("checksum mismatch", t.Chain.RecoveryWarning, StringComparison.Ordinal);
            await t.Blocks(1);
            Assert.Equal(block, t.Chain.BlockNumber);
        }
    }

    [Fact]
    public async Task A_torn_state_file_with_no_good_copy_is_a_clear_error()
    {
        await using (var t = Create(Options)) await t.Blocks(2);
        var state = Path.Combine(_dir, "state.bin");
        var bytes = await File.ReadAllBytesAsync(state);
        await File.WriteAllBytesAsync(state, bytes.AsSpan(0, bytes.Length - 10).ToArray());
        File.Delete(Path.Combine(_dir, "state.bin.prev"));
        var e = Assert.Throws<LocalnetException>(() => Bittensor.Chain.Local.Localnet.Open(Options, TestEpochRunners.Default));
        Assert.Contains("is corrupt", e.Message, StringComparison.Ordinal);
        Assert.Contains("torn", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task State_files_are_private_to_the_user()
    {
        if (OperatingSystem.IsWindows()) return;
        await using var t = Create(Options);
        await t.Blocks(1);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir, "state.bin")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_dir));
    }

    [Fact]
    public async Task Reset_deletes_the_state_so_the_next_open_starts_a_new_genesis()
    {
        ReadOnlyMemory<byte> genesis;
        await using (var t = Create(Options))
        {
            await t.Blocks(3);
            genesis = t.Chain.Identity.GenesisHash;
        }
        Bittensor.Chain.Local.Localnet.Reset(_dir);
        await using (var t = Create(Options))
        {
            Assert.Equal(0UL, t.Chain.BlockNumber);
            Assert.False(t.Chain.Identity.GenesisHash.Span.SequenceEqual(genesis.Span));
        }
    }

    [Fact]
    public async Task A_block_whose_epoch_fails_commits_nothing_and_a_restart_resumes_from_the_last_block()
    {
        var options = Options with { SubnetDefaults = Relaxed with { Tempo = 3 } };
        ulong lastGood;
        await using (var t = new TestChain(Bittensor.Chain.Local.Localnet.Open(options, new TestEpochRunners.Throwing())))
        {
            var netuid = await t.CreateSubnet();
            await t.Register(netuid, "//hot0");
            while (true)
            {
                lastGood = t.Chain.BlockNumber;
                try
                {
                    await t.Chain.ProduceBlockAsync();
                }
                catch (ChainUnavailableException e)
                {
                    Assert.Contains("epoch exploded", e.Message, StringComparison.Ordinal);
                    break;
                }
                Assert.True(lastGood < 20, "the epoch never ran");
            }
            await Assert.ThrowsAsync<ChainUnavailableException>(() => t.Chain.GetBalanceAsync(DevAccounts.Alice).AsTask());
        }
        await using (var t = Create(options))
        {
            Assert.Equal(lastGood, t.Chain.BlockNumber);
            await t.Blocks(1);
            Assert.Equal(lastGood + 1, t.Chain.BlockNumber);
        }
    }
}

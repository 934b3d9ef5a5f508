using System.Text;

namespace Bittensor.Wallet.Tests;

public sealed class PasswordSourceTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Text(byte[]? bytes) => bytes is null ? "<none>" : Encoding.UTF8.GetString(bytes);

    [Fact]
    public void A_password_file_gives_its_content_without_the_trailing_newline()
    {
        var path = _dir.File("pw");
        File.WriteAllText(path, "s3cret pass\n");
        Assert.Equal("s3cret pass", Text(PasswordSource.FromFile(path).TryGetPassword("/k")));
    }

    [Fact]
    public void A_missing_password_file_is_an_error_naming_it()
    {
        var path = _dir.File("missing");
        var e = Assert.Throws<InvalidDataException>(() => PasswordSource.FromFile(path).TryGetPassword("/k"));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_password_file_larger_than_a_password_is_refused()
    {
        var path = _dir.File("big");
        File.WriteAllBytes(path, new byte[PasswordSource.MaxPasswordBytes + 10]);
        Assert.Throws<InvalidDataException>(() => PasswordSource.FromFile(path).TryGetPassword("/k"));
    }

    [Fact]
    public void A_file_descriptor_is_read_to_its_end()
    {
        var path = _dir.File("pw");
        File.WriteAllText(path, "from a descriptor\r\n");
        using var handle = File.OpenHandle(path);
        var fd = (int)handle.DangerousGetHandle();
        Assert.Equal("from a descriptor", Text(PasswordSource.FromFileDescriptor(fd).TryGetPassword("/k")));
    }

    [Fact]
    public void A_plain_environment_variable_gives_its_value_and_an_unset_one_gives_none()
    {
        var name = "BT_TEST_PW_" + Guid.NewGuid().ToString("N");
        Assert.Null(PasswordSource.FromEnvironment(name).TryGetPassword("/k"));
        Environment.SetEnvironmentVariable(name, "env pass");
        try { Assert.Equal("env pass", Text(PasswordSource.FromEnvironment(name).TryGetPassword("/k"))); }
        finally { Environment.SetEnvironmentVariable(name, null); }
    }

    [Fact]
    public void The_btwallet_variable_is_named_after_the_keyfile_path_and_deobfuscated()
    {
        var keyfile = Path.Combine(_dir.Path, "wallets", "my.wallet", "coldkey");
        var name = PasswordSource.BtwalletVariableName(keyfile);
        Assert.StartsWith("BT_PW_", name, StringComparison.Ordinal);
        Assert.EndsWith("_WALLETS_MY_WALLET_COLDKEY", name, StringComparison.Ordinal);
        Assert.DoesNotContain("/", name, StringComparison.Ordinal);
        Environment.SetEnvironmentVariable(name, PasswordSource.BtwalletObfuscate(name, "xor me"));
        try
        {
            Assert.NotEqual("xor me", Environment.GetEnvironmentVariable(name));
            Assert.Equal("xor me", Text(PasswordSource.FromBtwalletEnvironment().TryGetPassword(keyfile)));
        }
        finally { Environment.SetEnvironmentVariable(name, null); }
    }

    [Fact]
    public void A_chain_takes_the_first_source_that_has_a_password_and_names_its_sources_without_secrets()
    {
        var unset = PasswordSource.FromEnvironment("BT_TEST_UNSET_" + Guid.NewGuid().ToString("N"));
        var chain = PasswordSource.FirstOf(unset, PasswordSource.FromCallback(_ => "second", "test prompt"));
        Assert.Equal("second", Text(chain.TryGetPassword("/k")));
        Assert.Contains("test prompt", chain.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("second", chain.ToString(), StringComparison.Ordinal);
    }
}

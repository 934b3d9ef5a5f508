namespace Bittensor.Wallet.Tests;

public sealed class WalletLayoutTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_wallet_files_sit_where_btcli_puts_them()
    {
        var w = new LocalWallet("alice", "miner1", _dir.Path);
        Assert.Equal(Path.Combine(_dir.Path, "alice", "coldkey"), w.ColdkeyPath);
        Assert.Equal(Path.Combine(_dir.Path, "alice", "coldkeypub.txt"), w.ColdkeyPubPath);
        Assert.Equal(Path.Combine(_dir.Path, "alice", "hotkeys", "miner1"), w.HotkeyPath);
        Assert.Equal(Path.Combine(_dir.Path, "alice", "hotkeys", "miner1pub.txt"), w.HotkeyPubPath);
    }

    [Fact]
    public void The_default_path_expands_to_the_home_folder()
    {
        var w = new LocalWallet("default", "default", LocalWallet.DefaultPath);
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".bittensor", "wallets", "default", "coldkey"), w.ColdkeyPath);
    }

    [Fact]
    public void Explicit_values_win_over_fallbacks_and_fallbacks_over_btcli_defaults()
    {
        var w = LocalWallet.Resolve("n", null, _dir.Path, fallbackName: "ignored", fallbackHotkey: "hk");
        Assert.Equal("n", w.Name);
        Assert.Equal(Environment.GetEnvironmentVariable(LocalWallet.HotkeyVariable) ?? "hk", w.Hotkey);
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData("")]
    public void Names_that_would_leave_the_wallet_folder_are_refused(string name)
    {
        Assert.Throws<ArgumentException>(() => new LocalWallet(name, "default", _dir.Path));
        Assert.Throws<ArgumentException>(() => new LocalWallet("ok", name, _dir.Path));
    }

    [Fact]
    public void A_new_coldkey_writes_coldkey_and_coldkeypub_0600_and_refuses_a_second_time()
    {
        var w = new LocalWallet("a", "default", _dir.Path);
        using var key = Keyfile.Read(TestFiles.Vector("key0.plain"));
        w.CreateColdkey(key, password: null, overwrite: false);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, TestFiles.Mode(w.ColdkeyPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, TestFiles.Mode(w.ColdkeyPubPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, TestFiles.Mode(w.Directory));
        using (var pub = w.LoadColdkeyPub()) Assert.Equal(key.Ss58Address, pub.Ss58Address);

        using var other = Keyfile.Read(TestFiles.Vector("key1.plain"));
        var before = File.ReadAllBytes(w.ColdkeyPath);
        var e = Assert.Throws<KeyfileException>(() => w.CreateColdkey(other, null, overwrite: false));
        Assert.Equal(KeyfileError.AlreadyExists, e.Error);
        Assert.Equal(before, File.ReadAllBytes(w.ColdkeyPath));

        w.CreateColdkey(other, null, overwrite: true);
        using var pub2 = w.LoadColdkeyPub();
        Assert.Equal(other.Ss58Address, pub2.Ss58Address);
    }

    [Fact]
    public void Hotkeys_are_listed_without_their_pub_files_and_their_public_key_reads_without_a_password()
    {
        var w = new LocalWallet("a", "h1", _dir.Path);
        using var key = Keyfile.Read(TestFiles.Vector("key1.plain"));
        w.CreateHotkey(key, password: null, overwrite: false);
        new LocalWallet("a", "h0", _dir.Path).CreateHotkey(key, null, false);
        Assert.Equal(["h0", "h1"], w.HotkeyNames());
        using var pub = w.LoadHotkeyPub();
        Assert.Equal(key.Ss58Address, pub.Ss58Address);
        Assert.Equal(["a"], LocalWallet.List(_dir.Path));
    }

    [Fact]
    public void The_2021_bare_hex_coldkeypub_is_read_as_a_public_key()
    {
        var w = new LocalWallet("old", "default", _dir.Path);
        Directory.CreateDirectory(w.Directory);
        File.Copy(TestFiles.Vector("key0.coldkeypub.legacy.txt"), w.ColdkeyPubPath);
        using var pub = w.LoadColdkeyPub();
        Assert.False(pub.HasSecret);
        Assert.Equal("5DXnSWV9XZ9vmC13BTNK6XKyiHmdWo8EJNFweudRNECHGpMq", pub.Ss58Address);
    }
}

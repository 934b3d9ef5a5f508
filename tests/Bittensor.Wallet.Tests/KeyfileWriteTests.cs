using Bittensor.Wallet.Internal;

namespace Bittensor.Wallet.Tests;

/// <summary>Writes are atomic, 0600 in 0700 folders, and never replace a key unless told to.</summary>
public sealed class KeyfileWriteTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private const UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Rwx = Rw | UnixFileMode.UserExecute;

    [Fact]
    public void An_atomic_write_creates_missing_folders_0700_and_the_file_0600_with_no_temp_left()
    {
        var path = Path.Combine(_dir.Path, "w", "name", "hotkeys", "default");
        AtomicFile.Write(path, "hello"u8, overwrite: false);
        Assert.Equal("hello", File.ReadAllText(path));
        Assert.Equal(Rw, TestFiles.Mode(path));
        Assert.Equal(Rwx, TestFiles.Mode(Path.GetDirectoryName(path)!));
        Assert.Equal(Rwx, TestFiles.Mode(Path.Combine(_dir.Path, "w")));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void An_atomic_write_refuses_an_existing_file_and_leaves_it_untouched()
    {
        var path = _dir.File("coldkey");
        AtomicFile.Write(path, "original"u8, overwrite: false);
        var e = Assert.Throws<KeyfileException>(() => AtomicFile.Write(path, "replacement"u8, overwrite: false));
        Assert.Equal(KeyfileError.AlreadyExists, e.Error);
        Assert.Equal("original", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void Racing_writers_without_overwrite_leave_exactly_one_winner_and_no_temp_files()
    {
        var path = _dir.File("coldkey");
        var outcomes = new string?[16];
        Parallel.For(0, outcomes.Length, i =>
        {
            try
            {
                AtomicFile.Write(path, System.Text.Encoding.ASCII.GetBytes($"writer {i}"), overwrite: false);
                outcomes[i] = $"writer {i}";
            }
            catch (KeyfileException e) when (e.Error == KeyfileError.AlreadyExists)
            {
                outcomes[i] = null;
            }
        });
        var winner = Assert.Single(outcomes, o => o is not null);
        Assert.Equal(winner, File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void An_atomic_write_with_overwrite_replaces_the_content_and_keeps_0600()
    {
        var path = _dir.File("coldkey");
        File.WriteAllText(path, "old");
        File.SetUnixFileMode(path, Rw | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        AtomicFile.Write(path, "new"u8, overwrite: true);
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(Rw, TestFiles.Mode(path));
    }

    [Fact]
    public void A_plain_key_written_and_read_back_keeps_its_address_and_secret()
    {
        using var key = Keyfile.Read(TestFiles.Vector("key0.plain"));
        var path = _dir.File("hotkey");
        Keyfile.Write(path, key, encryptWith: null, overwrite: false);
        Assert.Equal(KeyfileFormat.Json, Keyfile.DetectFormat(path));
        using var back = Keyfile.Read(path);
        Assert.Equal(key.Ss58Address, back.Ss58Address);
        Assert.True(back.HasSecret);
        Assert.Equal(key.Sign("m"u8).Length, back.Sign("m"u8).Length);
        Assert.True(back.Verify("m"u8, key.Sign("m"u8)));
    }

    [Fact]
    public void A_public_file_holds_no_secret_fields()
    {
        using var key = Keyfile.Read(TestFiles.Vector("key1.plain"));
        var path = _dir.File("coldkeypub.txt");
        Keyfile.WritePublic(path, key, overwrite: false);
        var text = File.ReadAllText(path);
        Assert.Contains("\"secretPhrase\":null", text, StringComparison.Ordinal);
        Assert.Contains("\"privateKey\":null", text, StringComparison.Ordinal);
        Assert.DoesNotContain("above setup", text, StringComparison.Ordinal);
        using var back = Keyfile.Read(path);
        Assert.False(back.HasSecret);
        Assert.Equal(key.Ss58Address, back.Ss58Address);
    }

    [Fact]
    public void A_nacl_encrypted_key_reopens_with_its_password_and_starts_with_the_nacl_prefix()
    {
        using var key = Keyfile.Read(TestFiles.Vector("key1.plain"));
        var path = _dir.File("coldkey");
        var password = PasswordSource.FromCallback(_ => "a strong pass");
        Keyfile.Write(path, key, password, overwrite: false);
        Assert.Equal(KeyfileFormat.Nacl, Keyfile.DetectFormat(path));
        Assert.Equal(Rw, TestFiles.Mode(path));
        using var back = Keyfile.Read(path, password);
        Assert.Equal(key.Ss58Address, back.Ss58Address);
        Assert.True(back.HasSecret);
    }

    [Fact]
    public void Files_written_together_are_all_unchanged_when_one_of_them_cannot_be_written()
    {
        // The second file's folder cannot exist (its parent is a regular file): the write fails after the first file
        // was staged, which must then be neither renamed into place nor left behind as a temp file.
        var key = _dir.File("coldkey");
        var blocker = _dir.File("blocker");
        File.WriteAllText(blocker, "x");
        var pub = Path.Combine(blocker, "sub", "coldkeypub.txt");
        var e = Assert.Throws<KeyfileException>(() => AtomicFile.WriteAll(
            [new(key, "secret"u8.ToArray(), false), new(pub, "public"u8.ToArray(), true)]));
        Assert.Equal(KeyfileError.Io, e.Error);
        Assert.Contains("none of coldkey, coldkeypub.txt was changed", e.Message, StringComparison.Ordinal);
        Assert.Equal(new[] { "blocker" }, Directory.GetFiles(_dir.Path).Select(f => Path.GetFileName(f)));

        // Same with both files already there and overwrite on: both keep their old bytes.
        File.WriteAllText(key, "old secret");
        e = Assert.Throws<KeyfileException>(() => AtomicFile.WriteAll(
            [new(key, "new secret"u8.ToArray(), true), new(pub, "new public"u8.ToArray(), true)]));
        Assert.Equal(KeyfileError.Io, e.Error);
        Assert.Equal("old secret", File.ReadAllText(key));
        Assert.Equal(new[] { "blocker", "coldkey" }, Directory.GetFiles(_dir.Path).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Files_written_together_are_all_in_place_after_the_write()
    {
        var key = _dir.File("hotkeys/default");
        var pub = _dir.File("hotkeys/defaultpub.txt");
        AtomicFile.WriteAll([new(key, "secret"u8.ToArray(), false), new(pub, "public"u8.ToArray(), true)]);
        Assert.Equal("secret", File.ReadAllText(key));
        Assert.Equal("public", File.ReadAllText(pub));
        Assert.Equal(Rw, TestFiles.Mode(key));
        Assert.Equal(2, Directory.GetFiles(_dir.File("hotkeys")).Length);

        // Without overwrite an existing key is refused before anything is written.
        var e = Assert.Throws<KeyfileException>(() => AtomicFile.WriteAll([new(key, "other"u8.ToArray(), false), new(pub, "other"u8.ToArray(), true)]));
        Assert.Equal(KeyfileError.AlreadyExists, e.Error);
        Assert.Equal("secret", File.ReadAllText(key));
        Assert.Equal("public", File.ReadAllText(pub));
        Assert.Equal(2, Directory.GetFiles(_dir.File("hotkeys")).Length);
    }
}

namespace Bittensor.Wallet.Tests;

/// <summary>Damaged or foreign files give a typed error naming the file, never a crash or a secret.</summary>
public sealed class KeyfileErrorTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string WriteFile(string name, byte[] content)
    {
        var path = _dir.File(name);
        File.WriteAllBytes(path, content);
        return path;
    }

    private static KeyfileException ReadFails(string path, PasswordSource? password = null) =>
        Assert.Throws<KeyfileException>(() => Keyfile.Read(path, password));

    [Fact]
    public void A_missing_file_is_reported_as_not_found_with_its_path()
    {
        var path = _dir.File("nope");
        var e = ReadFails(path);
        Assert.Equal(KeyfileError.NotFound, e.Error);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_file_is_corrupt()
    {
        Assert.Equal(KeyfileError.Corrupt, ReadFails(WriteFile("empty", [])).Error);
    }

    [Fact]
    public void A_file_with_an_unknown_prefix_is_an_unknown_format()
    {
        var path = WriteFile("foreign", "$NACX this is not a keyfile"u8.ToArray());
        var e = ReadFails(path);
        Assert.Equal(KeyfileError.UnknownFormat, e.Error);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Binary_noise_is_an_unknown_format()
    {
        Assert.Equal(KeyfileError.UnknownFormat, ReadFails(WriteFile("noise", [0xff, 0x00, 0x13, 0x37, 0x42])).Error);
    }

    [Fact]
    public void A_truncated_nacl_file_is_corrupt_before_any_key_derivation()
    {
        var data = File.ReadAllBytes(TestFiles.Vector("key0.nacl"))[..30];
        var e = ReadFails(WriteFile("coldkey", data), PasswordSource.FromCallback(_ => TestFiles.VectorPassword));
        Assert.Equal(KeyfileError.Corrupt, e.Error);
        Assert.Contains("truncated", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_vault_file_is_corrupt()
    {
        var data = File.ReadAllBytes(TestFiles.Vector("key0.vault"))[..200];
        var e = ReadFails(WriteFile("coldkey", data), PasswordSource.FromCallback(_ => TestFiles.VectorPassword));
        Assert.Equal(KeyfileError.Corrupt, e.Error);
    }

    [Fact]
    public void A_truncated_fernet_token_is_corrupt_before_the_slow_key_derivation()
    {
        var data = File.ReadAllBytes(TestFiles.Vector("key0.fernet"))[..60];
        var e = ReadFails(WriteFile("coldkey", data), PasswordSource.FromCallback(_ => TestFiles.VectorPassword));
        Assert.Equal(KeyfileError.Corrupt, e.Error);
    }

    [Fact]
    public void Truncated_json_is_corrupt_and_the_message_holds_no_secret()
    {
        var full = File.ReadAllBytes(TestFiles.Vector("key0.plain"));
        var path = WriteFile("hotkey", full[..(full.Length / 2)]);
        var e = ReadFails(path);
        Assert.Equal(KeyfileError.Corrupt, e.Error);
        Assert.DoesNotContain("penalty", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("0x8835", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_that_is_not_an_object_or_holds_no_key_is_corrupt()
    {
        Assert.Equal(KeyfileError.UnknownFormat, ReadFails(WriteFile("a", "[1,2,3]"u8.ToArray())).Error);
        Assert.Equal(KeyfileError.Corrupt, ReadFails(WriteFile("b", "{\"foo\": \"bar\"}"u8.ToArray())).Error);
        Assert.Equal(KeyfileError.Corrupt, ReadFails(WriteFile("c", "{\"secretSeed\": \"0x1234\"}"u8.ToArray())).Error);
    }

    [Fact]
    public void A_mnemonic_with_a_bad_checksum_is_corrupt_without_echoing_the_words()
    {
        var path = WriteFile("hk", "{\"secretPhrase\": \"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon\"}"u8.ToArray());
        var e = ReadFails(path);
        Assert.Equal(KeyfileError.Corrupt, e.Error);
        Assert.DoesNotContain("abandon", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stored_address_that_does_not_match_the_secret_is_corrupt()
    {
        var text = File.ReadAllText(TestFiles.Vector("key0.plain"))
            .Replace("5DXnSWV9XZ9vmC13BTNK6XKyiHmdWo8EJNFweudRNECHGpMq", "5CPBWwf3QyFjLkaCzwUVtyj8rbve7demcJffZkPrF91tMYbR", StringComparison.Ordinal);
        var e = ReadFails(WriteFile("hk", System.Text.Encoding.UTF8.GetBytes(text)));
        Assert.Equal(KeyfileError.Corrupt, e.Error);
        Assert.Contains("ss58Address", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bare_hex_public_key_of_the_wrong_length_is_corrupt()
    {
        Assert.Equal(KeyfileError.Corrupt, ReadFails(WriteFile("coldkeypub.txt", "0x1234abcd"u8.ToArray())).Error);
    }

    [Fact]
    public void A_file_larger_than_any_keyfile_is_refused_without_reading_it_all()
    {
        var e = ReadFails(WriteFile("big", new byte[Keyfile.MaxFileBytes + 1]));
        Assert.Equal(KeyfileError.UnknownFormat, e.Error);
    }

    [Fact]
    public void A_nacl_file_with_a_wrong_password_is_refused_as_wrong_password_without_the_password_in_the_text()
    {
        var path = TestFiles.Vector("key0.nacl");
        var e = ReadFails(path, PasswordSource.FromCallback(_ => "hunter2-wrong"));
        Assert.Equal(KeyfileError.WrongPassword, e.Error);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }
}

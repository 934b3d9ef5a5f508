using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bittensor.Core;
using Bittensor.Wallet.Internal;

namespace Bittensor.Wallet.Tests;

/// <summary>
/// Decrypts every vector keyfile once (Argon2i costs 512 MiB and ~2 s per $NACL file, Fernet 10M PBKDF2 rounds),
/// shared by the tests of <see cref="KeyfileVectorTests"/>.
/// </summary>
public sealed class DecryptedVectors
{
    public DecryptedVectors()
    {
        var password = Encoding.UTF8.GetBytes(TestFiles.VectorPassword);
        foreach (var entry in TestFiles.Index())
        {
            var path = TestFiles.Vector(entry.File);
            var data = File.ReadAllBytes(path);
            Plaintexts[entry.File] = entry.Format switch
            {
                "nacl" => KeyfileCrypto.DecryptNacl(path, data, password),
                "fernet" => KeyfileCrypto.DecryptFernet(path, data, password),
                "vault" => KeyfileCrypto.DecryptAnsibleVault(path, data, password),
                _ => data,
            };
        }
    }

    public Dictionary<string, byte[]> Plaintexts { get; } = [];
}

public sealed class KeyfileVectorTests(DecryptedVectors vectors) : IClassFixture<DecryptedVectors>
{
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var e in TestFiles.Index()) data.Add(e.File);
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Every_vector_file_is_detected_as_its_declared_format(string file)
    {
        var entry = TestFiles.Index().Single(e => e.File == file);
        var expected = entry.Format switch
        {
            "plain" => KeyfileFormat.Json,
            "nacl" => KeyfileFormat.Nacl,
            "fernet" => KeyfileFormat.Fernet,
            "vault" => KeyfileFormat.AnsibleVault,
            "coldkeypub-2021" => KeyfileFormat.PublicKeyHex,
            _ => throw new InvalidOperationException(entry.Format),
        };
        Assert.Equal(expected, Keyfile.DetectFormat(TestFiles.Vector(file)));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Every_vector_file_opens_with_its_password_to_content_naming_the_expected_key(string file)
    {
        var entry = TestFiles.Index().Single(e => e.File == file);
        var plain = vectors.Plaintexts[file];
        if (entry.Format == "coldkeypub-2021")
        {
            Assert.Equal(entry.Public, Encoding.ASCII.GetString(plain).Trim());
            return;
        }
        using var doc = JsonDocument.Parse(plain);
        Assert.Equal(entry.Ss58, doc.RootElement.GetProperty("ss58Address").GetString());
        Assert.Equal(entry.Public, doc.RootElement.GetProperty("publicKey").GetString());
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Every_vector_file_gives_a_key_with_the_expected_ss58_address(string file)
    {
        var entry = TestFiles.Index().Single(e => e.File == file);
        var path = TestFiles.Vector(file);
        using var key = entry.Format switch
        {
            "plain" or "coldkeypub-2021" => Keyfile.Read(path),
            _ => KeyfileJson.Parse(path, vectors.Plaintexts[file]), // decrypted once by the fixture
        };
        Assert.Equal(entry.Ss58, key.Ss58Address);
        Assert.Equal(entry.Public, Hex.Encode(key.PublicKey.Span));
        Assert.Equal(entry.Format != "coldkeypub-2021", key.HasSecret);
    }

    [Fact]
    public void A_key_read_from_a_vector_writes_back_the_same_public_fields_seed_and_phrase()
    {
        var path = TestFiles.Vector("key1.plain");
        using var key = Keyfile.Read(path);
        var written = KeyfileJson.Serialize(key, publicOnly: false);
        using var original = JsonDocument.Parse(File.ReadAllBytes(path));
        using var ours = JsonDocument.Parse(written);
        foreach (var field in new[] { "accountId", "publicKey", "secretPhrase", "secretSeed", "ss58Address" })
            Assert.Equal(original.RootElement.GetProperty(field).GetString(), ours.RootElement.GetProperty(field).GetString());
        CryptographicOperations.ZeroMemory(written);
    }

    [Fact]
    public void The_vectors_ed25519_form_private_key_and_our_canonical_one_both_open_to_the_same_key()
    {
        using var dir = new TempDir();
        using var original = JsonDocument.Parse(File.ReadAllBytes(TestFiles.Vector("key0.plain")));
        var vectorPrivate = original.RootElement.GetProperty("privateKey").GetString()!;
        var onlyVectorPrivate = dir.File("ed25519-form");
        File.WriteAllText(onlyVectorPrivate, $"{{\"privateKey\": \"{vectorPrivate}\"}}");
        using var fromVector = Keyfile.Read(onlyVectorPrivate);
        Assert.Equal("5DXnSWV9XZ9vmC13BTNK6XKyiHmdWo8EJNFweudRNECHGpMq", fromVector.Ss58Address);

        var ours = JsonDocument.Parse(KeyfileJson.Serialize(fromVector, publicOnly: false));
        var canonical = ours.RootElement.GetProperty("privateKey").GetString()!;
        Assert.NotEqual(vectorPrivate, canonical);
        Assert.True(Convert.FromHexString(canonical[2..])[31] < 0x20); // a canonical scalar is below ℓ
        var onlyCanonical = dir.File("canonical");
        File.WriteAllText(onlyCanonical, $"{{\"privateKey\": \"{canonical}\"}}");
        using var fromCanonical = Keyfile.Read(onlyCanonical);
        Assert.Equal(fromVector.Ss58Address, fromCanonical.Ss58Address);
        Assert.True(fromCanonical.Verify("x"u8, fromVector.Sign("x"u8)));
        Assert.True(fromVector.Verify("x"u8, fromCanonical.Sign("x"u8)));
    }

    [Fact]
    public void A_vault_file_with_a_wrong_password_is_refused_as_wrong_password_naming_the_file()
    {
        var path = TestFiles.Vector("key0.vault");
        var e = Assert.Throws<KeyfileException>(() => Keyfile.Read(path, PasswordSource.FromCallback(_ => "not the password")));
        Assert.Equal(KeyfileError.WrongPassword, e.Error);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("not the password", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vault_file_opens_through_the_public_reader_with_a_password_file()
    {
        using var dir = new TempDir();
        var pw = dir.File("pw");
        File.WriteAllText(pw, TestFiles.VectorPassword + "\n");
        using var key = Keyfile.Read(TestFiles.Vector("key0.vault"), PasswordSource.FromFile(pw));
        Assert.Equal("5DXnSWV9XZ9vmC13BTNK6XKyiHmdWo8EJNFweudRNECHGpMq", key.Ss58Address);
        Assert.True(key.HasSecret);
    }

    [Fact]
    public void An_encrypted_file_without_a_password_source_asks_for_one()
    {
        var path = TestFiles.Vector("key0.vault");
        var e = Assert.Throws<KeyfileException>(() => Keyfile.Read(path));
        Assert.Equal(KeyfileError.PasswordRequired, e.Error);
    }
}

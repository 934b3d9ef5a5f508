using System.Text;
using Bittensor.Core;
using Bittensor.Core.Crypto;
using Bittensor.Wallet.Internal;

namespace Bittensor.Wallet.Tests;

/// <summary>The Argon2i key of "testing123", derived once for the class.</summary>
public sealed class Testing123Key
{
    public byte[] Key { get; } = KeyfileCrypto.DeriveNaclKey("testing123"u8);
}

/// <summary>SUBSTRATE.md §3.3: the libsodium-made $NACL vector.</summary>
public sealed class NaclVectorTests(Testing123Key derived) : IClassFixture<Testing123Key>
{
    private const string Plaintext = "{\"accountId\": \"0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d\"}";

    private const string Blob =
        "244e41434c000102030405060708090a0b0c0d0e0f101112131415161798730d15bb9e0d456898a8583b729b74c1e28e0c9a1b21b8a175e6fa449ddbde2adc1ed9cd270ceb8e4c40b4272d0ebf4098156a72e7b260352b865dfc3cc24897ed85ebd120a89668aec3b9282e9ff26e7caf4ef5b2916b4af2e3c01851baff67020c";

    [Fact]
    public void Argon2i_with_btcli_parameters_gives_the_libsodium_key()
    {
        Assert.Equal("0x7dce131fd201cfb0beb8551f6ffcfc6132f7bd194ad41a611e6a782ef7e7dd5c", Hex.Encode(derived.Key));
    }

    [Fact]
    public void Secretbox_with_that_key_and_nonce_0_to_23_gives_the_vector_blob()
    {
        var nonce = Enumerable.Range(0, 24).Select(i => (byte)i).ToArray();
        var blob = KeyfileCrypto.EncryptNaclWithKey(Encoding.ASCII.GetBytes(Plaintext), derived.Key, nonce);
        Assert.Equal(Blob, Convert.ToHexStringLower(blob));
    }

    [Fact]
    public void The_vector_blob_opens_to_the_plaintext_and_a_flipped_byte_does_not()
    {
        var blob = Convert.FromHexString(Blob);
        var plain = new byte[blob.Length - 29 - 16];
        Assert.True(Sodium.SecretBoxOpen(blob.AsSpan(29), blob.AsSpan(5, 24), derived.Key, plain));
        Assert.Equal(Plaintext, Encoding.ASCII.GetString(plain));
        blob[^1] ^= 1;
        Assert.False(Sodium.SecretBoxOpen(blob.AsSpan(29), blob.AsSpan(5, 24), derived.Key, plain));
    }
}

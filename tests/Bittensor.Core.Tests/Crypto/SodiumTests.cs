using System.Text;
using Bittensor.Core.Crypto;

namespace Bittensor.Core.Tests.Crypto;

public sealed class SodiumTests
{
    private static readonly byte[] NaclSalt = Convert.FromHexString("137183dff15a09bc9c90b5518739e9b1");

    [Fact]
    public void Argon2i_with_the_nacl_keyfile_parameters_reproduces_the_libsodium_vector()
    {
        var key = new byte[32];
        Sodium.Argon2i("testing123"u8, NaclSalt, 8, 536_870_912, key);
        Assert.Equal("7dce131fd201cfb0beb8551f6ffcfc6132f7bd194ad41a611e6a782ef7e7dd5c", Convert.ToHexStringLower(key));
    }

    [Fact]
    public void Secretbox_seal_reproduces_the_nacl_keyfile_vector_and_opens_again()
    {
        var key = Convert.FromHexString("7dce131fd201cfb0beb8551f6ffcfc6132f7bd194ad41a611e6a782ef7e7dd5c");
        var nonce = Enumerable.Range(0, 24).Select(i => (byte)i).ToArray();
        var plain = Encoding.UTF8.GetBytes("{\"accountId\": \"0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d\"}");
        var box = new byte[plain.Length + 16];
        Sodium.SecretBoxSeal(plain, nonce, key, box);
        var blob = "$NACL"u8.ToArray().Concat(nonce).Concat(box).ToArray();
        Assert.Equal("244e41434c000102030405060708090a0b0c0d0e0f101112131415161798730d15bb9e0d456898a8583b729b74c1e28e0c9a1b21b8a175e6fa449ddbde2adc1ed9cd270ceb8e4c40b4272d0ebf4098156a72e7b260352b865dfc3cc24897ed85ebd120a89668aec3b9282e9ff26e7caf4ef5b2916b4af2e3c01851baff67020c",
            Convert.ToHexStringLower(blob));
        var back = new byte[plain.Length];
        Assert.True(Sodium.SecretBoxOpen(box, nonce, key, back));
        Assert.Equal(plain, back);
    }

    [Fact]
    public void Secretbox_open_returns_false_for_a_wrong_key_or_a_flipped_bit()
    {
        var key = new byte[32];
        key[0] = 1;
        var nonce = new byte[24];
        var plain = "secret"u8.ToArray();
        var box = new byte[plain.Length + 16];
        Sodium.SecretBoxSeal(plain, nonce, key, box);
        var output = new byte[plain.Length];
        var wrong = (byte[])key.Clone();
        wrong[31] ^= 1;
        Assert.False(Sodium.SecretBoxOpen(box, nonce, wrong, output));
        Assert.All(output, b => Assert.Equal(0, b));
        box[^1] ^= 0x10;
        Assert.False(Sodium.SecretBoxOpen(box, nonce, key, output));
        Assert.False(Sodium.SecretBoxOpen(new byte[5], nonce, key, []));
    }

    [Fact]
    public void Random_bytes_fill_the_buffer_and_memzero_clears_it()
    {
        var buffer = new byte[64];
        Sodium.RandomBytes(buffer);
        Assert.Contains(buffer, b => b != 0);
        Sodium.MemZero(buffer);
        Assert.All(buffer, b => Assert.Equal(0, b));
    }
}

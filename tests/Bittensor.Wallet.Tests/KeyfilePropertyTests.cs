using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Bittensor.Wallet.Tests;

/// <summary>Hostile bytes never crash the reader: it answers with a key or a <see cref="KeyfileException"/>.</summary>
public sealed class KeyfilePropertyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private bool ReadsOrFailsCleanly(byte[] content, PasswordSource? password = null)
    {
        var path = _dir.File(Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(path, content);
        try
        {
            using var key = Keyfile.Read(path, password);
            return key.Ss58Address.Length == 48;
        }
        catch (KeyfileException e)
        {
            return e.Path == path && e.Message.Contains(path, StringComparison.Ordinal);
        }
    }

    [Property(MaxTest = 200)]
    public bool Any_bytes_give_a_key_or_a_keyfile_error(byte[] content) => ReadsOrFailsCleanly(content);

    [Property(MaxTest = 200)]
    public Property A_plain_keyfile_with_one_byte_changed_gives_a_key_or_a_keyfile_error()
    {
        var original = File.ReadAllBytes(TestFiles.Vector("key1.plain"));
        return Prop.ForAll(
            Gen.Choose(0, original.Length - 1).ToArbitrary(),
            Gen.Choose(0, 255).ToArbitrary(),
            (index, value) =>
            {
                var copy = (byte[])original.Clone();
                copy[index] = (byte)value;
                return ReadsOrFailsCleanly(copy);
            });
    }

    [Property(MaxTest = 60)]
    public Property Every_truncation_of_a_vault_or_plain_keyfile_is_refused_cleanly()
    {
        var files = new[] { "key0.vault", "key1.plain", "key0.coldkeypub.legacy.txt" }.Select(f => File.ReadAllBytes(TestFiles.Vector(f))).ToArray();
        var password = PasswordSource.FromCallback(_ => TestFiles.VectorPassword);
        return Prop.ForAll(
            Gen.Choose(0, files.Length - 1).ToArbitrary(),
            Gen.Choose(1, 10_000).ToArbitrary(),
            (which, cut) =>
            {
                var file = files[which];
                var length = cut % file.Length; // always shorter than the whole file
                var path = _dir.File(Guid.NewGuid().ToString("N"));
                File.WriteAllBytes(path, file[..length]);
                var e = Record.Exception(() => Keyfile.Read(path, password).Dispose());
                return e is KeyfileException;
            });
    }
}

using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol.Tests;

/// <summary>
/// Runs tests/python/check_codec.py with Debian's python3 + msgpack-numpy (test.sh installs them): our
/// buffers must decode in Python exactly as a 2021 peer decodes them, and Python's must decode here.
/// A missing interpreter or module fails the test with the reason; it is never skipped.
/// </summary>
public sealed class PythonInteropTests : IDisposable
{
    private readonly string _dir = TempDir.Create();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "tests", "python", "check_codec.py"))) return d.FullName;
        throw new InvalidOperationException("tests/python/check_codec.py not found above " + AppContext.BaseDirectory);
    }

    internal static string Python() => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    internal static (int ExitCode, string StdOut, string StdErr) Run(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(Python()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"cannot start {Python()} ({e.Message}); run test.sh or apt-get install python3 python3-msgpack-numpy python3-numpy", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{script} did not finish within 120 s");
            }
            return (process.ExitCode, stdout.Result, stderr.Result);
        }
    }

    private string WriteCase<T>(string name, T[] values, long[] shape, Func<T[], long[], byte[]> encode, string dtype) where T : unmanaged
    {
        var prefix = Path.Combine(_dir, name);
        File.WriteAllBytes(prefix + ".msgpack", encode(values, shape));
        File.WriteAllText(prefix + ".json", JsonSerializer.Serialize(new { dtype, shape }));
        File.WriteAllBytes(prefix + ".raw", MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        return prefix;
    }

    [Fact]
    public void Python_msgpack_numpy_decodes_our_buffers_and_repacks_them_to_the_same_bytes_and_ours_decode_pythons()
    {
        var rng = new Random(7);
        var big = new float[10 * 20 * 1024];
        for (var i = 0; i < big.Length; i++) big[i] = (float)(rng.NextDouble() * 2 - 1);
        var cases = new[]
        {
            WriteCase("f32_network", big, [10, 20, 1024], (v, s) => TensorCodec.EncodeToArray(v, s), "<f4"),
            WriteCase("f32_zeros", new float[6], [1, 2, 3], (v, s) => TensorCodec.EncodeToArray(v, s), "<f4"),
            WriteCase("i64_tokens", [1L, 2L], [1, 2], (v, s) => TensorCodec.EncodeToArray(v, s), "<i8"),
            WriteCase("f64_vector", [Math.PI, -0.0, double.MaxValue], [3], (v, s) => TensorCodec.EncodeToArray(v, s), "<f8"),
            WriteCase("i32_wide", Enumerable.Range(-150, 300).ToArray(), [1, 300], (v, s) => TensorCodec.EncodeToArray(v, s), "<i4"),
            WriteCase("i64_uint32_dim", new long[70_000], [70_000, 1], (v, s) => TensorCodec.EncodeToArray(v, s), "<i8"),
            WriteCase("f32_empty", new float[0], [0, 5], (v, s) => TensorCodec.EncodeToArray(v, s), "<f4"),
        };

        var (exit, stdout, stderr) = Run(Path.Combine(RepoRoot(), "tests", "python", "check_codec.py"), [_dir, .. cases]);
        Assert.True(exit == 0, $"check_codec.py exited {exit}: {stderr.Trim()} {stdout.Trim()}");

        var f32 = TensorCodec.DecodeBuffer(File.ReadAllBytes(Path.Combine(_dir, "py_f32.msgpack")));
        Assert.True(f32.IsSuccess, f32.Message);
        Assert.Equal(DataType.Float32, f32.Tensor.DataType);
        Assert.Equal([2L, 3L, 4L], f32.Tensor.ShapeToArray());
        Assert.Equal(Enumerable.Range(0, 24).Select(i => i * 0.5f - 3f).ToArray(), f32.Tensor.ToFloat32Array());

        var i64 = TensorCodec.DecodeBuffer(File.ReadAllBytes(Path.Combine(_dir, "py_i64.msgpack")));
        Assert.True(i64.IsSuccess, i64.Message);
        Assert.Equal([1L, 5L], i64.Tensor.ShapeToArray());
        Assert.Equal([0L, 1L, 50256L, 1L << 40, -7L], i64.Tensor.ToInt64Array());
    }
}

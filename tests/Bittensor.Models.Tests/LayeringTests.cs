using System.Reflection;
using System.Xml.Linq;
using Bittensor.Models.Nucleus;

namespace Bittensor.Models.Tests;

/// <summary>Bittensor.Models is TorchSharp only: no Akka, no runtime project (issue 8, layers).</summary>
public sealed class LayeringTests
{
    private static readonly string[] Forbidden = ["Akka", "Bittensor.Actors", "Bittensor.Neurons", "Bittensor.Chain", "Bittensor.Wallet", "Bittensor.Cli", "Grpc"];

    [Fact]
    public void The_models_assembly_references_no_akka_and_no_runtime_assembly()
    {
        var references = typeof(ServerModel).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();
        Assert.Contains("TorchSharp", references);
        Assert.DoesNotContain(references, r => Forbidden.Any(f => r.StartsWith(f, StringComparison.Ordinal)));
    }

    [Fact]
    public void The_models_project_file_references_no_akka_package_and_no_runtime_project()
    {
        var csproj = Path.Combine(RepoRoot(), "src", "Bittensor.Models", "Bittensor.Models.csproj");
        var doc = XDocument.Load(csproj);
        var packages = doc.Descendants("PackageReference").Select(e => (string)e.Attribute("Include")!).ToArray();
        var projects = doc.Descendants("ProjectReference").Select(e => Path.GetFileNameWithoutExtension(((string)e.Attribute("Include")!).Replace('\\', '/'))).ToArray();
        Assert.Contains("TorchSharp-cpu", packages);
        Assert.DoesNotContain(packages, p => p.StartsWith("Akka", StringComparison.Ordinal));
        Assert.Equal(["Bittensor.Build.ElfPatch", "Bittensor.Core"], projects.Order(StringComparer.Ordinal));
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Bittensor.Actors.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Bittensor.Actors.sln above {AppContext.BaseDirectory}");
    }
}

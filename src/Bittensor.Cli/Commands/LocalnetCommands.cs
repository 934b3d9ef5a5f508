using System.CommandLine;
using Bittensor.Chain.Yuma;

namespace Bittensor.Cli.Commands;

/// <summary><c>btcli localnet ...</c> verbs: the embedded chain and its pure epoch function.</summary>
internal static class LocalnetCommands
{
    /// <summary>Creates the <c>localnet</c> group and adds its verbs; further verbs go in as <c>AddXxx(group)</c>.</summary>
    public static Command Register(RootCommand root)
    {
        var localnet = new Command("localnet", "Embedded local chain: run blocks, reset, and run a single Yuma epoch");
        root.Subcommands.Add(localnet);
        AddEpoch(localnet);
        LocalnetChainCommands.AddRun(localnet);
        LocalnetChainCommands.AddReset(localnet);
        return localnet;
    }

    /// <summary><c>btcli localnet epoch --input case.json</c>: one Yuma epoch (spec 148) as a pure function.</summary>
    internal static void AddEpoch(Command localnet)
    {
        var input = new Option<FileInfo>("--input")
        {
            Description = "Epoch case JSON (block, tempo, emission_rao, hyperparams, neurons, prev_validator_permit); see docs/epoch-json.md",
            Required = true,
        };
        var epoch = new Command("epoch", "Run one Yuma consensus epoch on a JSON case and print the result as JSON");
        epoch.Options.Add(input);
        epoch.SetAction(parse =>
        {
            var file = parse.GetValue(input) ?? throw new CliException("--input is required");
            Console.Out.Write(RunEpoch(file.FullName));
            return 0;
        });
        localnet.Subcommands.Add(epoch);
    }

    /// <summary>Reads the case file, runs the epoch and returns the output JSON; user errors become <see cref="CliException"/>.</summary>
    internal static string RunEpoch(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new CliException($"input file not found: {path}");
            if (info.Length > EpochJson.MaxDocumentBytes)
                throw new CliException($"input file too large: {info.Length} bytes (at most {EpochJson.MaxDocumentBytes})");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read {path}: {e.Message}");
        }
        try
        {
            var caseInput = EpochJson.ReadInput(bytes);
            return EpochJson.WriteOutput(YumaEpoch.Run(caseInput));
        }
        catch (EpochInputException e)
        {
            throw new CliException($"{path}: {e.Message}");
        }
    }
}

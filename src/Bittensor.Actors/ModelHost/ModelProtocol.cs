namespace Bittensor.Actors.ModelHost;

// Messages between the ModelHost and its ModelWorker; they never leave the process.

/// <summary>One coalesced forward call: <paramref name="Tokens"/> is [rows, seq].</summary>
internal sealed record ForwardJob(long JobId, long[] Tokens, int Rows, int Seq);

/// <summary>One backward step.</summary>
internal sealed record BackwardJob(long JobId, ModelBackward Request);

/// <summary>A forward job's outputs, [rows, seq, dim] row-major.</summary>
internal sealed record ForwardJobDone(long JobId, float[] Data, int Rows, int Seq, int Dim);

/// <summary>A backward job's step.</summary>
internal sealed record BackwardJobDone(long JobId, long Step);

/// <summary>A job failed; <paramref name="Fatal"/> means the model actor is crashing and will restart.</summary>
internal sealed record JobFailed(long JobId, ModelReturnCode Code, string Message, bool Fatal);

/// <summary>A model actor incarnation is up and takes jobs.</summary>
internal sealed record ModelReady(int Incarnation, long RestoredStep);

/// <summary>A model actor incarnation could not start (its factory or checkpoint load threw); it stops next.</summary>
internal sealed record ModelStartFailed(string Reason);

/// <summary>Where checkpoints live and how many incarnations there were; shared by all incarnations of one model.</summary>
internal sealed class ModelLineage
{
    private readonly object _gate = new();
    private int _incarnations;
    private long _checkpointStep;
    private bool _hasCheckpoint;

    public ModelLineage(string checkpointPath, bool ownsFile)
    {
        CheckpointPath = checkpointPath;
        OwnsFile = ownsFile;
        _hasCheckpoint = File.Exists(checkpointPath);
    }

    public string CheckpointPath { get; }

    /// <summary>True when the path is a temp file this lineage made and deletes.</summary>
    public bool OwnsFile { get; }

    /// <summary>Incarnations started so far.</summary>
    public int Incarnations
    {
        get
        {
            lock (_gate) return _incarnations;
        }
    }

    public int NextIncarnation()
    {
        lock (_gate) return ++_incarnations;
    }

    public (bool Has, long Step) Checkpoint
    {
        get
        {
            lock (_gate) return (_hasCheckpoint, _checkpointStep);
        }
    }

    public void Saved(long step)
    {
        lock (_gate)
        {
            _hasCheckpoint = true;
            _checkpointStep = step;
        }
    }
}

/// <summary>Thrown by the <see cref="FailNextForward"/> test hook.</summary>
internal sealed class InjectedFaultException() : Exception("fault injected by FailNextForward");

/// <summary>The model produced NaN/Inf; its weights are not trusted any more.</summary>
internal sealed class ModelDivergedException(string message) : Exception(message);

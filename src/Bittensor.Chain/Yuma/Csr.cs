namespace Bittensor.Chain.Yuma;

/// <summary>
/// Square sparse matrix in compressed-row form holding <see cref="I32F32"/> bits: the C# shape of the runtime's
/// <c>Vec&lt;Vec&lt;(u16, I32F32)&gt;&gt;</c>. Each method mirrors one *_sparse function of math.rs (spec 148).
/// Entry order inside a row does not change any result (all sums are exact integer additions), except where
/// noted.
/// </summary>
internal sealed class Csr
{
    public readonly int N;
    public readonly int[] RowPtr;
    public int[] Col;
    public long[] Val;

    private Csr(int n, int[] rowPtr, int[] col, long[] val)
    {
        N = n; RowPtr = rowPtr; Col = col; Val = val;
    }

    public int Count => RowPtr[N];

    /// <summary>
    /// get_weights_sparse / get_bonds_sparse (values as raw integers) followed by mask_rows_sparse
    /// (<paramref name="dropRows"/>), mask_diag_sparse and vec_mask_sparse_matrix with
    /// <c>last_update[i] &lt;= block_at_registration[j]</c>.
    /// </summary>
    public static Csr Build(int n, IReadOnlyList<UidValue>[] rows, bool[]? dropRows, bool maskDiagonal,
        ulong[] lastUpdate, ulong[] blockAtRegistration)
    {
        var rowPtr = new int[n + 1];
        long total = 0;
        for (int i = 0; i < n; i++)
            if (dropRows is null || !dropRows[i]) total += rows[i].Count;
        var col = new int[total];
        var val = new long[total];
        int k = 0;
        for (int i = 0; i < n; i++)
        {
            rowPtr[i] = k;
            if (dropRows is not null && dropRows[i]) continue;
            ulong updated = lastUpdate[i];
            var row = rows[i];
            if (row is UidValue[] arr)
            {
                foreach (var e in arr)
                {
                    int j = e.Uid;
                    if ((maskDiagonal && j == i) || updated <= blockAtRegistration[j]) continue;
                    col[k] = j; val[k] = (long)e.Value << 32; k++;
                }
            }
            else
            {
                for (int t = 0; t < row.Count; t++)
                {
                    var e = row[t];
                    int j = e.Uid;
                    if ((maskDiagonal && j == i) || updated <= blockAtRegistration[j]) continue;
                    col[k] = j; val[k] = (long)e.Value << 32; k++;
                }
            }
        }
        rowPtr[n] = k;
        return new Csr(n, rowPtr, col, val);
    }

    /// <summary>inplace_row_normalize_sparse.</summary>
    public void InplaceRowNormalize()
    {
        for (int i = 0; i < N; i++)
        {
            int a = RowPtr[i], b = RowPtr[i + 1];
            long sum = 0;
            for (int t = a; t < b; t++) sum = unchecked(sum + Val[t]);
            if (sum <= 0) continue;
            for (int t = a; t < b; t++) Val[t] = I32F32.DivBits(Val[t], sum);
        }
    }

    /// <summary>matmul_sparse: result_j = Σ_i vector_i · m_ij.</summary>
    public I32F32[] MatMul(I32F32[] vector)
    {
        var result = new long[N];
        for (int i = 0; i < N; i++)
        {
            long v = vector[i].Bits;
            for (int t = RowPtr[i]; t < RowPtr[i + 1]; t++)
                result[Col[t]] = unchecked(result[Col[t]] + I32F32.MulBits(v, Val[t]));
        }
        return Wrap(result);
    }

    /// <summary>matmul_transpose_sparse: result_i = Σ_j vector_j · m_ij.</summary>
    public I32F32[] MatMulTranspose(I32F32[] vector)
    {
        var result = new long[N];
        for (int i = 0; i < N; i++)
        {
            long acc = 0;
            for (int t = RowPtr[i]; t < RowPtr[i + 1]; t++)
                acc = unchecked(acc + I32F32.MulBits(vector[Col[t]].Bits, Val[t]));
            result[i] = acc;
        }
        return Wrap(result);
    }

    /// <summary>row_sum_sparse.</summary>
    public I32F32[] RowSum()
    {
        var result = new long[N];
        for (int i = 0; i < N; i++)
        {
            long acc = 0;
            for (int t = RowPtr[i]; t < RowPtr[i + 1]; t++) acc = unchecked(acc + Val[t]);
            result[i] = acc;
        }
        return Wrap(result);
    }

    /// <summary>
    /// col_clip_sparse: values above the column threshold become the threshold, or are dropped when the
    /// threshold is not positive.
    /// </summary>
    public void ColClip(I32F32[] threshold)
    {
        int k = 0;
        for (int i = 0; i < N; i++)
        {
            int a = RowPtr[i], b = RowPtr[i + 1];
            RowPtr[i] = k;
            for (int t = a; t < b; t++)
            {
                int j = Col[t];
                long c = threshold[j].Bits, v = Val[t];
                if (c < v)
                {
                    if (0 < c) { Col[k] = j; Val[k] = c; k++; }
                }
                else { Col[k] = j; Val[k] = v; k++; }
            }
        }
        RowPtr[N] = k;
    }

    /// <summary>row_hadamard_sparse in place: m_ij · vector_i.</summary>
    public void InplaceRowHadamard(I32F32[] vector)
    {
        for (int i = 0; i < N; i++)
        {
            long v = vector[i].Bits;
            for (int t = RowPtr[i]; t < RowPtr[i + 1]; t++) Val[t] = I32F32.MulBits(Val[t], v);
        }
    }

    /// <summary>inplace_col_normalize_sparse (columns = n).</summary>
    public void InplaceColNormalize()
    {
        var colSum = new long[N];
        int count = Count;
        for (int t = 0; t < count; t++) colSum[Col[t]] = unchecked(colSum[Col[t]] + Val[t]);
        for (int t = 0; t < count; t++)
        {
            long s = colSum[Col[t]];
            if (s == 0) continue;
            Val[t] = I32F32.DivBits(Val[t], s);
        }
    }

    /// <summary>inplace_col_max_upscale_sparse.</summary>
    public void InplaceColMaxUpscale()
    {
        var colMax = new long[N];
        int count = Count;
        for (int t = 0; t < count; t++) if (colMax[Col[t]] < Val[t]) colMax[Col[t]] = Val[t];
        for (int t = 0; t < count; t++)
        {
            long m = colMax[Col[t]];
            if (m == 0) continue;
            Val[t] = I32F32.DivBits(Val[t], m);
        }
    }

    /// <summary>
    /// mat_ema_sparse: per row, alpha·new + (1-alpha)·old accumulated densely, emitted in ascending column order
    /// where the value is positive. Columns are visited through a touched list instead of a full n-wide scan.
    /// </summary>
    public static Csr MatEma(Csr newer, Csr older, I32F32 alpha)
    {
        int n = newer.N;
        var oneMinusAlpha = I32F32.One - alpha;
        var rowPtr = new int[n + 1];
        var col = new int[newer.Count + older.Count];
        var val = new long[col.Length];
        var acc = new long[n];
        var touched = new bool[n];
        var list = new int[n];
        int k = 0;
        for (int i = 0; i < n; i++)
        {
            rowPtr[i] = k;
            int m = 0;
            for (int t = newer.RowPtr[i]; t < newer.RowPtr[i + 1]; t++)
            {
                int j = newer.Col[t];
                if (!touched[j]) { touched[j] = true; list[m++] = j; }
                acc[j] = unchecked(acc[j] + I32F32.MulBits(alpha.Bits, newer.Val[t]));
            }
            for (int t = older.RowPtr[i]; t < older.RowPtr[i + 1]; t++)
            {
                int j = older.Col[t];
                if (!touched[j]) { touched[j] = true; list[m++] = j; }
                acc[j] = unchecked(acc[j] + I32F32.MulBits(oneMinusAlpha.Bits, older.Val[t]));
            }
            if (m > n / 16)
            {
                // Wide row: a straight scan is cheaper than sorting the touched columns.
                for (int j = 0; j < n; j++)
                {
                    if (!touched[j]) continue;
                    if (acc[j] > 0) { col[k] = j; val[k] = acc[j]; k++; }
                    acc[j] = 0; touched[j] = false;
                }
            }
            else
            {
                Array.Sort(list, 0, m);
                for (int q = 0; q < m; q++)
                {
                    int j = list[q];
                    if (acc[j] > 0) { col[k] = j; val[k] = acc[j]; k++; }
                    acc[j] = 0; touched[j] = false;
                }
            }
        }
        rowPtr[n] = k;
        return new Csr(n, rowPtr, col, val);
    }

    /// <summary>
    /// weighted_median_col_sparse: the stake-weighted median of every column over the rows with positive stake
    /// (row order kept), missing entries counting as zero.
    /// </summary>
    public I32F32[] WeightedMedianCol(I32F32[] stake, I32F32 majority)
    {
        var median = new I32F32[N];
        // use_stake: positive stakes in row order, normalised again.
        var rowOfK = new List<int>();
        for (int r = 0; r < N; r++) if (stake[r] > I32F32.Zero) rowOfK.Add(r);
        int kCount = rowOfK.Count;
        var useStake = new I32F32[kCount];
        for (int q = 0; q < kCount; q++) useStake[q] = stake[rowOfK[q]];
        YumaMath.InplaceNormalize(useStake);
        var stakeSum = YumaMath.Sum(useStake);
        var minority = stakeSum - majority;

        // Column-major copy of the entries of rows with stake (k = position among those rows).
        var colPtr = new int[N + 1];
        for (int q = 0; q < kCount; q++)
        {
            int r = rowOfK[q];
            for (int t = RowPtr[r]; t < RowPtr[r + 1]; t++) colPtr[Col[t] + 1]++;
        }
        for (int c = 0; c < N; c++) colPtr[c + 1] += colPtr[c];
        var fill = (int[])colPtr.Clone();
        var entK = new int[colPtr[N]];
        var entV = new long[colPtr[N]];
        for (int q = 0; q < kCount; q++)
        {
            int r = rowOfK[q];
            for (int t = RowPtr[r]; t < RowPtr[r + 1]; t++)
            {
                int c = Col[t];
                int pos = fill[c]++;
                entK[pos] = q; entV[pos] = Val[t];
            }
        }

        // The runtime builds a dense k-long score column per server and runs weighted_median on it. The median it
        // returns is unique whatever the order of the pairs: every partition edge it compares is an exact integer
        // cumulative stake, so it returns the score v with L(v) <= minority < L(v) + S(v) (L = stake below v,
        // S = stake at v), the minimum score when minority < 0 and the maximum when minority >= the stake sum.
        // All rows without a positive entry in a column score 0, so they are folded into one (0, their stake) pair:
        // O(entries) per column instead of O(k). The dense oracle keeps the runtime's layout and is compared
        // against this path by the property tests.
        var stakeBits = new long[kCount];
        for (int q = 0; q < kCount; q++) stakeBits[q] = useStake[q].Bits;
        var scoreA = new long[kCount];
        var stakeA = new long[kCount];
        var scoreB = new long[kCount];
        var stakeB = new long[kCount];
        for (int c = 0; c < N; c++)
        {
            int m = 0;
            long positiveStake = 0;
            for (int pos = colPtr[c]; pos < colPtr[c + 1]; pos++)
            {
                if (entV[pos] <= 0) continue;
                scoreA[m] = entV[pos];
                stakeA[m] = stakeBits[entK[pos]];
                positiveStake = unchecked(positiveStake + stakeA[m]);
                m++;
            }
            if (m < kCount)
            {
                scoreA[m] = 0;
                stakeA[m] = unchecked(stakeSum.Bits - positiveStake);
                m++;
            }
            median[c] = YumaMath.WeightedMedian(scoreA, stakeA, scoreB, stakeB, m, minority, I32F32.Zero, stakeSum);
        }
        return median;
    }

    /// <summary>One stored bonds row: (j, fixed_proportion_to_u16(value)) in row order.</summary>
    public UidValue[] RowToU16(int i)
    {
        int a = RowPtr[i], b = RowPtr[i + 1];
        var row = new UidValue[b - a];
        for (int t = a; t < b; t++)
            row[t - a] = new UidValue((ushort)Col[t], YumaMath.FixedProportionToU16(I32F32.FromBits(Val[t])));
        return row;
    }

    private static I32F32[] Wrap(long[] bits)
    {
        var r = new I32F32[bits.Length];
        for (int i = 0; i < bits.Length; i++) r[i] = I32F32.FromBits(bits[i]);
        return r;
    }
}

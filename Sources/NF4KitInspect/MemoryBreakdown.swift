public import NF4KitCore
import NF4KitQuant

/// Where a checkpoint's bytes go, and what the same model would cost stored another way.
///
/// Roles follow nf4-bitsandbytes.md §6 and §8: packed 4-bit codes; first-level constants (`absmax`); nested
/// constants and code maps (`nested_absmax`, `quant_map`, `nested_quant_map`, the quant-state JSON, which holds the
/// double-quantization offset); and unquantized tensors by dtype. All sizes are bytes of tensor data.
public struct MemoryBreakdown: Sendable, Hashable {
    /// Unquantized tensors of one dtype.
    public struct DTypeUsage: Sendable, Hashable {
        /// The element type (`U8` for a ggml block type).
        public var dtype: DType
        /// The ggml block type a GGUF file stores these tensors in (`Q8_0`), `nil` for plain element types.
        public var ggmlType: String? = nil
        /// How many tensors have it.
        public var tensorCount: Int
        /// Their elements.
        public var parameterCount: Int
        /// Their bytes.
        public var byteCount: Int
    }

    /// A way of storing the model that the report compares.
    public enum Representation: String, Sendable, Hashable, CaseIterable {
        /// The checkpoint as it is.
        case checkpoint
        /// Every floating-point tensor as FP32.
        case fp32
        /// Every floating-point tensor as FP16 or BF16.
        case fp16
        /// Quantizable weights as NF4 (block 64, F32 absmax), the rest 16-bit.
        case nf4
        /// Quantizable weights as NF4 with double quantization (block 64, nested block 256), the rest 16-bit.
        case nf4DoubleQuant
    }

    /// The size of one representation and how it compares with FP16.
    public struct Cost: Sendable, Hashable {
        /// Which representation.
        public var representation: Representation
        /// Its size in bytes of tensor data.
        public var byteCount: Int
        /// `(1 - byteCount / fp16) * 100`; `nil` when the FP16 size is 0.
        public var savingsVersusFP16Percent: Double?
        /// `fp16 / byteCount`; `nil` when either size is 0.
        public var factorVersusFP16: Double?
    }

    /// What the comparison quantizes and what it leaves alone.
    public struct CostBasis: Sendable, Hashable {
        /// Whether the quantizable set is the checkpoint's own 4-bit weights (else: Linear weights by name).
        public var fromFourBitWeights: Bool
        /// How many tensors the comparison quantizes.
        public var quantizableTensorCount: Int
        /// Elements of the quantizable weights (logical shapes).
        public var quantizableParameterCount: Int
        /// Elements of the other floating-point tensors (embeddings, norms, `lm_head`, biases).
        public var otherFloatParameterCount: Int
        /// Bytes of non-floating-point tensors (integer buffers, bool, complex), kept as stored.
        public var nonFloatByteCount: Int
        /// The 4-bit block size the comparison assumes.
        public var blockSize: Int
        /// The nested block size the comparison assumes for double quantization.
        public var nestedBlockSize: Int
    }

    /// Number of 4-bit weights.
    public var quantizedTensorCount: Int
    /// Parameters of the 4-bit weights (logical shapes).
    public var quantizedParameterCount: Int
    /// Bytes of packed 4-bit codes.
    public var codeByteCount: Int
    /// Bytes of first-level constants (`absmax`: F32, or U8 codes when double-quantized).
    public var absmaxByteCount: Int
    /// Bytes of `nested_absmax` (F32 per nested block).
    public var nestedAbsmaxByteCount: Int
    /// Bytes of the code tables (`quant_map`, 64 B, and `nested_quant_map`, 1024 B, per weight).
    public var codeMapByteCount: Int
    /// Bytes of the quant-state JSON blobs.
    public var quantStateByteCount: Int
    /// Unquantized tensors by dtype, largest first.
    public var unquantized: [DTypeUsage]
    /// All tensor bytes of the checkpoint.
    public var totalByteCount: Int
    /// `(codes + absmax + nested_absmax) * 8 / quantized parameters`: 4.127 for NF4 + DQ at block 64, 4.5 without.
    public var bitsPerQuantizedParameter: Double?
    /// The same with code maps and quant-state blobs included (every byte that belongs to a 4-bit weight).
    public var bitsPerQuantizedParameterWithTables: Double?
    /// What the comparison quantizes and what it leaves alone.
    public var costBasis: CostBasis
    /// One entry per ``Representation``, in declaration order.
    public var costs: [Cost]

    /// Nested constants and code maps: `nested_absmax` + code maps + quant-state blobs.
    public var nestedConstantByteCount: Int { nestedAbsmaxByteCount + codeMapByteCount + quantStateByteCount }
    /// Bytes of all 4-bit weights, companions included.
    public var quantizedByteCount: Int { codeByteCount + absmaxByteCount + nestedConstantByteCount }
    /// Bytes of unquantized tensors.
    public var unquantizedByteCount: Int { unquantized.reduce(0) { $0 + $1.byteCount } }

    /// The cost of one representation.
    public func cost(_ representation: Representation) -> Cost? { costs.first { $0.representation == representation } }

    /// Block size of the comparison (transformers always quantizes with 64, nf4-bitsandbytes.md §2.2).
    static let comparisonBlockSize = 64
    /// Nested block size of double quantization (nf4-bitsandbytes.md §4.3).
    static let comparisonNestedBlockSize = 256
    /// `quant_map`: 16 F32.
    static let quantMapBytes = 64
    /// `nested_quant_map`: 256 F32.
    static let nestedQuantMapBytes = 1024

    init(analysis: CheckpointAnalysis, totalByteCount: Int) {
        var codes = 0, absmax = 0, nestedAbsmax = 0, maps = 0, states = 0, quantizedParameters = 0
        for group in analysis.groups {
            func bytes(_ suffix: String) -> Int { group.member(suffix)?.descriptor.byteCount ?? 0 }
            codes += bytes("")
            absmax += bytes(".absmax")
            nestedAbsmax += bytes(".nested_absmax")
            maps += bytes(".quant_map") + bytes(".nested_quant_map")
            states += group.quantStateTensor.descriptor.byteCount
            quantizedParameters += group.tensor.elementCount
        }
        var usage: [String: DTypeUsage] = [:]
        for entry in analysis.entries where entry.group == nil {
            let key = entry.ggmlType ?? entry.dtype.rawValue
            var item =
                usage[key]
                ?? DTypeUsage(
                    dtype: entry.dtype, ggmlType: entry.ggmlType, tensorCount: 0, parameterCount: 0, byteCount: 0)
            item.tensorCount += 1
            item.parameterCount += entry.parameterCount
            item.byteCount += entry.storedByteCount
            usage[key] = item
        }
        quantizedTensorCount = analysis.groups.count
        quantizedParameterCount = quantizedParameters
        codeByteCount = codes
        absmaxByteCount = absmax
        nestedAbsmaxByteCount = nestedAbsmax
        codeMapByteCount = maps
        quantStateByteCount = states
        unquantized = usage.values.sorted {
            ($0.byteCount, $1.ggmlType ?? $1.dtype.rawValue) > ($1.byteCount, $0.ggmlType ?? $0.dtype.rawValue)
        }
        self.totalByteCount = totalByteCount
        if quantizedParameters > 0 {
            bitsPerQuantizedParameter = Double((codes + absmax + nestedAbsmax) * 8) / Double(quantizedParameters)
            bitsPerQuantizedParameterWithTables =
                Double((codes + absmax + nestedAbsmax + maps + states) * 8) / Double(quantizedParameters)
        }

        // The comparison: quantizable weights by the formulas of nf4-bitsandbytes.md §8, other floats at 4 or 2 bytes.
        var quantizable = 0, quantizableCount = 0, otherFloat = 0, nonFloat = 0, nf4Weights = 0, nf4dqWeights = 0
        let block = MemoryBreakdown.comparisonBlockSize, nested = MemoryBreakdown.comparisonNestedBlockSize
        for entry in analysis.entries {
            if entry.isQuantizable {
                let n = entry.parameterCount
                let blocks = (n + block - 1) / block
                let packed = (n + 1) / 2
                quantizable += n
                quantizableCount += 1
                nf4Weights += packed + 4 * blocks + MemoryBreakdown.quantMapBytes
                nf4dqWeights +=
                    packed + blocks + 4 * ((blocks + nested - 1) / nested)
                    + MemoryBreakdown.quantMapBytes + MemoryBreakdown.nestedQuantMapBytes
            } else if entry.isFloatingPoint {
                otherFloat += entry.parameterCount
            } else {
                nonFloat += entry.storedByteCount
            }
        }
        costBasis = CostBasis(
            fromFourBitWeights: analysis.hasFourBitGroups, quantizableTensorCount: quantizableCount,
            quantizableParameterCount: quantizable, otherFloatParameterCount: otherFloat, nonFloatByteCount: nonFloat,
            blockSize: block, nestedBlockSize: nested)
        let fp16 = 2 * (quantizable + otherFloat) + nonFloat
        let sizes: [(Representation, Int)] = [
            (.checkpoint, totalByteCount),
            (.fp32, 4 * (quantizable + otherFloat) + nonFloat),
            (.fp16, fp16),
            (.nf4, nf4Weights + 2 * otherFloat + nonFloat),
            (.nf4DoubleQuant, nf4dqWeights + 2 * otherFloat + nonFloat),
        ]
        costs = sizes.map { representation, bytes in
            Cost(
                representation: representation, byteCount: bytes,
                savingsVersusFP16Percent: fp16 > 0 ? (1 - Double(bytes) / Double(fp16)) * 100 : nil,
                factorVersusFP16: fp16 > 0 && bytes > 0 ? Double(fp16) / Double(bytes) : nil)
        }
    }
}

/// A llama.cpp file type as `llama-quantize` names it (`Q4_K_M`), with its `general.file_type` value.
///
/// Names are matched case-insensitively (`q4_k_m` and `Q4_K_M` are the same). Only the types nf4kit can write
/// without an importance matrix are known: the float types convert_hf_to_gguf.py writes (``f32``, ``f16``,
/// ``bf16``, and its ``q8_0``, the same id as llama-quantize's) and llama-quantize's types (``all``). One type for
/// both tools, so the converter (Formats) and the quantizer mix (Quant) agree on every id.
public struct LlamaFileType: Hashable, Sendable, CustomStringConvertible {
    /// The upper-case name (`"Q4_K_M"`).
    public let name: String
    /// The `LLAMA_FTYPE` value written as `general.file_type` (UINT32).
    public let fileTypeID: UInt32
    /// The ggml type most tensors get (`llama_ftype_get_default_type`).
    public let defaultType: GGMLType

    private init(_ name: String, _ id: UInt32, _ type: GGMLType) {
        self.name = name
        fileTypeID = id
        defaultType = type
    }

    /// The file type named `name` (any case), or `nil`.
    public init?(name: String) {
        let upper = name.uppercased()
        guard let known = (LlamaFileType.all + LlamaFileType.floats).first(where: { $0.name == upper }) else {
            return nil
        }
        self = known
    }

    /// `ALL_F32`: every tensor F32.
    public static let f32 = LlamaFileType("F32", 0, .f32)
    /// `MOSTLY_F16`: 2-D tensors F16, 1-D F32.
    public static let f16 = LlamaFileType("F16", 1, .f16)
    /// `MOSTLY_BF16`: 2-D tensors BF16, 1-D F32.
    public static let bf16 = LlamaFileType("BF16", 32, .bf16)
    /// `MOSTLY_Q8_0`: 2-D tensors Q8_0 (convert_hf_to_gguf.py: F16 where the row length is not a multiple of 32).
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let q8_0 = LlamaFileType("Q8_0", 7, .q8_0)
    /// The float file types convert_hf_to_gguf.py writes.
    public static let floats: [LlamaFileType] = [f32, f16, bf16]

    /// The ggml type convert_hf_to_gguf.py gives a 2-D tensor whose rows are `rowLength` long in this file type
    /// (spec gguf-llama.md §5): the default type, or F16 when a block type does not divide the row.
    public func matrixType(rowLength: Int) -> GGMLType {
        defaultType.isQuantized && rowLength % defaultType.blockSize != 0 ? .f16 : defaultType
    }

    /// The name.
    public var description: String { name }

    /// Every file type nf4kit writes, in `LLAMA_FTYPE` order.
    public static let all: [LlamaFileType] = [
        LlamaFileType("Q4_0", 2, .q4_0), LlamaFileType("Q4_1", 3, .q4_1), LlamaFileType("Q8_0", 7, .q8_0),
        LlamaFileType("Q5_0", 8, .q5_0), LlamaFileType("Q5_1", 9, .q5_1), LlamaFileType("Q2_K", 10, .q2_K),
        LlamaFileType("Q3_K_S", 11, .q3_K), LlamaFileType("Q3_K_M", 12, .q3_K), LlamaFileType("Q3_K_L", 13, .q3_K),
        LlamaFileType("Q4_K_S", 14, .q4_K), LlamaFileType("Q4_K_M", 15, .q4_K), LlamaFileType("Q5_K_S", 16, .q5_K),
        LlamaFileType("Q5_K_M", 17, .q5_K), LlamaFileType("Q6_K", 18, .q6_K), LlamaFileType("IQ4_NL", 25, .iq4_nl),
        LlamaFileType("IQ4_XS", 30, .iq4_xs),
    ]
}

import ArgumentParser
import NF4Kit

/// The number formats a user can name on the command line, with the spellings people type, in one table.
///
/// Matching ignores case (`NF4`, `Q8_0`, `BFloat16`). A format that a command does not produce yet is still
/// recognized here; each option type below accepts the subset its command writes and lists it when refusing a value.
/// The llama-quantize file types (`q4_k_m`, ...) are the cases from `q4_0` on, named as ``LlamaFileType`` names them.
enum NumberFormat: String, CaseIterable, Sendable {
    case nf4, fp4, f16, bf16, f32, q8_0, q4_0
    // swift-format-ignore: AlwaysUseLowerCamelCase
    case q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl, iq4_xs

    /// The spellings accepted besides the canonical name (lowercase): PyTorch and transformers names, llama.cpp's.
    var aliases: [String] {
        switch self {
        case .f16: ["fp16", "float16", "half"]
        case .bf16: ["bfloat16"]
        case .f32: ["fp32", "float32", "float"]
        default: []
        }
    }

    /// The format `text` names, in any case, or `nil`.
    init?(spelling text: String) {
        let key = text.lowercased()
        guard let found = Self.allCases.first(where: { $0.rawValue == key || $0.aliases.contains(key) }) else {
            return nil
        }
        self = found
    }

    /// The element type of a plain float format.
    var floatDType: DType? {
        switch self {
        case .f16: .f16
        case .bf16: .bf16
        case .f32: .f32
        default: nil
        }
    }

    /// The llama.cpp `--outtype` (convert_hf_to_gguf.py) this format names, or `nil`.
    var ggufOutType: GGUFExport.OutType? {
        switch self {
        case .f16: .f16
        case .bf16: .bf16
        case .f32: .f32
        case .q8_0: .q8_0
        default: nil
        }
    }

    /// The llama.cpp file type of a llama-quantize name (`q8_0` included), or `nil`.
    var llamaFileType: LlamaFileType? {
        LlamaFileType.all.contains { $0.name.lowercased() == rawValue } ? LlamaFileType(name: rawValue) : nil
    }

    /// The llama-quantize file types, in `LLAMA_FTYPE` order.
    static let llamaFileTypes: [NumberFormat] = LlamaFileType.all.compactMap {
        NumberFormat(rawValue: $0.name.lowercased())
    }

    /// How help texts list the accepted spellings of `formats`: `f16 (fp16, float16, half), bf16 (bfloat16)`.
    static func spellings(_ formats: [NumberFormat]) -> String {
        formats.map { $0.aliases.isEmpty ? $0.rawValue : "\($0.rawValue) (\($0.aliases.joined(separator: ", ")))" }
            .joined(separator: ", ")
    }
}

/// An option whose value is one of some number formats (`accepted`), in any of the spellings ``NumberFormat`` knows.
protocol NumberFormatArgument: ExpressibleByArgument {
    static var accepted: [NumberFormat] { get }
    var format: NumberFormat { get }
    init(_ format: NumberFormat)
}

extension NumberFormatArgument {
    init?(argument: String) {
        guard let format = NumberFormat(spelling: argument), Self.accepted.contains(format) else { return nil }
        self.init(format)
    }
    static var allValueStrings: [String] { accepted.map(\.rawValue) }
    var defaultValueDescription: String { format.rawValue }
}

/// `convert --to`: a bitsandbytes 4-bit format, a plain float type or (to a .gguf output) a llama-quantize file type.
struct ConvertTarget: NumberFormatArgument, Sendable, Equatable {
    static let accepted: [NumberFormat] = [.nf4, .fp4, .f16, .bf16, .f32] + NumberFormat.llamaFileTypes
    let format: NumberFormat

    init(_ format: NumberFormat) { self.format = format }

    /// The bitsandbytes or float target of a safetensors/folder output or a GGUF with Hugging Face names; `nil` for a
    /// GGUF-only type (`q8_0`).
    var target: QuantizePipeline.Target? { QuantizePipeline.Target(rawValue: format.rawValue) }
    var isQuantized: Bool { format == .nf4 || format == .fp4 }
    /// The llama.cpp `--outtype` this names, or `nil` (nf4, fp4).
    var ggufOutType: GGUFExport.OutType? { format.ggufOutType }
}

/// `merge --to`: `same` (the base's form), a plain float type or a bitsandbytes 4-bit format.
struct MergeTargetArgument: ExpressibleByArgument, Sendable, Equatable {
    static let accepted: [NumberFormat] = [.f16, .bf16, .f32, .nf4, .fp4] + NumberFormat.llamaFileTypes
    /// `nil` for `same`.
    let format: NumberFormat?

    init(_ format: NumberFormat?) { self.format = format }
    init?(argument: String) {
        if argument.lowercased() == "same" {
            format = nil
            return
        }
        guard let format = NumberFormat(spelling: argument), Self.accepted.contains(format) else { return nil }
        self.format = format
    }
    static var allValueStrings: [String] { ["same"] + accepted.map(\.rawValue) }
    var defaultValueDescription: String { format?.rawValue ?? "same" }

    /// The merge target of a safetensors/folder output or a GGUF with Hugging Face names; `nil` for a GGUF-only type.
    var target: MergeOptions.Target? { MergeOptions.Target(rawValue: format?.rawValue ?? "same") }
}

/// A plain float element type (`--compute-dtype`, `fixture --dtype`, `inspect --lora-dtype`).
struct FloatTypeArgument: NumberFormatArgument, Sendable, Equatable {
    static let accepted: [NumberFormat] = [.f16, .bf16, .f32]
    let format: NumberFormat

    init(_ format: NumberFormat) { self.format = format }

    var dtype: DType { format.floatDType! }
}

/// `--profile`: the rounding rules to reproduce (cpu or cuda, any case).
struct ProfileArgument: ExpressibleByArgument, Sendable, Equatable {
    let profile: QuantizationProfile

    init(_ profile: QuantizationProfile) { self.profile = profile }
    init?(argument: String) {
        guard let profile = QuantizationProfile(rawValue: argument.lowercased()) else { return nil }
        self.profile = profile
    }
    static var allValueStrings: [String] { QuantizationProfile.allCases.map(\.rawValue) }
    var defaultValueDescription: String { profile.rawValue }
}

/// `--blocksize`: elements per 4-bit block, one of the sizes bitsandbytes accepts (32 ... 4096, powers of two).
struct BlockSizeArgument: ExpressibleByArgument, Sendable, Equatable {
    let value: Int

    init(_ value: Int) { self.value = value }
    init?(argument: String) {
        guard let value = Int(argument), BlockQuantizer.supportedBlocksizes.contains(value) else { return nil }
        self.value = value
    }
    static var allValueStrings: [String] { BlockQuantizer.supportedBlocksizes.map(String.init) }
    var defaultValueDescription: String { String(value) }
}

/// `--max-shard-size`: a byte count written the way transformers and huggingface_hub users write it.
///
/// Any case: `5GB`, `30mb`, `500MiB`, `2GiB`; KB/MB/GB/TB are decimal, KiB/MiB/GiB/TiB binary, a plain integer is
/// bytes (``ShardPlan/parseSize(_:)``). Declared with `transform: ByteSizeArgument.parse` so that a refused value gets
/// an error saying what a size looks like.
struct ByteSizeArgument: Sendable, Equatable {
    let byteCount: Int

    static func parse(_ text: String) throws -> ByteSizeArgument {
        guard let bytes = ShardPlan.parseSize(text) else {
            throw ValidationError(
                "expected a positive size such as 5GB, 30mb, 500MiB, 2GiB or a byte count (KB, MB, GB, TB are decimal; "
                    + "KiB, MiB, GiB, TiB binary; any case)")
        }
        return ByteSizeArgument(byteCount: bytes)
    }
}

/// `inspect --lora-dtype`: the element type of LoRA parameters (f32 or bf16, any spelling of them).
struct LoRADTypeArgument: NumberFormatArgument, Sendable, Equatable {
    static let accepted: [NumberFormat] = [.f32, .bf16]
    let format: NumberFormat

    init(_ format: NumberFormat) { self.format = format }

    var dtype: LoRAParameterDType { format == .bf16 ? .bf16 : .f32 }
}

import NF4KitCore
import NF4KitFormats
import Testing

/// Llama 3.1's rope factors (`rope_freqs.weight`) against what convert_hf_to_gguf.py's torch float32 arithmetic gave
/// (torch 2.13 CPU) for the real configs, and the config.json parsing around them.
@Suite struct Llama3RopeScalingTests {
    /// Expected factors: `ones` leading 1s, then the smooth band's float32 bit patterns, then the factor.
    static func expected(count: Int, ones: Int, band: [UInt32], factor: Float) -> [UInt32] {
        Array(repeating: Float(1).bitPattern, count: ones) + band
            + Array(repeating: factor.bitPattern, count: count - ones - band.count)
    }

    @Test func `Llama 3.1 8B, 3.3 70B (head_dim 128, factor 8) give the converter's bits`() {
        let rope = Llama3RopeScaling(theta: 500_000, dimension: 128, factor: 8)
        let band: [UInt32] = [0x3f9a_8ed5, 0x3fc6_d64a, 0x4001_af1d, 0x402c_732e, 0x406b_cace, 0x40a8_3c06]
        #expect(rope.factors().map(\.bitPattern) == Self.expected(count: 64, ones: 29, band: band, factor: 8))
    }

    @Test func `Llama 3.2 1B (head_dim 64, factor 32) gives the converter's bits`() {
        let rope = Llama3RopeScaling(theta: 500_000, dimension: 64, factor: 32)
        let band: [UInt32] = [0x3fd3_5ec2, 0x4052_b46f, 0x411a_aaee]
        #expect(rope.factors().map(\.bitPattern) == Self.expected(count: 32, ones: 15, band: band, factor: 32))
    }

    func config(_ scaling: [(String, JSONValue)]) throws(CheckpointError) -> LlamaModelConfig {
        try LlamaModelConfig(
            json: JSONObject([
                ("architectures", .array([.string("LlamaForCausalLM")])), ("hidden_size", .integer(8)),
                ("intermediate_size", .integer(16)), ("num_hidden_layers", .integer(1)),
                ("num_attention_heads", .integer(2)), ("vocab_size", .integer(32)), ("rope_theta", .double(500_000)),
                ("rope_scaling", .object(JSONObject(scaling))),
            ]), file: "config.json")
    }

    @Test func `llama3 rope_scaling gives the tensor and no rope scaling keys; defaults are the converter's`() throws {
        let parsed = try config([("rope_type", .string("llama3")), ("factor", .double(32))])
        #expect(parsed.ropeScaling.isEmpty)
        #expect(
            parsed.llama3Rope
                == Llama3RopeScaling(
                    theta: 500_000, dimension: 4, factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                    originalContextLength: 8192))
        #expect(try config([("type", .string("llama3"))]).llama3Rope?.factor == 8)
        #expect(try config([("rope_type", .string("default"))]).llama3Rope == nil)
    }

    @Test func `a non-positive or non-numeric llama3 parameter is refused with its key`() throws {
        for (key, value) in [("low_freq_factor", JSONValue.double(0)), ("factor", .string("x"))] {
            let error = try #require(throws: CheckpointError.self) {
                try config([("rope_type", .string("llama3")), (key, value)])
            }
            #expect(error.code == .malformedHeader)
            #expect("\(error)".contains(key) && "\(error)".contains("config.json"), "\(error)")
        }
    }
}

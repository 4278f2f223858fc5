import Foundation
import NF4KitCore
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// ``LlamaQuantMix`` against what `llama-quantize --dry-run` chose for every tensor of two larger models (the golden
/// F16 Llama with its layer repeated to 32 layers, and to 12 layers with tied embeddings), for 13 file types: the
/// layer-dependent rules (use_more_bits, the first attn_v / ffn_down layers, tied embeddings) need more than the
/// golden files' 2 layers.
@Suite struct LlamaQuantMixTests {
    struct Reference {
        var model: LlamaQuantMix.Model
        var tensors: [LlamaQuantMix.Tensor]
        var types: [String: [String]]
    }

    static func load(_ key: String) throws -> Reference {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("llama-g/llama-quantize-mix.json")))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let models = try #require(root["models"] as? [String: Any])
        let entry = try #require(models[key] as? [String: Any])
        let model = LlamaQuantMix.Model(
            architecture: "llama", layerCount: try #require(entry["block_count"] as? Int),
            headCount: try #require(entry["head_count"] as? Int),
            kvHeadCount: try #require(entry["head_count_kv"] as? Int))
        let list = try #require(entry["tensors"] as? [[Any]])
        let tensors = try list.map { item in
            let name = try #require(item[0] as? String)
            let dimensions = try #require(item[1] as? [Int])
            let type: GGMLType = dimensions.count == 1 ? .f32 : .f16
            return LlamaQuantMix.Tensor(name: name, dimensions: dimensions, type: type)
        }
        let types = try #require(entry["types"] as? [String: String]).mapValues {
            $0.split(separator: " ").map(String.init)
        }
        return Reference(model: model, tensors: tensors, types: types)
    }

    @Test(arguments: ["l32", "l12t"])
    func `the type and order of every tensor are llama-quantize's`(model key: String) throws {
        let reference = try Self.load(key)
        #expect(reference.types.count == 13)
        for (fileTypeName, expected) in reference.types.sorted(by: { $0.key < $1.key }) {
            let fileType = try #require(LlamaFileType(name: fileTypeName))
            // Give the tensors in another order: the plan must sort them as the loader does.
            let plan = LlamaQuantMix.plan(
                fileType: fileType, model: reference.model, tensors: reference.tensors.reversed())
            #expect(plan.map(\.tensor.name) == reference.tensors.map(\.name), "\(key) \(fileTypeName)")
            let got = plan.map(\.type.name)
            let mismatches = zip(reference.tensors, zip(got, expected)).filter { $0.1.0 != $0.1.1 }
                .map { "\($0.0.name): \($0.1.0) instead of \($0.1.1)" }
            #expect(mismatches.isEmpty, "\(key) \(fileTypeName): \(mismatches.prefix(5))")
            #expect(got.count == expected.count)
        }
    }
}

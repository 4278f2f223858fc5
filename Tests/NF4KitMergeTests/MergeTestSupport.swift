import NF4KitCore
import NF4KitTestSupport
import NF4KitMerge

/// Parses a JSON object literal.
func jsonObject(_ text: String) throws -> JSONObject {
    guard case .object(let object) = try StrictJSON.parse(Array(text.utf8)) else { fatalError("not an object") }
    return object
}

/// An adapter from a config JSON text and tensors.
func makeAdapter(_ configJSON: String, _ tensors: [Tensor]) throws -> LoRAAdapter {
    try LoRAAdapter(config: AdapterConfig(json: jsonObject(configJSON)), tensors: tensors, source: "test-adapter")
}

/// Runs a plan for one base tensor and returns the merged f32 values of `name`.
func merged(
    base: [(String, [Int], [Float])], adapters: [LoRAAdapter], weights: [Float]? = nil, name: String
) throws
    -> [Float]
{
    let plan = try MergePlan(
        base: base.map { ($0.0, Shape($0.1)) }, adapters: adapters, weights: weights ?? adapters.map { _ in 1 })
    let entry = base.first { $0.0 == name }!
    var values = entry.2
    if let action = plan.actions[name] {
        if let replacement = action.replacement { values = try LoRAMerger.floats(replacement) }
        try values.withUnsafeMutableBufferPointer { try LoRAMerger.apply(action, to: $0) }
    }
    return values
}

/// The spec's worked example (lora-merge.md §11): W [3, 4], A [2, 4], B [3, 2], r = 2, alpha = 4.
enum WorkedExample {
    static let w: [Float] = [0.5, -1.0, 0.25, 2.0, 1.0, 0.0, -0.5, 0.75, -1.5, 0.5, 1.0, 0.0]
    static let a: [Float] = [1, 0, 2, 0, 0, 1, 0, -1]
    static let b: [Float] = [0.5, 0, 0, 1, 1, -1]
    static let module = "model.layers.0.self_attn.q_proj"
    static let baseName = module + ".weight"
    static func adapterTensors(b: [Float] = b) -> [Tensor] {
        [
            makeTensor("base_model.model.\(module).lora_A.weight", [2, 4], a),
            makeTensor("base_model.model.\(module).lora_B.weight", [3, 2], b),
        ]
    }
    static func config(_ extra: String = "") -> String {
        "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"q_proj\"]\(extra)}"
    }
}

/// The test's own reference: `W[o][i] + s · Σ_k B[o][k] · A[k][i]` with plain loops (k ascending, f32, separate
/// multiply and add, then scale, then add), the order PEFT's formula prescribes.
func referenceLinear(w: [Float], a: [Float], b: [Float], out: Int, input: Int, rank: Int, scale: Float) -> [Float] {
    var result = w
    for o in 0..<out {
        for i in 0..<input {
            var sum: Float = 0
            for k in 0..<rank { sum = sum + b[o * rank + k] * a[k * input + i] }
            result[o * input + i] = w[o * input + i] + sum * scale
        }
    }
    return result
}

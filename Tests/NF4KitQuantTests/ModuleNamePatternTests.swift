import NF4KitCore
import NF4KitQuant
import Testing

/// `--skip`/`--include` patterns: module names as transformers users write `llm_int8_skip_modules`, or globs.
@Suite struct ModuleNamePatternTests {
    static let downProj = "model.layers.10.mlp.down_proj.weight"

    @Test(arguments: [
        // Module names: whole dotted components of the module (the tensor name without `.weight`/`.bias`).
        ("down_proj", downProj, true),
        ("mlp.down_proj", downProj, true),
        ("mlp", downProj, true),
        ("layers.10", downProj, true),
        ("model.layers.10.mlp.down_proj", downProj, true),
        (downProj, downProj, true),
        ("model.layers.10.mlp.down_proj.bias", "model.layers.10.mlp.down_proj.bias", true),
        ("lm_head", "lm_head.weight", true),
        ("proj", downProj, false),
        ("layers.1", downProj, false),
        ("down", downProj, false),
        ("weight", downProj, false),
        ("mlp.up_proj", downProj, false),
        ("", downProj, false),
        // Globs, against the full name and the module name.
        ("*down_proj*", downProj, true),
        ("*.down_proj", downProj, true),
        ("model.layers.1?.*", downProj, true),
        ("*.up_proj", downProj, false),
    ])
    func `a pattern selects the tensors transformers' rule would, by whole components`(
        pattern: String, name: String, selected: Bool
    ) {
        #expect(BnbQuantizationPlan.pattern(pattern, selects: name) == selected)
    }

    @Test func `patterns that select no tensor are reported, for skip and include apart`() {
        let tensors = ["model.layers.0.mlp.down_proj.weight", "model.norm.weight"].map { name in
            Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: .f16, shape: [2, 2], file: "memory", fileOffset: 0, byteCount: 8),
                bytes: TensorBytes(copyingElementsOf: [UInt16](repeating: 0, count: 4)))
        }
        let plan = BnbQuantizationPlan(include: ["norm", "norms"], skip: ["down_proj", "*zzz*", "proj"])
        let unmatched = plan.unmatchedPatterns(in: tensors)
        #expect(unmatched.skip == ["*zzz*", "proj"])
        #expect(unmatched.include == ["norms"])
    }
}

import NF4KitCore
import NF4KitTestSupport
import NF4KitMerge
import Testing

@Suite struct AdapterValidationTests {
    private func configError(_ json: String) -> CheckpointError? {
        do {
            _ = try AdapterConfig(json: jsonObject(json))
            return nil
        } catch let error as CheckpointError {
            return error
        } catch {
            return nil
        }
    }

    @Test func `missing keys take PEFT's defaults and unknown keys are ignored`() throws {
        let config = try AdapterConfig(json: jsonObject("{\"peft_type\": \"LORA\", \"something_new\": {\"x\": 1}}"))
        #expect(config.rank == 8)
        #expect(config.alpha == 8)
        #expect(!config.useRSLoRA && !config.useDoRA && !config.fanInFanOut && !config.loraBias)
        #expect(config.scaling(forModule: "q_proj", rank: 8) == 1)
    }

    @Test func `a float lora_alpha is read as a double`() throws {
        let config = try AdapterConfig(
            json: jsonObject(
                "{\"peft_type\": \"LORA\", \"r\": 16, \"lora_alpha\": 22.627416997969522, \"use_rslora\": true}"))
        #expect(config.scaling(forModule: "m", rank: 16) == Float(22.627416997969522 / 4))
    }

    @Test(arguments: [
        ("{\"peft_type\": \"ADALORA\"}", "ADALORA"),
        ("{\"peft_type\": \"LORA\", \"layer_replication\": [[0, 4], [2, 6]]}", "layer_replication"),
        ("{\"peft_type\": \"LORA\", \"alora_invocation_tokens\": [1, 2]}", "alora"),
        ("{\"peft_type\": \"LORA\", \"use_qalora\": true}", "QALoRA"),
        ("{\"peft_type\": \"LORA\", \"arrow_config\": {\"top_k\": 3}}", "Arrow"),
        ("{\"peft_type\": \"LORA\", \"init_lora_weights\": \"pissa_niter_4\"}", "residual base"),
        ("{\"peft_type\": \"LORA\", \"init_lora_weights\": \"olora\"}", "residual base"),
        ("{\"peft_type\": \"LORA\", \"init_lora_weights\": \"loftq\"}", "residual base"),
        ("{\"peft_type\": \"LORA\", \"init_lora_weights\": \"corda\"}", "residual base"),
    ])
    func `adapters that cannot be merged into the original weights are refused with the reason`(
        json: String, reason: String
    ) {
        let error = configError(json)
        #expect(error?.code == .refused)
        #expect(error?.message.contains(reason) == true)
    }

    @Test(arguments: [
        ("{\"peft_type\": \"LORA\", \"target_parameters\": [\"experts.gate_up_proj\"]}", "target_parameters"),
        ("{\"peft_type\": \"LORA\", \"trainable_token_indices\": [5, 6]}", "trainable_token_indices"),
        ("{\"peft_type\": \"LORA\", \"use_bdlora\": {\"blocks\": 2}}", "use_bdlora"),
    ])
    func `LoRA features nf4kit does not implement are refused as unsupported`(json: String, key: String) {
        let error = configError(json)
        #expect(error?.code == .unsupported)
        #expect(error?.message.contains(key) == true)
    }

    @Test func `init modes that leave the base unchanged are accepted`() throws {
        for mode in ["true", "false", "\"gaussian\"", "\"eva\"", "\"orthogonal\""] {
            #expect(configError("{\"peft_type\": \"LORA\", \"init_lora_weights\": \(mode)}") == nil)
        }
    }

    @Test func `an invalid pattern regex is a config error`() {
        #expect(configError("{\"peft_type\": \"LORA\", \"rank_pattern\": {\"q_proj(\": 4}}")?.code == .malformedHeader)
    }

    private func planError(_ adapter: LoRAAdapter, base: [(String, [Int])]) -> CheckpointError? {
        do {
            _ = try MergePlan(base: base.map { ($0.0, Shape($0.1)) }, adapters: [adapter], weights: [1])
            return nil
        } catch {
            return error
        }
    }

    @Test func `an adapter key without a base tensor is an error naming the key`() throws {
        let adapter = try makeAdapter(WorkedExample.config(), WorkedExample.adapterTensors())
        let error = planError(adapter, base: [("model.layers.0.self_attn.k_proj.weight", [3, 4])])
        #expect(error?.code == .refused)
        #expect(error?.tensor == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        #expect(error?.message.contains("model.layers.0.self_attn.q_proj.weight") == true)
    }

    @Test func `a module path found under a different wrapper prefix resolves when unique`() throws {
        let adapter = try makeAdapter(
            WorkedExample.config(),
            [
                makeTensor("base_model.model.layers.0.self_attn.q_proj.lora_A.weight", [2, 4], WorkedExample.a),
                makeTensor("base_model.model.layers.0.self_attn.q_proj.lora_B.weight", [3, 2], WorkedExample.b),
            ])
        let plan = try MergePlan(base: [(WorkedExample.baseName, Shape([3, 4]))], adapters: [adapter], weights: [1])
        #expect(plan.actions[WorkedExample.baseName]?.updates.count == 1)
    }

    @Test func `a shape that does not fit the base is an error naming key and shapes`() throws {
        let adapter = try makeAdapter(WorkedExample.config(), WorkedExample.adapterTensors())
        let error = planError(adapter, base: [(WorkedExample.baseName, [3, 5])])
        #expect(error?.code == .shapeMismatch)
        #expect(error?.message.contains("[2, 4]") == true)
        #expect(error?.message.contains("[3, 5]") == true)
    }

    @Test func `a rank that disagrees with the config is an error`() throws {
        let adapter = try makeAdapter(
            "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8}", WorkedExample.adapterTensors())
        let error = planError(adapter, base: [(WorkedExample.baseName, [3, 4])])
        #expect(error?.code == .shapeMismatch)
        #expect(error?.message.contains("rank 2") == true)
        #expect(error?.message.contains("rank 4") == true)
    }

    @Test func `half a pair is an error naming the present tensor`() {
        let tensors = [makeTensor("base_model.model.\(WorkedExample.module).lora_A.weight", [2, 4], WorkedExample.a)]
        #expect(throws: CheckpointError.self) { try makeAdapter(WorkedExample.config(), tensors) }
        do {
            _ = try makeAdapter(WorkedExample.config(), tensors)
        } catch let error as CheckpointError {
            #expect(error.tensor == "base_model.model.\(WorkedExample.module).lora_A.weight")
            #expect(error.message.contains("lora_B"))
        } catch {}
    }

    @Test func `a key with an unknown LoRA suffix is an error, not skipped`() {
        let tensors =
            WorkedExample.adapterTensors() + [
                makeTensor("base_model.model.\(WorkedExample.module).lora_A.weight.extra.more", [1], [0])
            ]
        #expect(throws: CheckpointError.self) { try makeAdapter(WorkedExample.config(), tensors) }
    }

    @Test func `the adapter-name segment of third-party keys is stripped`() throws {
        let adapter = try makeAdapter(
            WorkedExample.config(),
            [
                makeTensor("base_model.model.\(WorkedExample.module).lora_A.default.weight", [2, 4], WorkedExample.a),
                makeTensor("base_model.model.\(WorkedExample.module).lora_B.default.weight", [3, 2], WorkedExample.b),
            ])
        #expect(adapter.modules.map(\.path) == [WorkedExample.module])
    }

    @Test func `a DoRA adapter combined with another adapter on one tensor is refused`() throws {
        var tensors = WorkedExample.adapterTensors()
        tensors.append(makeTensor("base_model.model.\(WorkedExample.module).lora_magnitude_vector", [3], [1, 1, 1]))
        let dora = try makeAdapter(WorkedExample.config(", \"use_dora\": true"), tensors)
        let plain = try makeAdapter(WorkedExample.config(), WorkedExample.adapterTensors())
        #expect(throws: CheckpointError.self) {
            try MergePlan(base: [(WorkedExample.baseName, Shape([3, 4]))], adapters: [plain, dora], weights: [1, 1])
        }
    }

    @Test func `a lora_B bias without a base bias is refused`() throws {
        var tensors = WorkedExample.adapterTensors()
        tensors.append(makeTensor("base_model.model.\(WorkedExample.module).lora_B.bias", [3], [1, 1, 1]))
        let adapter = try makeAdapter(WorkedExample.config(", \"lora_bias\": true"), tensors)
        let error = planError(adapter, base: [(WorkedExample.baseName, [3, 4])])
        #expect(error?.message.contains("no bias") == true)
    }

    @Test func `a pattern key that matches no module is reported as a warning`() throws {
        let adapter = try makeAdapter(
            WorkedExample.config(", \"rank_pattern\": {\"nothing_here\": 2}"), WorkedExample.adapterTensors())
        let plan = try MergePlan(base: [(WorkedExample.baseName, Shape([3, 4]))], adapters: [adapter], weights: [1])
        #expect(plan.warnings.contains { $0.message.contains("nothing_here") })
    }
}

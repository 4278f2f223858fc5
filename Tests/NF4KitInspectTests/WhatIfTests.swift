import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitInspect
import NF4KitTestSupport
import Testing

@Suite struct WhatIfTests {
    /// Published LLaMA-1 parameter counts (Touvron et al. 2023, table 2): 6.7B, 13.0B, 32.5B, 65.2B.
    @Test(arguments: [("7b", 6.7e9), ("13b", 13.0e9), ("30b", 32.5e9), ("65b", 65.2e9)])
    func `Llama shapes match the published parameter counts within 1 percent`(name: String, published: Double) throws {
        let architecture = try #require(WhatIfReport.preset(named: name)).architecture
        let model = try WhatIfReport.model(label: name, architecture: architecture, loraRank: 16)
        #expect(abs(Double(model.parameterCount) - published) / published < 0.01)
    }

    /// Parameter counts published on the model cards (Hugging Face Hub, "Model size" / the release notes).
    @Test(arguments: [
        ("llama2-70b", 68.98e9), ("8b", 8.03e9), ("70b", 70.6e9), ("405b", 405.85e9), ("1b", 1.24e9), ("3b", 3.21e9),
        ("mistral-7b", 7.24e9), ("qwen2.5-0.5b", 0.494e9), ("qwen2.5-7b", 7.61e9), ("qwen2.5-72b", 72.7e9),
    ])
    func `today's model shapes match their published parameter counts within 1 percent`(
        name: String, published: Double
    ) throws {
        let preset = try #require(WhatIfReport.preset(named: name))
        let model = try WhatIfReport.model(label: name, preset: preset, loraRank: 16)
        #expect(abs(Double(model.parameterCount) - published) / published < 0.01, "\(name): \(model.parameterCount)")
    }

    @Test func `the Qwen2.5-7B shape counts its q, k and v biases`() throws {
        // 28 layers of q/o 3584², k/v 512 x 3584, biases 3584 + 2 x 512, MLP 3 x 3584 x 18944, 2 norms; untied
        // embeddings and head 152064 x 3584; final norm.
        let layer = 2 * 3584 * 3584 + 2 * 512 * 3584 + 3584 + 2 * 512 + 3 * 3584 * 18944 + 2 * 3584
        let expected = 28 * layer + 2 * 152_064 * 3584 + 3584
        let model = try WhatIfReport.model(
            label: "q", preset: try #require(WhatIfReport.preset(named: "qwen2.5-7b")), loraRank: 8)
        #expect(model.parameterCount == expected)
    }

    @Test func `the 7B shape has 6,738,415,616 parameters`() throws {
        // embeddings and head 2 x 32,000 x 4,096; per layer 4 x 4,096² + 3 x 4,096 x 11,008 + 2 x 4,096; final norm 4,096
        let expected = 2 * 32_000 * 4_096 + 32 * (4 * 4_096 * 4_096 + 3 * 4_096 * 11_008 + 2 * 4_096) + 4_096
        let model = try WhatIfReport.model(
            label: "7b", architecture: try #require(WhatIfReport.preset(named: "7b")).architecture, loraRank: 8)
        #expect(model.parameterCount == expected)
        #expect(expected == 6_738_415_616)
    }

    @Test func `7B: FP16 is 2 bytes per parameter, int8 1 plus row scales, QLoRA NF4 with double quant plus FP32 LoRA`()
        throws
    {
        let rank = 16
        let model = try WhatIfReport.model(
            label: "7b", architecture: try #require(WhatIfReport.preset(named: "7b")).architecture, loraRank: rank)
        let p = 6_738_415_616
        #expect(model.fit(.inferenceFP16)?.byteCount == 2 * p)
        // Independently: 7 Linear weights per layer; NF4 + DQ at block 64: n/2 + n/64 + 4·ceil(n/16384) + 64 + 1024 B.
        let linear: [(out: Int, in: Int)] = [
            (4096, 4096), (4096, 4096), (4096, 4096), (4096, 4096), (11008, 4096), (11008, 4096), (4096, 11008),
        ]
        var quantized = 0, quantizedParameters = 0, lora = 0, int8 = 0
        for (out, inFeatures) in linear {
            let n = out * inFeatures
            int8 += n + 4 * out
            quantized += n / 2 + n / 64 + 4 * ((n / 64 + 255) / 256) + 64 + 1024
            quantizedParameters += n
            lora += rank * (out + inFeatures)
        }
        quantized *= 32
        quantizedParameters *= 32
        lora *= 32
        int8 *= 32
        let other = p - quantizedParameters
        #expect(model.quantizableParameterCount == quantizedParameters)
        #expect(model.loraParameterCount == lora)
        #expect(model.fit(.inferenceNF4)?.byteCount == quantized + 2 * other)
        #expect(model.fit(.inferenceInt8)?.byteCount == int8 + 2 * other)
        // QLoRA training adds the FP32 LoRA weights (4), gradients (4) and two FP32 AdamW moments (8) per LoRA parameter.
        #expect(model.fit(.trainingQLoRA)?.byteCount == quantized + 2 * other + 16 * lora)
        // Full mixed-precision training: 16 bytes per parameter.
        #expect(model.fit(.trainingFull)?.byteCount == 16 * p)
        // 7B in FP16 (12.55 GiB) fits a 16 GB card; full fine-tuning (100 GiB) fits none.
        #expect(model.fit(.inferenceFP16)?.fitsGiB == [16, 24, 40, 48, 80])
        #expect(model.fit(.trainingFull)?.fitsGiB == [])
    }

    @Test func `the inspected model's row is the training-memory computation of inspect`() throws {
        let source = try ModelSource.open(Fixture.path("llama-tiny/fp16"))
        let report = try InspectionReport.inspect(source, training: TrainingMemoryOptions(rank: 8))
        let training = try #require(report.training)
        let model = try WhatIfReport.model(label: "fp16", checkpoint: source.checkpoint, loraRank: 8)
        let pairs: [(WhatIfReport.Use, TrainingMemory.Method)] = [
            (.trainingFull, .fullMixedFP16), (.trainingLoRA, .loraFP16Base), (.trainingQLoRA, .qlora),
        ]
        for (use, method) in pairs {
            #expect(model.fit(use)?.byteCount == training.row(method)?.totalByteCount)
        }
        #expect(model.fit(.inferenceFP16)?.byteCount == report.memory.cost(.fp16)?.byteCount)
        #expect(model.parameterCount == 1_963_264)

        // The same model sized from its config.json alone gives the same numbers.
        let config = try ModelSource.readJSONObject(Fixture.path("llama-tiny/fp16/config.json"))
        let shapes = try WhatIfReport.model(
            label: "config", architecture: try LlamaArchitecture(config: config), loraRank: 8)
        #expect(shapes.parameterCount == model.parameterCount)
        #expect(shapes.fits.map(\.byteCount) == model.fits.map(\.byteCount))
    }

    @Test func `a GPU fits when the bytes are at most its size in GiB`() {
        #expect(WhatIfReport.fitting(16 << 30) == [16, 24, 40, 48, 80])
        #expect(WhatIfReport.fitting((16 << 30) + 1) == [24, 40, 48, 80])
        #expect(WhatIfReport.fitting((80 << 30) + 1) == [])
    }

    @Test func `size lists parse and reject unknown sizes`() throws {
        let requests = try WhatIfReport.requests(in: "7b, 70B,llama2-70b,dir/config.json")
        #expect(requests.count == 4)
        guard case .preset(let label, let preset) = requests[1] else { Issue.record("70b is not a preset"); return }
        #expect(label == "70b" && preset.model == "Llama-3.1-70B")
        #expect(requests[3] == .config(path: "dir/config.json"))
        let error = #expect(throws: CheckpointError.self) { try WhatIfReport.requests(in: "7b,20b") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("405b") == true)
    }

    @Test func `a config without hidden_size is rejected with the key named`() throws {
        let config = JSONObject([(key: "num_hidden_layers", value: .integer(2))])
        let error = #expect(throws: CheckpointError.self) { try LlamaArchitecture(config: config, file: "config.json") }
        #expect(error?.code == .malformedHeader)
        #expect(error?.message.contains("hidden_size") == true)
        #expect(error?.file == "config.json")
    }
}

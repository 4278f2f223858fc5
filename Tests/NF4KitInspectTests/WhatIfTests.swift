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
        let architecture = try #require(WhatIfReport.preset(named: name))
        let model = try WhatIfReport.model(label: name, architecture: architecture, loraRank: 16)
        #expect(abs(Double(model.parameterCount) - published) / published < 0.01)
    }

    @Test func `the 7B shape has 6,738,415,616 parameters`() throws {
        // embeddings and head 2 x 32,000 x 4,096; per layer 4 x 4,096² + 3 x 4,096 x 11,008 + 2 x 4,096; final norm 4,096
        let expected = 2 * 32_000 * 4_096 + 32 * (4 * 4_096 * 4_096 + 3 * 4_096 * 11_008 + 2 * 4_096) + 4_096
        let model = try WhatIfReport.model(label: "7b", architecture: try #require(WhatIfReport.preset(named: "7b")), loraRank: 8)
        #expect(model.parameterCount == expected)
        #expect(expected == 6_738_415_616)
    }

    @Test func `7B weights: FP16 is 2 bytes per parameter and QLoRA is NF4 with double quant plus FP32 LoRA`() throws {
        let rank = 16
        let model = try WhatIfReport.model(label: "7b", architecture: try #require(WhatIfReport.preset(named: "7b")), loraRank: rank)
        let p = 6_738_415_616
        #expect(model.scenario(.fp16)?.weightByteCount == 2 * p)
        #expect(model.scenario(.fp32)?.weightByteCount == 4 * p)
        // Independently: 7 Linear weights per layer; NF4 + DQ at block 64: n/2 + n/64 + 4·ceil(n/16384) + 64 + 1024 B.
        let linear: [(out: Int, in: Int)] = [(4096, 4096), (4096, 4096), (4096, 4096), (4096, 4096), (11008, 4096), (11008, 4096), (4096, 11008)]
        var quantized = 0, quantizedParameters = 0, lora = 0
        for (out, inFeatures) in linear {
            let n = out * inFeatures
            quantized += n / 2 + n / 64 + 4 * ((n / 64 + 255) / 256) + 64 + 1024
            quantizedParameters += n
            lora += rank * (out + inFeatures)
        }
        quantized *= 32
        quantizedParameters *= 32
        lora *= 32
        let other = p - quantizedParameters
        #expect(model.quantizableParameterCount == quantizedParameters)
        #expect(model.loraParameterCount == lora)
        #expect(model.scenario(.qlora)?.weightByteCount == quantized + 2 * other + 4 * lora)
        // QLoRA training adds FP32 gradients (4) and two FP32 AdamW moments (8) per LoRA parameter.
        #expect(model.scenario(.qlora)?.trainingByteCount == quantized + 2 * other + 16 * lora)
        // 7B in FP16 (12.55 GiB) needs a 16 GB card; QLoRA weights (~3.7 GiB) fit in 8 GB.
        #expect(model.scenario(.fp16)?.weightsFitGiB == [16, 24, 40, 48, 80])
        #expect(model.scenario(.qlora)?.weightsFitGiB.first == 8)
    }

    @Test func `the inspected model's row is the training-memory computation of inspect`() throws {
        let source = try ModelSource.open(Fixture.path("llama-tiny/fp16"))
        let report = try InspectionReport.inspect(source, training: TrainingMemoryOptions(rank: 8))
        let training = try #require(report.training)
        let model = try WhatIfReport.model(label: "fp16", checkpoint: source.checkpoint, loraRank: 8)
        let pairs: [(WhatIfReport.Setup, TrainingMemory.Method)] = [
            (.fp32, .fullFP32), (.fp16, .fullMixedFP16), (.loraFP16, .loraFP16Base), (.qlora, .qlora),
        ]
        for (setup, method) in pairs {
            #expect(model.scenario(setup)?.trainingByteCount == training.row(method)?.totalByteCount)
        }
        #expect(model.parameterCount == 1_963_264)

        // The same model sized from its config.json alone gives the same numbers.
        let config = try ModelSource.readJSONObject(Fixture.path("llama-tiny/fp16/config.json"))
        let shapes = try WhatIfReport.model(label: "config", architecture: try LlamaArchitecture(config: config), loraRank: 8)
        #expect(shapes.parameterCount == model.parameterCount)
        #expect(shapes.scenarios.map(\.trainingByteCount) == model.scenarios.map(\.trainingByteCount))
        #expect(shapes.scenarios.map(\.weightByteCount) == model.scenarios.map(\.weightByteCount))
    }

    @Test func `a GPU fits when the bytes are at most its size in GiB`() {
        #expect(WhatIfReport.fitting(8 << 30) == [8, 12, 16, 24, 40, 48, 80])
        #expect(WhatIfReport.fitting((8 << 30) + 1) == [12, 16, 24, 40, 48, 80])
        #expect(WhatIfReport.fitting((80 << 30) + 1) == [])
    }

    @Test func `size lists parse and reject unknown sizes`() throws {
        #expect(try WhatIfReport.presets(in: "7b,33b").map(\.name) == ["7b", "33b"])
        let error = #expect(throws: CheckpointError.self) { try WhatIfReport.presets(in: "7b,70b") }
        #expect(error?.code == .invalidArgument)
    }

    @Test func `a config without hidden_size is rejected with the key named`() throws {
        let config = JSONObject([(key: "num_hidden_layers", value: .integer(2))])
        let error = #expect(throws: CheckpointError.self) { try LlamaArchitecture(config: config, file: "config.json") }
        #expect(error?.code == .malformedHeader)
        #expect(error?.message.contains("hidden_size") == true)
        #expect(error?.file == "config.json")
    }
}

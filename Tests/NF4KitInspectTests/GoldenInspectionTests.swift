import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitInspect
import NF4KitTestSupport
import Testing

/// The numbers of the report, recomputed here from the raw tensor list (names, dtypes, shapes, byte counts) with
/// arithmetic written out independently of the library's breakdown code. Quant-state blobs are decoded with
/// Foundation's JSONSerialization, not with our parser.
struct IndependentCount {
    var parameterCount = 0
    var codeBytes = 0
    var absmaxBytes = 0
    var nestedAbsmaxBytes = 0
    /// nested_absmax + quant_map + nested_quant_map + quant-state blobs.
    var nestedRoleBytes = 0
    var unquantizedByDType: [String: Int] = [:]
    var quantizedParameters = 0
    var quantizedCount = 0
    var totalBytes = 0
    /// Logical element counts of the weights the comparison quantizes.
    var quantizable: [Int] = []
    var otherFloatParameters = 0

    static let linearSuffixes = [
        "q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "gate_proj.weight", "up_proj.weight",
        "down_proj.weight",
    ]

    init(_ checkpoint: Checkpoint, isAdapter: Bool) throws {
        let infix = ".quant_state.bitsandbytes__"
        var logicalCount: [String: Int] = [:]
        for tensor in checkpoint.tensors where tensor.name.contains(infix) {
            let weight = String(tensor.name[..<tensor.name.range(of: infix)!.lowerBound])
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(tensor.bytes.array)) as? [String: Any])
            let shape = try #require(object["shape"] as? [Int])
            logicalCount[weight] = shape.reduce(1, *)
        }
        var companions = Set<String>()
        for weight in logicalCount.keys {
            for suffix in ["", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"] {
                companions.insert(weight + suffix)
            }
        }
        for tensor in checkpoint.tensors {
            let bytes = tensor.bytes.count
            let elements = tensor.shape.dimensions.reduce(1, *)
            totalBytes += bytes
            let name = tensor.name
            if let n = logicalCount[name] {
                codeBytes += bytes
                parameterCount += n
                quantizedParameters += n
                quantizedCount += 1
                quantizable.append(n)
            } else if name.contains(infix) {
                nestedRoleBytes += bytes
            } else if companions.contains(name) {
                if name.hasSuffix(".absmax") && !name.hasSuffix(".nested_absmax") {
                    absmaxBytes += bytes
                } else {
                    nestedRoleBytes += bytes
                    if name.hasSuffix(".nested_absmax") { nestedAbsmaxBytes += bytes }
                }
            } else {
                parameterCount += elements
                unquantizedByDType[tensor.dtype.rawValue, default: 0] += bytes
                let isLinear = IndependentCount.linearSuffixes.contains { name.hasSuffix($0) }
                if !isAdapter && logicalCount.isEmpty && isLinear {
                    quantizable.append(elements)
                } else {
                    otherFloatParameters += elements  // every tensor of the golden set is floating point
                }
            }
        }
    }

    var fp32: Int { 4 * (quantizable.reduce(0, +) + otherFloatParameters) }
    var fp16: Int { 2 * (quantizable.reduce(0, +) + otherFloatParameters) }
    /// Spec §8: packed codes (n+1)/2, F32 absmax per 64, quant_map 64 B; the rest 2 bytes per element.
    var nf4: Int {
        quantizable.reduce(0) { sum, n in sum + (n + 1) / 2 + 4 * ((n + 63) / 64) + 64 } + 2 * otherFloatParameters
    }
    /// Spec §8 with double quantization: U8 absmax per 64, F32 per 256 blocks, quant_map 64 B + nested map 1024 B.
    var nf4dq: Int {
        quantizable.reduce(0) { sum, n in
            let blocks = (n + 63) / 64
            return sum + (n + 1) / 2 + blocks + 4 * ((blocks + 255) / 256) + 64 + 1024
        } + 2 * otherFloatParameters
    }
}

@Suite struct GoldenInspectionTests {
    static let folders = ["fp16", "nf4", "nf4-dq", "fp4-dq", "lora", "merged-fp16", "merged-nf4-dq"]

    @Test(arguments: folders)
    func `report numbers match an independent count of the raw tensor list`(folder: String) throws {
        let source = try ModelSource.open(Fixture.path("llama-tiny/\(folder)"))
        let report = try InspectionReport.inspect(source)
        let expected = try IndependentCount(source.checkpoint, isAdapter: source.isAdapter)

        #expect(report.summary.parameterCount == expected.parameterCount)
        #expect(report.summary.byteCount == expected.totalBytes)
        #expect(report.summary.storedTensorCount == source.checkpoint.tensors.count)
        #expect(report.summary.quantizedTensorCount == expected.quantizedCount)

        let memory = report.memory
        #expect(memory.codeByteCount == expected.codeBytes)
        #expect(memory.absmaxByteCount == expected.absmaxBytes)
        #expect(memory.nestedConstantByteCount == expected.nestedRoleBytes)
        #expect(memory.quantizedParameterCount == expected.quantizedParameters)
        #expect(memory.totalByteCount == expected.totalBytes)
        let byDType = Dictionary(uniqueKeysWithValues: memory.unquantized.map { ($0.dtype.rawValue, $0.byteCount) })
        #expect(byDType == expected.unquantizedByDType)
        #expect(
            memory.codeByteCount + memory.absmaxByteCount + memory.nestedConstantByteCount + memory.unquantizedByteCount
                == expected.totalBytes)

        if expected.quantizedParameters > 0 {
            let bits =
                Double((expected.codeBytes + expected.absmaxBytes + expected.nestedAbsmaxBytes) * 8)
                / Double(expected.quantizedParameters)
            #expect(memory.bitsPerQuantizedParameter == bits)
        } else {
            #expect(memory.bitsPerQuantizedParameter == nil)
        }

        #expect(memory.cost(.checkpoint)?.byteCount == expected.totalBytes)
        #expect(memory.cost(.fp32)?.byteCount == expected.fp32)
        #expect(memory.cost(.fp16)?.byteCount == expected.fp16)
        #expect(memory.cost(.nf4)?.byteCount == expected.nf4)
        #expect(memory.cost(.nf4DoubleQuant)?.byteCount == expected.nf4dq)
        let nf4dq = try #require(memory.cost(.nf4DoubleQuant))
        #expect(nf4dq.savingsVersusFP16Percent == (1 - Double(expected.nf4dq) / Double(expected.fp16)) * 100)
        #expect(nf4dq.factorVersusFP16 == Double(expected.fp16) / Double(expected.nf4dq))
    }

    @Test func `NF4 with double quantization costs about 4.127 bits per quantized parameter`() throws {
        let report = try InspectionReport.inspect(try ModelSource.open(Fixture.path("llama-tiny/nf4-dq")))
        let bits = try #require(report.memory.bitsPerQuantizedParameter)
        // 4 + 8/64 + 32/(64*256) = 4.126953125 for whole nested blocks; partial nested blocks add a little.
        #expect(bits >= 4.126953125 && bits < 4.1275)
    }

    @Test func `NF4 without double quantization costs exactly 4.5 bits per quantized parameter`() throws {
        let report = try InspectionReport.inspect(try ModelSource.open(Fixture.path("llama-tiny/nf4")))
        // Every llama-tiny weight has a multiple of 64 elements: 4 bits of code + 32/64 of absmax.
        #expect(report.memory.bitsPerQuantizedParameter == 4.5)
    }

    @Test func `the fp16 model and its 4-bit versions agree on parameters and on what is quantized`() throws {
        let fp16 = try InspectionReport.inspect(try ModelSource.open(Fixture.path("llama-tiny/fp16")))
        let nf4dq = try InspectionReport.inspect(try ModelSource.open(Fixture.path("llama-tiny/nf4-dq")))
        // 2 layers x (q 256x256 + k 128x256 + v 128x256 + o 256x256 + gate/up/down 3 x 688x256) = 1,449,984
        #expect(fp16.memory.costBasis.quantizableParameterCount == 1_449_984)
        #expect(nf4dq.memory.quantizedParameterCount == 1_449_984)
        #expect(fp16.memory.costBasis.quantizableTensorCount == 14)
        #expect(fp16.summary.parameterCount == nf4dq.summary.parameterCount)
        // The same formulas applied to the same tensors give the same estimates.
        #expect(fp16.memory.cost(.nf4DoubleQuant) == nf4dq.memory.cost(.nf4DoubleQuant))
        #expect(fp16.summary.tensorCount == 21)
        #expect(nf4dq.summary.tensorCount == 21)
    }

    @Test func `a 4-bit weight is one logical row with its byte split`() throws {
        let report = try InspectionReport.inspect(try ModelSource.open(Fixture.path("llama-tiny/nf4-dq")))
        let row = try #require(report.tensors.first { $0.name == "model.layers.0.mlp.down_proj.weight" })
        let q = try #require(row.fourBit)
        #expect(row.shape == [256, 688])
        #expect(row.parameterCount == 176_128)
        #expect(q.quantType == "nf4")
        #expect(q.blockSize == 64)
        #expect(q.isDoubleQuantized)
        #expect(q.storedShape == [88_064, 1])
        #expect(q.codeByteCount == 88_064)
        #expect(q.absmaxByteCount == 2_752)
        // nested_absmax 11 x 4 + quant_map 64 + nested_quant_map 1024 + 170-byte quant state
        #expect(q.nestedByteCount == 44 + 64 + 1024 + 170)
        #expect(!report.tensors.contains { $0.name.hasSuffix(".absmax") || $0.name.contains("quant_state") })
        // natural order: layer 0's tensors before layer 1's
        let names = report.tensors.map(\.name)
        #expect(
            names.firstIndex(of: "model.layers.1.mlp.down_proj.weight")! > names.firstIndex(
                of: "model.layers.0.self_attn.v_proj.weight")!)
    }

    @Test func `a PEFT adapter folder is reported as an adapter`() throws {
        let report = try InspectionReport.inspect(try ModelSource.open(Fixture.path("llama-tiny/lora")))
        let adapter = try #require(report.adapter)
        #expect(report.summary.kind == .adapter)
        #expect(adapter.peftType == "LORA")
        #expect(adapter.rank == 8)
        #expect(adapter.alpha == 16)
        #expect(adapter.scaling == 2)
        #expect(adapter.targetModules == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
        #expect(adapter.tensorRanks == [8])
        #expect(adapter.loraModuleCount == 14)
        // per layer: r * (in + out) summed over q 256+256, k 256+128, v 256+128, o 256+256, gate/up/down 3 x (256+688)
        let perLayer = 8 * ((256 + 256) + (256 + 128) + (256 + 128) + (256 + 256) + 3 * (256 + 688))
        #expect(adapter.trainableParameterCount == 2 * perLayer)
        #expect(adapter.loraParameterCount == 2 * perLayer)
        #expect(adapter.byteCount == 4 * 2 * perLayer)
        #expect(report.memory.costBasis.quantizableTensorCount == 0)
    }

    @Test func `the JSON document parses back with a schema version and the same numbers`() throws {
        let report = try InspectionReport.inspect(
            try ModelSource.open(Fixture.path("llama-tiny/nf4-dq")), training: TrainingMemoryOptions(rank: 8))
        let text = report.jsonText
        let root = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(root["schemaVersion"] as? Int == 1)
        let summary = try #require(root["summary"] as? [String: Any])
        #expect(summary["parameterCount"] as? Int == report.summary.parameterCount)
        let memory = try #require(root["memory"] as? [String: Any])
        #expect(memory["codeByteCount"] as? Int == report.memory.codeByteCount)
        #expect(memory["bitsPerQuantizedParameter"] as? Double == report.memory.bitsPerQuantizedParameter)
        let costs = try #require(memory["costs"] as? [[String: Any]])
        #expect(
            costs.map { $0["representation"] as? String } == ["checkpoint", "fp32", "fp16", "nf4", "nf4DoubleQuant"])
        let tensors = try #require(root["tensors"] as? [[String: Any]])
        #expect(tensors.count == 21)
        let training = try #require(root["training"] as? [String: Any])
        #expect((training["rows"] as? [Any])?.count == 4)
        #expect(root["adapter"] is NSNull)
        // keys are sorted at the top level
        let order = ["\"adapter\"", "\"memory\"", "\"schemaVersion\"", "\"summary\"", "\"tensors\"", "\"training\""]
            .map { text.range(of: "\n  " + $0)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil })
        #expect(order.compactMap { $0 } == order.compactMap { $0 }.sorted())
    }
}

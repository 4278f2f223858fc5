import NF4KitCore
import NF4KitMerge
import NF4KitTestSupport
import Testing

@Suite struct LoRAMergeMathTests {
    private func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test func `r=2 on a 3x4 weight gives the spec's worked example`() throws {
        let adapter = try makeAdapter(WorkedExample.config(), WorkedExample.adapterTensors())
        let result = try merged(
            base: [(WorkedExample.baseName, [3, 4], WorkedExample.w)], adapters: [adapter], name: WorkedExample.baseName
        )
        let spec: [Float] = [1.5, -1.0, 2.25, 2.0, 1.0, 2.0, -0.5, -1.25, 0.5, -1.5, 5.0, 2.0]
        #expect(result == spec)
        #expect(
            result
                == referenceLinear(
                    w: WorkedExample.w, a: WorkedExample.a, b: WorkedExample.b, out: 3, input: 4, rank: 2, scale: 2))
    }

    @Test func `rslora scales by alpha over the square root of r`() throws {
        let adapter = try makeAdapter(WorkedExample.config(", \"use_rslora\": true"), WorkedExample.adapterTensors())
        let result = try merged(
            base: [(WorkedExample.baseName, [3, 4], WorkedExample.w)], adapters: [adapter], name: WorkedExample.baseName
        )
        let scale = Float(4.0 / 2.0.squareRoot())
        let expected = referenceLinear(
            w: WorkedExample.w, a: WorkedExample.a, b: WorkedExample.b, out: 3, input: 4, rank: 2, scale: scale)
        #expect(close(result, expected))
        let spec: [Float] = [
            1.9142136, -1.0, 3.0784271, 2.0, 1.0, 2.8284271, -0.5, -2.0784271, 1.3284271, -2.3284271, 6.6568542,
            2.8284271,
        ]
        #expect(close(result, spec))
    }

    @Test func `rank and alpha patterns select per module with PEFT's suffix rule`() throws {
        // q_proj gets rank 4 from rank_pattern and alpha 16 from alpha_pattern; v_proj keeps r 2 and alpha 4.
        let config = """
            {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"^model.layers.0.self_attn.q_proj": 16}}
            """
        var generator = SeededGenerator(seed: 7)
        let qA = (0..<16).map { _ in Float.random(in: -1..<1, using: &generator) }
        let qB = (0..<12).map { _ in Float.random(in: -1..<1, using: &generator) }
        let vA = (0..<8).map { _ in Float.random(in: -1..<1, using: &generator) }
        let vB = (0..<6).map { _ in Float.random(in: -1..<1, using: &generator) }
        let base = (0..<12).map { _ in Float.random(in: -1..<1, using: &generator) }
        let adapter = try makeAdapter(
            config,
            [
                makeTensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", [4, 4], qA),
                makeTensor("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", [3, 4], qB),
                makeTensor("base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", [2, 4], vA),
                makeTensor("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", [3, 2], vB),
            ])
        let names = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight"]
        let baseEntries = names.map { ($0, [3, 4], base) }
        let q = try merged(base: baseEntries, adapters: [adapter], name: names[0])
        let v = try merged(base: baseEntries, adapters: [adapter], name: names[1])
        #expect(close(q, referenceLinear(w: base, a: qA, b: qB, out: 3, input: 4, rank: 4, scale: 16.0 / 4)))
        #expect(close(v, referenceLinear(w: base, a: vA, b: vB, out: 3, input: 4, rank: 2, scale: 4.0 / 2)))
    }

    @Test func `pattern keys match whole dotted suffixes only`() {
        #expect(AdapterConfig.patternMatches("q_proj", module: "model.layers.0.self_attn.q_proj"))
        #expect(!AdapterConfig.patternMatches("proj", module: "model.layers.0.self_attn.q_proj"))
        #expect(AdapterConfig.patternMatches("layers.0.self_attn.q_proj", module: "model.layers.0.self_attn.q_proj"))
        #expect(!AdapterConfig.patternMatches("layers.0.self_attn.q_proj", module: "model.layers.10.self_attn.q_proj"))
        #expect(
            AdapterConfig.patternMatches("^model.layers.0.self_attn.q_proj", module: "model.layers.0.self_attn.q_proj"))
        #expect(!AdapterConfig.patternMatches("^q_proj", module: "model.layers.0.self_attn.q_proj"))
        #expect(AdapterConfig.patternMatches("layers\\.[01]\\..*_proj", module: "model.layers.1.mlp.up_proj"))
    }

    @Test func `fan_in_fan_out base stored transposed gets the transposed delta`() throws {
        // GPT-2 Conv1D: the base holds Wᵀ [4, 3].
        var transposed = [Float](repeating: 0, count: 12)
        for o in 0..<3 { for i in 0..<4 { transposed[i * 3 + o] = WorkedExample.w[o * 4 + i] } }
        let adapter = try makeAdapter(
            WorkedExample.config(", \"fan_in_fan_out\": true"), WorkedExample.adapterTensors())
        let result = try merged(
            base: [(WorkedExample.baseName, [4, 3], transposed)], adapters: [adapter], name: WorkedExample.baseName)
        let spec: [Float] = [1.5, 1.0, 0.5, -1.0, 2.0, -1.5, 2.25, -0.5, 5.0, 2.0, -1.25, 2.0]
        #expect(result == spec)
    }

    @Test func `DoRA rescales each output row to its magnitude`() throws {
        var tensors = WorkedExample.adapterTensors()
        tensors.append(makeTensor("base_model.model.\(WorkedExample.module).lora_magnitude_vector", [3], [2, 3, 4]))
        let adapter = try makeAdapter(WorkedExample.config(", \"use_dora\": true"), tensors)
        let result = try merged(
            base: [(WorkedExample.baseName, [3, 4], WorkedExample.w)], adapters: [adapter], name: WorkedExample.baseName
        )
        // Independent: V = W + Δ, then m[o] / ‖V[o]‖ · V[o], in double.
        let v = referenceLinear(
            w: WorkedExample.w, a: WorkedExample.a, b: WorkedExample.b, out: 3, input: 4, rank: 2, scale: 2)
        var expected = v
        let m: [Double] = [2, 3, 4]
        for o in 0..<3 {
            let norm = (0..<4).map { Double(v[o * 4 + $0]) * Double(v[o * 4 + $0]) }.reduce(0, +).squareRoot()
            for i in 0..<4 { expected[o * 4 + i] = Float(m[o] / norm * Double(v[o * 4 + i])) }
        }
        #expect(close(result, expected))
        let spec: [Float] = [
            0.8549646, -0.5699764, 1.2824469, 1.1399528, 1.1493918, 2.2987836, -0.5746959, -1.4367397, 0.3563483,
            -1.0690449, 3.5634832, 1.4253932,
        ]
        #expect(close(result, spec))
    }

    @Test func `embedding LoRA adds the transposed product`() throws {
        let base: [Float] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
        let eA: [Float] = [1, 0, 0, 1, 0, 1, 1, 0]  // [2, 4]
        let eB: [Float] = [1, 0, 0, 1, 1, 1]  // [3, 2]
        let adapter = try makeAdapter(
            "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4}",
            [
                makeTensor("base_model.model.model.embed_tokens.lora_embedding_A", [2, 4], eA),
                makeTensor("base_model.model.model.embed_tokens.lora_embedding_B", [3, 2], eB),
            ])
        let result = try merged(
            base: [("model.embed_tokens.weight", [4, 3], base)], adapters: [adapter], name: "model.embed_tokens.weight")
        var expected = base
        for v in 0..<4 {
            for d in 0..<3 {
                var sum: Float = 0
                for k in 0..<2 { sum = sum + eB[d * 2 + k] * eA[k * 4 + v] }
                expected[v * 3 + d] = base[v * 3 + d] + 2 * sum
            }
        }
        #expect(result == expected)
        #expect(close(result, [2.0, 0.1, 2.2, 0.3, 2.4, 2.5, 0.6, 2.7, 2.8, 2.9, 1.0, 3.1]))
    }

    @Test func `DoRA on a fan_in_fan_out weight normalises each output column`() throws {
        var transposed = [Float](repeating: 0, count: 12)
        for o in 0..<3 { for i in 0..<4 { transposed[i * 3 + o] = WorkedExample.w[o * 4 + i] } }
        var tensors = WorkedExample.adapterTensors()
        tensors.append(makeTensor("base_model.model.\(WorkedExample.module).lora_magnitude_vector", [3], [2, 3, 4]))
        let adapter = try makeAdapter(WorkedExample.config(", \"use_dora\": true, \"fan_in_fan_out\": true"), tensors)
        let result = try merged(
            base: [(WorkedExample.baseName, [4, 3], transposed)], adapters: [adapter], name: WorkedExample.baseName)
        // The spec's DoRA result W'' [3, 4], stored transposed.
        let spec: [Float] = [
            0.8549646, -0.5699764, 1.2824469, 1.1399528, 1.1493918, 2.2987836, -0.5746959, -1.4367397, 0.3563483,
            -1.0690449, 3.5634832, 1.4253932,
        ]
        var expected = [Float](repeating: 0, count: 12)
        for o in 0..<3 { for i in 0..<4 { expected[i * 3 + o] = spec[o * 4 + i] } }
        #expect(close(result, expected))
    }

    @Test func `DoRA on an embedding normalises each embedding column`() throws {
        let base: [Float] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
        let eA: [Float] = [1, 0, 0, 1, 0, 1, 1, 0]
        let eB: [Float] = [1, 0, 0, 1, 1, 1]
        let m: [Float] = [1.5, 2.5, 0.5]
        let adapter = try makeAdapter(
            "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"use_dora\": true}",
            [
                makeTensor("base_model.model.model.embed_tokens.lora_embedding_A", [2, 4], eA),
                makeTensor("base_model.model.model.embed_tokens.lora_embedding_B", [3, 2], eB),
                makeTensor("base_model.model.model.embed_tokens.lora_magnitude_vector", [3], m),
            ])
        let result = try merged(
            base: [("model.embed_tokens.weight", [4, 3], base)], adapters: [adapter], name: "model.embed_tokens.weight")
        var v = base
        for row in 0..<4 {
            for d in 0..<3 { v[row * 3 + d] += 2 * ((0..<2).map { eB[d * 2 + $0] * eA[$0 * 4 + row] }.reduce(0, +)) }
        }
        var expected = v
        for d in 0..<3 {
            let norm = (0..<4).map { Double(v[$0 * 3 + d]) * Double(v[$0 * 3 + d]) }.reduce(0, +).squareRoot()
            for row in 0..<4 { expected[row * 3 + d] = Float(Double(m[d]) / norm * Double(v[row * 3 + d])) }
        }
        #expect(close(result, expected))
    }

    @Test func `zero B leaves the base unchanged bit for bit`() throws {
        var base = WorkedExample.w
        base[1] = -0.0
        let adapter = try makeAdapter(
            WorkedExample.config(), WorkedExample.adapterTensors(b: [Float](repeating: 0, count: 6)))
        let result = try merged(
            base: [(WorkedExample.baseName, [3, 4], base)], adapters: [adapter], name: WorkedExample.baseName)
        #expect(result.map(\.bitPattern) == base.map(\.bitPattern))
    }

    @Test func `several adapters merge as the weighted sum of their deltas`() throws {
        let first = try makeAdapter(WorkedExample.config(), WorkedExample.adapterTensors())
        let otherB: [Float] = [1, 1, -1, 0.5, 0.25, 2]
        let second = try makeAdapter(WorkedExample.config(), WorkedExample.adapterTensors(b: otherB))
        let result = try merged(
            base: [(WorkedExample.baseName, [3, 4], WorkedExample.w)], adapters: [first, second], weights: [0.5, -1.5],
            name: WorkedExample.baseName)
        let zero = [Float](repeating: 0, count: 12)
        let d1 = referenceLinear(w: zero, a: WorkedExample.a, b: WorkedExample.b, out: 3, input: 4, rank: 2, scale: 2)
        let d2 = referenceLinear(w: zero, a: WorkedExample.a, b: otherB, out: 3, input: 4, rank: 2, scale: 2)
        let expected = (0..<12).map { WorkedExample.w[$0] + 0.5 * d1[$0] - 1.5 * d2[$0] }
        #expect(close(result, expected))
    }

    @Test func `lora_B bias is scaled and added to the base bias`() throws {
        var tensors = WorkedExample.adapterTensors()
        tensors.append(makeTensor("base_model.model.\(WorkedExample.module).lora_B.bias", [3], [1, -2, 0.5]))
        let adapter = try makeAdapter(WorkedExample.config(", \"lora_bias\": true"), tensors)
        let base: [(String, [Int], [Float])] = [
            (WorkedExample.baseName, [3, 4], WorkedExample.w), (WorkedExample.module + ".bias", [3], [0.25, 0.5, 1]),
        ]
        let bias = try merged(base: base, adapters: [adapter], name: WorkedExample.module + ".bias")
        let expected: [Float] = [2.25, -3.5, 2]  // bias + 2 · [1, -2, 0.5]
        #expect(bias == expected)
    }

    @Test func `modules_to_save tensors replace the base values`() throws {
        let adapter = try makeAdapter(
            "{\"peft_type\": \"LORA\", \"modules_to_save\": [\"score\"]}",
            [makeTensor("base_model.model.score.modules_to_save.default.weight", [2, 2], [9, 8, 7, 6])])
        let result = try merged(
            base: [("score.weight", [2, 2], [1, 2, 3, 4])], adapters: [adapter], name: "score.weight")
        #expect(result == [9, 8, 7, 6])
    }

    @Test func `the kernel agrees with an f64 reference within f32 rounding on a wide tensor`() throws {
        var generator = SeededGenerator(seed: 11)
        let rows = 5
        let rank = 3
        let columns = 37
        let left = (0..<(rows * rank)).map { _ in Float.random(in: -1..<1, using: &generator) }
        let right = (0..<(rank * columns)).map { _ in Float.random(in: -1..<1, using: &generator) }
        var a = [Float](repeating: 0.5, count: rows * columns)
        left.withUnsafeBufferPointer { l in
            right.withUnsafeBufferPointer { r in
                a.withUnsafeMutableBufferPointer {
                    GEMMAccumulate.addScaledProduct(
                        left: l, right: r, rank: rank, columns: columns, scale: 0.75, weight: 1, into: $0,
                        rowRange: 0..<rows)
                }
            }
        }
        var expected = [Float](repeating: 0, count: rows * columns)
        for o in 0..<rows {
            for i in 0..<columns {
                var sum = 0.0
                for k in 0..<rank { sum += Double(left[o * rank + k]) * Double(right[k * columns + i]) }
                expected[o * columns + i] = Float(0.5 + 0.75 * sum)
            }
        }
        #expect(close(a, expected, tolerance: 1e-5))
    }

    /// The AVX2 + FMA kernel (C target) against the portable f64 emulation of a fused multiply-add: the same bits
    /// over the 32-wide, 8-wide and scalar column paths, with and without an adapter weight.
    @Test(
        .enabled(
            if: GEMMAccumulate.nativeFMAAvailable,
            "this CPU has no AVX2 + FMA, so the native merge kernel was not tested (only the portable one runs here)"),
        arguments: [Float(1), 0.3])
    func `the native and portable fused kernels give the same bits`(weight: Float) {
        var generator = SeededGenerator(seed: 23)
        let rows = 9
        let rank = 16
        let columns = 2 * 32 + 8 + 5
        let left = (0..<(rows * rank)).map { _ in Float(generator.nextNormal() * 0.02) }
        let right = (0..<(rank * columns)).map { _ in Float(generator.nextNormal() * 0.02) }
        let base = (0..<(rows * columns)).map { _ in Float(generator.nextNormal() * 0.05) }
        func run(native: Bool) -> [Float] {
            var out = base
            left.withUnsafeBufferPointer { l in
                right.withUnsafeBufferPointer { r in
                    out.withUnsafeMutableBufferPointer {
                        GEMMAccumulate.addScaledProduct(
                            left: l, right: r, rank: rank, columns: columns, scale: 2, weight: weight, into: $0,
                            rowRange: 1..<rows, native: native)
                    }
                }
            }
            return out
        }
        let native = run(native: true)
        #expect(native.map(\.bitPattern) == run(native: false).map(\.bitPattern))
        #expect(native[0..<columns] == base[0..<columns])  // row 0 is outside the range
    }
}

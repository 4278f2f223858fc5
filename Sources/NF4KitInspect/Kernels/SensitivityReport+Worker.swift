import NF4KitCore
import NF4KitQuant

/// Quantizes one tensor with every scheme and measures the error over f32 buffers; immutable, shared by the worker
/// threads of ``SensitivityReport/analyze(_:options:progress:)``.
struct Worker: Sendable {
    let schemes: [QuantizationScheme]
    let blocksize: Int
    let nf4: BlockQuantizer
    let fp4: BlockQuantizer

    func analyze(_ tensor: Tensor) -> SensitivityReport.TensorResult {
        let n = tensor.descriptor.elementCount
        var reference = [Float](repeating: 0, count: n)
        var decoded = [Float](repeating: 0, count: n)
        var results: [SensitivityReport.SchemeResult] = []
        tensor.bytes.withUnsafeBytes { raw in
            reference.withUnsafeMutableBufferPointer { FloatConversion.widen(raw, from: tensor.dtype, into: $0) }
            reference.withUnsafeBufferPointer { ref in
                decoded.withUnsafeMutableBufferPointer { out in
                    func record(_ scheme: QuantizationScheme) {
                        let error = ErrorStatistics.measure(reference: ref, decoded: UnsafeBufferPointer(out))
                        results.append(
                            .init(
                                scheme: scheme, tensorCount: 1, parameterCount: n,
                                byteCount: scheme.byteCount(elementCount: n, blocksize: blocksize), error: error))
                    }
                    var done = Set<QuantizationScheme>()
                    for scheme in schemes where !done.contains(scheme) && scheme.accepts(tensor.shape) {
                        switch scheme {
                        case .nf4, .nf4DoubleQuant, .fp4, .fp4DoubleQuant:
                            let isNF4 = scheme == .nf4 || scheme == .nf4DoubleQuant
                            let plain: QuantizationScheme = isNF4 ? .nf4 : .fp4
                            let double: QuantizationScheme = isNF4 ? .nf4DoubleQuant : .fp4DoubleQuant
                            let wanted = schemes.filter { $0 == plain || $0 == double }
                            fourBit(raw, tensor, quantizer: isNF4 ? nf4 : fp4, wanted: wanted, out: out) { record($0) }
                            done.formUnion(wanted)
                        case .int4:
                            let blocks = (n + blocksize - 1) / blocksize
                            var packed = [UInt8](repeating: 0, count: BlockQuantizer.packedByteCount(elementCount: n))
                            var absmax = [Float](repeating: 0, count: blocks)
                            packed.withUnsafeMutableBytes { p in
                                absmax.withUnsafeMutableBufferPointer { a in
                                    UniformInt4.quantize(ref, blocksize: blocksize, packedInto: p, absmaxInto: a)
                                    UniformInt4.dequantize(
                                        packed: UnsafeRawBufferPointer(p), absmax: UnsafeBufferPointer(a),
                                        blocksize: blocksize, into: out)
                                }
                            }
                            record(.int4)
                        case .q4_0, .q8_0, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs:
                            let format = scheme.ggmlType!
                            var blocks = [UInt8](repeating: 0, count: n / format.blockSize * format.typeSize)
                            blocks.withUnsafeMutableBytes { b in
                                GGMLBlockCodec.quantize(ref, as: format, into: b)
                                GGMLBlockCodec.dequantize(UnsafeRawBufferPointer(b), as: format, into: out)
                            }
                            record(scheme)
                        case .bf16:
                            var narrow = [UInt8](repeating: 0, count: 2 * n)
                            narrow.withUnsafeMutableBytes { b in
                                FloatConversion.narrow(ref, to: .bf16, into: b)
                                FloatConversion.widen(UnsafeRawBufferPointer(b), from: .bf16, into: out)
                            }
                            record(.bf16)
                        }
                        done.insert(scheme)
                    }
                }
            }
        }
        let order = Dictionary(uniqueKeysWithValues: schemes.enumerated().map { ($1, $0) })
        results.sort { order[$0.scheme, default: 0] < order[$1.scheme, default: 0] }
        return SensitivityReport.TensorResult(
            name: tensor.name, dtype: tensor.dtype, shape: tensor.shape,
            layerType: SensitivityReport.layerType(of: tensor.name),
            component: SensitivityReport.component(of: tensor.name), parameterCount: n,
            byteCount: tensor.descriptor.byteCount, schemes: results)
    }

    /// bitsandbytes 4-bit: quantize the stored values exactly as `convert` does, decode with the float32 absmax
    /// (plain) and with the double-quantized absmax (reconstructed as bitsandbytes does).
    private func fourBit(
        _ raw: UnsafeRawBufferPointer, _ tensor: Tensor, quantizer: BlockQuantizer, wanted: [QuantizationScheme],
        out: UnsafeMutableBufferPointer<Float>, record: (QuantizationScheme) -> Void
    ) {
        let n = tensor.descriptor.elementCount
        let blocks = quantizer.blockCount(elementCount: n)
        var packed = [UInt8](repeating: 0, count: BlockQuantizer.packedByteCount(elementCount: n))
        var absmax = [Float](repeating: 0, count: blocks)
        packed.withUnsafeMutableBytes { p in
            absmax.withUnsafeMutableBufferPointer { a in
                quantizer.quantizeBlocks(
                    0..<blocks, of: raw, dtype: tensor.dtype, elementCount: n, packedInto: p, absmaxInto: a)
            }
        }
        let table = NF4Codebook.table(for: quantizer.quantType)
        func decode(_ scales: [Float]) {
            packed.withUnsafeBytes { p in
                scales.withUnsafeBufferPointer { a in
                    table.withUnsafeBufferPointer { t in
                        for block in 0..<blocks {
                            let scale = a[block]
                            for i in (block * blocksize)..<min(n, (block + 1) * blocksize) {
                                let byte = p[i >> 1]
                                let code = i & 1 == 0 ? byte >> 4 : byte & 0x0F
                                out[i] = t[Int(code)] * scale
                            }
                        }
                    }
                }
            }
        }
        for scheme in wanted {
            if scheme == .nf4 || scheme == .fp4 {
                decode(absmax)
            } else {
                decode(Self.doubleQuantized(absmax))
            }
            record(scheme)
        }
    }

    /// The absmax values as bitsandbytes reads them back after double quantization (CPU rules, offset with one thread).
    static func doubleQuantized(_ absmax: [Float]) -> [Float] {
        let m = absmax.count
        var codes = [UInt8](repeating: 0, count: m)
        var nested = [Float](repeating: 0, count: DoubleQuantization.nestedBlockCount(blockCount: m))
        var result = [Float](repeating: 0, count: m)
        absmax.withUnsafeBufferPointer { a in
            let offset = DoubleQuantization.offset(of: a)
            codes.withUnsafeMutableBufferPointer { c in
                nested.withUnsafeMutableBufferPointer { nb in
                    DoubleQuantization.quantize(absmax: a, offset: offset, profile: .cpu, codes: c, nestedAbsmax: nb)
                }
            }
            codes.withUnsafeBufferPointer { c in
                nested.withUnsafeBufferPointer { nb in
                    NF4Codebook.dynamic8Bit.withUnsafeBufferPointer { t in
                        result.withUnsafeMutableBufferPointer { r in
                            DoubleQuantization.reconstruct(
                                codes: c, nestedAbsmax: nb, offset: offset, table: t, into: r)
                        }
                    }
                }
            }
        }
        return result
    }
}

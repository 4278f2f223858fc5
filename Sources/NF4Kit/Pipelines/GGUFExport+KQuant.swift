import NF4KitCore
import NF4KitFormats
import NF4KitQuant

extension GGUFExport {
    /// Turns the F16 plan of a model export into what `llama-quantize F16.gguf OUT TYPE` writes from it, so that one
    /// pass gives the bytes of convert_hf_to_gguf.py `--outtype f16` followed by llama-quantize.
    ///
    /// Each tensor gets the type ``LlamaQuantMix`` gives it and the items take llama-quantize's order; a tensor that
    /// changes type is rounded to f16 first (llama-quantize reads the F16 file). The metadata is the F16 file's with
    /// `general.quantization_version` and `general.file_type` moved to the end, as ``GGUFRequantize`` writes them.
    static func applyQuantMix(
        _ fileType: LlamaFileType, config: LlamaModelConfig, items: inout [Item], metadata: inout [GGUFMetadataEntry]
    ) {
        let model = LlamaQuantMix.Model(
            architecture: metadata.first { $0.key == "general.architecture" }?.value.stringValue ?? "llama",
            layerCount: config.blockCount, headCount: config.headCount,
            kvHeadCount: config.headCountKV)
        let byName = Dictionary(uniqueKeysWithValues: items.map { ($0.ggufName, $0) })
        let plan = LlamaQuantMix.plan(
            fileType: fileType, model: model,
            tensors: items.map {
                LlamaQuantMix.Tensor(name: $0.ggufName, dimensions: Array($0.shape.reversed()), type: $0.type)
            })
        items = plan.map { assignment in
            var item = byName[assignment.tensor.name]!
            if assignment.type != item.type {
                item.roundsToHalf = item.type == .f16
                item.type = assignment.type
            }
            return item
        }
        metadata = GGUFRequantize.requantizedMetadata(metadata, fileType: fileType)
    }

    /// Rounds every value to the nearest f16 (ties to even), in place: 4096 values at a time through the bulk
    /// conversions, which look the f16 table up once per call (per value, the lazy global's check cost more than the
    /// rounding).
    static func roundToHalf(_ values: UnsafeMutableBufferPointer<Float>) {
        let chunk = 4096
        withUnsafeTemporaryAllocation(byteCount: chunk * 2, alignment: 16) { halves in
            var start = 0
            while start < values.count {
                let end = min(start + chunk, values.count)
                let part = UnsafeMutableBufferPointer(rebasing: values[start..<end])
                let bytes = UnsafeMutableRawBufferPointer(rebasing: halves[0..<(part.count * 2)])
                FloatConversion.narrow(UnsafeBufferPointer(part), to: .f16, into: bytes)
                FloatConversion.widen(UnsafeRawBufferPointer(bytes), from: .f16, into: part)
                start = end
            }
        }
    }
}

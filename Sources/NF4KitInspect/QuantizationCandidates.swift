import NF4KitCore

// Which tensors of an unquantized checkpoint `convert` would quantize, judged from names and shapes alone
// (nf4-bitsandbytes.md §6.4: Linear weights; not embeddings, norms or the output head). Internal so that it can be
// replaced by NF4KitQuant's selection rule at integration.
enum QuantizationCandidates {
    /// Module names (last path component) that are never quantized even when 2-D:
    /// output heads and embeddings of the common Hugging Face and GGUF layouts.
    static let excludedModules: Set<String> = [
        "lm_head", "output", "score", "classifier", "qa_outputs", "wte", "wpe", "shared",
    ]

    /// Whether `descriptor` is the 2-D floating-point `.weight` of a Linear layer that quantization would replace.
    static func isCandidate(_ descriptor: TensorDescriptor) -> Bool {
        guard descriptor.shape.rank == 2, descriptor.dtype.isFloatingPoint, descriptor.dtype != .c64,
            descriptor.name.hasSuffix(".weight")
        else { return false }
        let module = descriptor.name.dropLast(".weight".count)
        let last = module.split(separator: ".").last.map(String.init) ?? String(module)
        if excludedModules.contains(last) { return false }
        let lowered = last.lowercased()
        return !lowered.contains("embed") && !lowered.contains("embd") && !lowered.contains("norm")
    }
}

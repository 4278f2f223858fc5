import NF4KitCore
public import NF4KitFormats

/// What every pipeline needs to create its output: the files it reads, and the index's parameter count.
extension ModelSource {
    /// Every file and folder this source reads: the path given, each weight file, and a folder's side files.
    /// An output may be none of them, lie inside none of the folders, and contain none of them (``OutputGuard``).
    public var inputPaths: [String] {
        var paths = [path] + checkpoint.files
        if isFolder {
            let folder = path.hasSuffix("/") ? path : path + "/"
            let configs = (config != nil ? ["config.json"] : []) + (adapterConfig != nil ? ["adapter_config.json"] : [])
            paths += (weightFileNames + sideFileNames + configs).map { folder + $0 }
        }
        return paths
    }
}

enum OutputPlanning {
    /// The index's `metadata.total_parameters` as transformers writes it: `model.num_parameters()`, which counts
    /// the elements of every saved parameter, a bitsandbytes 4-bit weight as twice its packed bytes
    /// (`Params4bit.numel() * 2`), and none of the quant-state tensors (`.absmax`, `.quant_map`, ...), which are
    /// not parameters.
    static func transformersParameterCount(_ tensors: [(name: String, dtype: DType, shape: Shape)]) -> Int {
        let marker = ".quant_state.bitsandbytes__"
        var quantized = Set<String>()
        for tensor in tensors {
            if let range = tensor.name.firstRange(of: marker) {
                quantized.insert(String(tensor.name[..<range.lowerBound]))
            }
        }
        var total = 0
        for tensor in tensors {
            let count = tensor.shape.checkedElementCount ?? 0
            if quantized.contains(tensor.name) {
                total += 2 * count
            } else if let dot = tensor.name.lastIndex(of: "."), quantized.contains(owner(tensor.name, dot, quantized)) {
                continue
            } else {
                total += count
            }
        }
        return total
    }

    /// The quantized weight a member name belongs to (`W.absmax`, `W.quant_state.bitsandbytes__nf4` -> `W`).
    private static func owner(_ name: String, _ lastDot: String.Index, _ quantized: Set<String>) -> String {
        var end = lastDot
        while true {
            let prefix = String(name[..<end])
            if quantized.contains(prefix) { return prefix }
            guard let dot = name[..<end].lastIndex(of: ".") else { return "" }
            end = dot
        }
    }

    /// `path` without trailing slashes.
    static func trimmed(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}

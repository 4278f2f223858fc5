public import NF4KitCore

/// The `model.safetensors.index.json` of a sharded checkpoint: which file holds each tensor.
public struct SafetensorsIndex: Sendable {
    /// Tensor name to shard file name (relative to the index's folder), in the index's order.
    public var weightMap: [(name: String, file: String)]
    /// `metadata.total_size` if present (informational: producers disagree on what it counts).
    public var totalSize: Int?
    /// `metadata.total_parameters` if present.
    public var totalParameters: Int?

    public init(weightMap: [(name: String, file: String)], totalSize: Int?, totalParameters: Int?) {
        self.weightMap = weightMap
        self.totalSize = totalSize
        self.totalParameters = totalParameters
    }

    /// Parses and validates an index file.
    ///
    /// Shard names must be plain relative names with the extension `expectedExtension` (no absolute paths, no
    /// `..`, no separators of either kind): huggingface_hub refuses the same, since an index is untrusted.
    public static func read(
        path: String, expectedExtension: String = ".safetensors"
    ) throws(CheckpointError) -> SafetensorsIndex {
        let json = try StrictJSON.parse(try FileAccess.readSmallFile(path), file: path, what: "index")
        guard case .object(let top) = json, case .object(let map)? = top["weight_map"] else {
            throw CheckpointError(.malformedHeader, "the index has no 'weight_map' object", file: path, byteOffset: 0)
        }
        var weightMap: [(name: String, file: String)] = []
        for (name, value) in map {
            guard case .string(let file) = value else {
                throw CheckpointError(
                    .malformedHeader, "weight_map entry for '\(name)' is not a file name", file: path, tensor: name)
            }
            try validateShardName(file, expectedExtension: expectedExtension, index: path, tensor: name)
            weightMap.append((name, file))
        }
        let metadata = top["metadata"]?.objectValue
        return SafetensorsIndex(
            weightMap: weightMap, totalSize: metadata?["total_size"]?.intValue,
            totalParameters: metadata?["total_parameters"]?.intValue)
    }

    static func validateShardName(
        _ file: String, expectedExtension: String, index: String, tensor: String
    ) throws(CheckpointError) {
        let badPath =
            file.isEmpty || file.hasPrefix("/") || file.contains("\\") || file.contains("/") || file == ".."
            || file == "."
            || file.contains(":") || file.utf8.contains(0)
        guard !badPath else {
            throw CheckpointError(
                .refused, "weight_map sends '\(tensor)' to '\(file)', which is not a plain file name beside the index",
                file: index, tensor: tensor)
        }
        guard file.hasSuffix(expectedExtension) else {
            throw CheckpointError(
                .refused, "weight_map sends '\(tensor)' to '\(file)', which is not a \(expectedExtension) file",
                file: index, tensor: tensor)
        }
    }

    /// The index as transformers 5 writes it: `json.dumps(indent=2, sort_keys=True)` plus a final newline.
    public func jsonBytes() -> [UInt8] {
        var metadata = JSONObject()
        if let totalParameters { metadata["total_parameters"] = .integer(totalParameters) }
        if let totalSize { metadata["total_size"] = .integer(totalSize) }
        let top = JSONObject([
            ("metadata", .object(metadata)),
            ("weight_map", .object(JSONObject(weightMap.map { ($0.name, JSONValue.string($0.file)) }))),
        ])
        return JSONWriter.pythonPretty.bytes(.object(top)) + [0x0A]
    }

    /// Reads every shard named by the index at `path` as one checkpoint (shard by shard, each in data order).
    ///
    /// Each shard must hold exactly the tensors the index assigns to it.
    public static func readCheckpoint(indexPath path: String) throws(CheckpointError) -> Checkpoint {
        let index = try read(path: path)
        let folder = parentFolder(path)
        var files: [String] = []
        var byFile: [String: Set<String>] = [:]
        for (name, file) in index.weightMap {
            if byFile[file] == nil { files.append(file) }
            byFile[file, default: []].insert(name)
        }
        var tensors: [Tensor] = []
        var metadata: [String: String] = [:]
        var paths: [String] = []
        for file in files {
            let shardPath = folder + file
            let shard = try SafetensorsReader.read(path: shardPath)
            let expected = byFile[file]!
            let actual = Set(shard.tensors.map(\.name))
            if let missing = expected.subtracting(actual).sorted().first {
                throw CheckpointError(
                    .malformedHeader, "the index puts '\(missing)' in this shard, but the shard has no such tensor",
                    file: shardPath, tensor: missing)
            }
            if let extra = actual.subtracting(expected).sorted().first {
                throw CheckpointError(
                    .malformedHeader, "the shard holds '\(extra)', which the index assigns elsewhere or not at all",
                    file: shardPath, tensor: extra)
            }
            if paths.isEmpty { metadata = shard.metadata }
            paths.append(shardPath)
            tensors += shard.tensors
        }
        return Checkpoint(format: .safetensors, files: paths, tensors: tensors, metadata: metadata)
    }

    static func parentFolder(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[...slash])
    }
}

/// How a checkpoint is split into shards (huggingface_hub's greedy rule).
package struct ShardPlan: Sendable {
    /// One output file: its name and tensor names in state-dict order.
    package struct Shard: Sendable {
        package var fileName: String
        package var tensorNames: [String]
    }
    package var shards: [Shard]

    /// Splits `tensors` (in state-dict order, with their byte sizes) into shards of at most `maxShardBytes`.
    ///
    /// A tensor larger than the limit gets a shard of its own; a single shard is named `prefix.safetensors`
    /// (no index needed), several are `prefix-0000i-of-0000N.safetensors`.
    package init(
        tensors: [(name: String, byteCount: Int)], maxShardBytes: Int, prefix: String = "model",
        fileExtension: String = "safetensors"
    ) {
        var groups: [[String]] = []
        var current: [String] = []
        var currentSize = 0
        for tensor in tensors {
            if tensor.byteCount > maxShardBytes {
                groups.append([tensor.name])
                continue
            }
            if currentSize + tensor.byteCount > maxShardBytes, !current.isEmpty {
                groups.append(current)
                current = []
                currentSize = 0
            }
            current.append(tensor.name)
            currentSize += tensor.byteCount
        }
        if !current.isEmpty || groups.isEmpty { groups.append(current) }
        if groups.count == 1 {
            shards = [Shard(fileName: "\(prefix).\(fileExtension)", tensorNames: groups[0])]
        } else {
            let total = groups.count
            shards = groups.enumerated().map { i, names in
                Shard(
                    fileName: "\(prefix)-\(ShardPlan.pad(i + 1))-of-\(ShardPlan.pad(total)).\(fileExtension)",
                    tensorNames: names)
            }
        }
    }

    /// Whether an index file is needed.
    package var isSharded: Bool { shards.count > 1 }

    private static func pad(_ n: Int) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// Parses a size like `5GB`, `30mb`, `500MiB`, `2GiB`, `1.5GB` or a plain byte count.
    ///
    /// Units in any case, as transformers' `max_shard_size` takes them: KB/MB/GB/TB are decimal, KiB/MiB/GiB/TiB
    /// binary, `B` or no unit means bytes. (transformers reads a lower-case final `b`, as in `5Gb` or `30mb`, as bits;
    /// nobody means a shard size in bits, so here it is bytes.) `nil` for anything else, zero, or more than 9e18 bytes.
    package static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingPrefixAndSuffixSpaces().lowercased()
        if let bytes = Int(trimmed) { return bytes > 0 ? bytes : nil }
        let units: [(String, Double)] = [
            ("tib", 1_099_511_627_776), ("gib", 1_073_741_824), ("mib", 1_048_576), ("kib", 1024),
            ("tb", 1e12), ("gb", 1e9), ("mb", 1e6), ("kb", 1e3), ("b", 1),
        ]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = String(trimmed.dropLast(suffix.count)).trimmingPrefixAndSuffixSpaces()
            guard let first = number.first, first.isNumber, let value = Double(number), value.isFinite,
                value * factor >= 1, value * factor < 9e18
            else { return nil }
            return Int(value * factor)
        }
        return nil
    }
}

extension String {
    func trimmingPrefixAndSuffixSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

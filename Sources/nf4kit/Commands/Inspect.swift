import ArgumentParser
import NF4Kit

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors, memory breakdown and training memory of a checkpoint or LoRA adapter.",
        discussion: """
            Reads headers only (plus the small quant-state JSON of bitsandbytes 4-bit weights). \
            The report goes to standard output; --json writes one JSON document with "schemaVersion" instead. \
            Training memory counts weights, trainable parameters, gradients and AdamW states, not activations; \
            see docs/inspect.md. \
            --sensitivity quantizes every weight that convert would quantize with each scheme (in memory, using all \
            cores) and reports the error and bytes per scheme; --what-if sizes models by their shapes (Llama 1/2/3/3.1/3.2, Mistral 7B, \
            Qwen2.5 or any Llama-style config.json) for inference in FP16, 8-bit and 4-bit and for full, LoRA and QLoRA \
            training, and says which 16, 24, 40, 48 and 80 GB GPUs each fits (PATH is then optional and may be a \
            config.json); see docs/sensitivity.md. JSON Schemas of every --json document: docs/schemas/.
            """ + "\n\n" + ExitCodes.helpText
    )

    @Argument(
        help: """
            The checkpoint to inspect: a file, a Hugging Face model folder or a PEFT adapter folder \
            (with --what-if: optional, or a config.json).
            """)
    var path: String?

    @Flag(help: "List every tensor; a 4-bit weight is one row with its quant type, block size and byte split.")
    var tensors = false

    @Flag(help: "Write the report as one JSON document (sorted keys, raw numbers, schemaVersion).")
    var json = false

    @Option(name: .customLong("lora-rank"), help: "Estimate training memory for LoRA of this rank.")
    var loraRank: Int?

    @Option(
        name: .customLong("lora-targets"),
        help: "Comma-separated module names that get LoRA (default: every Linear layer except lm_head).")
    var loraTargets: String?

    @Option(
        name: .customLong("lora-dtype"),
        help: "Element type of the LoRA parameters, any case: \(NumberFormat.spellings(LoRADTypeArgument.accepted)).")
    var loraDType = LoRADTypeArgument(.f32)

    @Flag(help: "Quantize each weight in memory with every scheme and report the error and bytes per scheme.")
    var sensitivity = false

    @Option(
        help:
            "Comma-separated schemes for --sensitivity: nf4, fp4 (each also with double quant), int4, q4_0, q8_0, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, bf16."
    )
    var schemes: String?

    @Option(help: "Block size of NF4, FP4 and INT4 for --sensitivity.")
    var blocksize: BlockSizeArgument?

    @Option(help: "Worker threads for --sensitivity (default: every core).")
    var threads: Int?

    @Flag(help: "Draw no progress line for --sensitivity (none is drawn anyway when stderr is not a terminal).")
    var noProgress = false

    @Option(
        name: .customLong("what-if"),
        help: """
            Comma-separated models to size: a size (1b, 3b, 7b, 8b, 13b, 70b, 405b, ...), a model name (llama2-70b, \
            llama3.1-8b, mistral-7b, qwen2.5-7b, ...) or the path of a config.json (LoRA rank: --lora-rank, default 16).
            """)
    var whatIf: String?

    /// LoRA rank of the what-if report when --lora-rank is not given.
    static let defaultWhatIfRank = 16

    func validate() throws {
        if path == nil && whatIf == nil { throw ValidationError("Missing expected argument '<path>'.") }
        if !sensitivity && (schemes != nil || blocksize != nil || threads != nil) {
            throw ValidationError("--schemes, --blocksize and --threads need --sensitivity.")
        }
        if sensitivity && (path == nil || isConfigFile) {
            throw ValidationError("--sensitivity needs a checkpoint to quantize.")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if let schemes, let message = Self.failure({ _ = try QuantizationScheme.parseList(schemes) }) {
            throw ValidationError("--schemes: " + message)
        }
        if let whatIf, let message = Self.failure({ _ = try WhatIfReport.requests(in: whatIf) }) {
            throw ValidationError("--what-if: " + message)
        }
        if whatIf != nil && (loraTargets != nil || loraDType.format != .f32) {
            throw ValidationError(
                "--what-if puts LoRA on every Linear layer in F32; --lora-targets and --lora-dtype do not apply.")
        }
        if loraRank == nil && (loraTargets != nil || loraDType.format != .f32) {
            throw ValidationError("--lora-targets and --lora-dtype need --lora-rank.")
        }
        if let loraRank, loraRank < 1 || loraRank > TrainingMemoryOptions.maxRank {
            throw ValidationError("--lora-rank must be between 1 and \(TrainingMemoryOptions.maxRank).")
        }
        if let loraTargets, parsedTargets(loraTargets).isEmpty {
            throw ValidationError("--lora-targets names no module.")
        }
    }

    func run() async throws {
        try await reportingErrors {
            if sensitivity || whatIf != nil {
                try runAnalyses()
                return
            }
            guard let path else { return }
            let source = try ModelSource.open(path, gguf: .stored)  // inspect reads headers only; nothing is decoded
            var training: TrainingMemoryOptions?
            if let loraRank {
                training = TrainingMemoryOptions(
                    rank: loraRank, targets: loraTargets.map(parsedTargets),
                    adapterDType: loraDType.dtype)
            }
            let report = try InspectionReport.inspect(source, training: training)
            if json {
                // Streamed in pieces of about 1 MiB: a header of millions of tensors never becomes one string.
                report.writeJSON { print($0, terminator: "") }
            } else {
                print(InspectionTextRenderer(report: report, showTensors: tensors).render(), terminator: "")
            }
        }
    }

    /// The message of the error `body` throws, or `nil`.
    private static func failure(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as CheckpointError {
            return error.message + "."
        } catch {
            return "\(error)"
        }
    }

    /// Whether PATH is a bare `config.json` (a file whose name ends in `.json`).
    private var isConfigFile: Bool {
        guard let path else { return false }
        return path.hasSuffix(".json") && !FileAccess.isDirectory(path)
    }

    /// --sensitivity and/or --what-if: their sections only (text), or one JSON document with both.
    private func runAnalyses() throws {
        var sensitivityReport: SensitivityReport?
        var whatIfReport: WhatIfReport?
        var source: ModelSource?
        if let path, !isConfigFile { source = try ModelSource.open(path) }
        if sensitivity, let source {
            guard !source.isAdapter else {
                throw CheckpointError(
                    .invalidArgument, "--sensitivity quantizes a base model, and this is a LoRA adapter",
                    file: source.path)
            }
            let options = SensitivityOptions(
                schemes: try schemes.map(QuantizationScheme.parseList) ?? QuantizationScheme.defaultSchemes,
                blocksize: blocksize?.value ?? 64, threads: threads ?? max(1, FileAccess.processorCount))
            let renderer = ProgressRenderer(enabled: !noProgress, label: "sensitivity")
            sensitivityReport = try SensitivityReport.analyze(
                source.checkpoint, options: options, progress: renderer.analysisCallback)
        }
        if let whatIf {
            let rank = loraRank ?? Self.defaultWhatIfRank
            var models: [WhatIfReport.Model] = []
            if let source {
                guard !source.isAdapter else {
                    throw CheckpointError(
                        .invalidArgument, "--what-if sizes a base model, and this is a LoRA adapter", file: source.path)
                }
                models.append(
                    try WhatIfReport.model(
                        label: Self.label(source.path), checkpoint: source.checkpoint, loraRank: rank))
            } else if let path {
                let architecture = try LlamaArchitecture(config: try ModelSource.readJSONObject(path), file: path)
                models.append(
                    try WhatIfReport.model(label: Self.label(path), architecture: architecture, loraRank: rank))
            }
            for request in try WhatIfReport.requests(in: whatIf) {
                switch request {
                case .preset(let label, let preset):
                    models.append(try WhatIfReport.model(label: label, preset: preset, loraRank: rank))
                case .config(let configPath):
                    let file = FileAccess.isDirectory(configPath) ? configPath + "/config.json" : configPath
                    let architecture = try LlamaArchitecture(config: try ModelSource.readJSONObject(file), file: file)
                    models.append(try WhatIfReport.model(label: configPath, architecture: architecture, loraRank: rank))
                }
            }
            whatIfReport = WhatIfReport(loraRank: rank, models: models)
        }
        if json {
            let document = JSONValue.object(
                JSONObject([
                    (key: "schemaVersion", value: .integer(1)),
                    (key: "path", value: path.map(JSONValue.string) ?? .null),
                    (key: "sensitivity", value: sensitivityReport?.jsonValue ?? .null),
                    (key: "whatIf", value: whatIfReport?.jsonValue ?? .null),
                ]))
            print(JSONWriter(indent: 2, sortKeys: true, itemSeparator: ",", keySeparator: ": ").string(document))
            return
        }
        var lines: [String] = []
        if let path { lines += ["path  \(path)", ""] }
        if let sensitivityReport {
            lines += SensitivityTextRenderer(report: sensitivityReport, showTensors: tensors).render()
        }
        if let whatIfReport {
            if !lines.isEmpty && sensitivityReport != nil { lines.append("") }
            lines += WhatIfTextRenderer(report: whatIfReport).render()
        }
        print(lines.joined(separator: "\n"))
    }

    /// The last path component, for table rows.
    private static func label(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed.split(separator: "/").last.map(String.init) ?? String(trimmed)
    }

    private func parsedTargets(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

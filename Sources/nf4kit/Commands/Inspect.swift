import ArgumentParser
import NF4Kit

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors, memory breakdown and training memory of a checkpoint or LoRA adapter.",
        discussion: """
            Reads headers only (plus the small quant-state JSON of bitsandbytes 4-bit weights). \
            The report goes to standard output; --json writes one JSON document with "schemaVersion" instead. \
            Training memory counts weights, trainable parameters, gradients and AdamW states, not activations; \
            see docs/inspect.md.
            """
    )

    @Argument(help: "The checkpoint to inspect: a file, a Hugging Face model folder or a PEFT adapter folder.")
    var path: String

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

    @Option(name: .customLong("lora-dtype"), help: "Element type of the LoRA parameters: f32 or bf16.")
    var loraDType: String = "f32"

    func validate() throws {
        if loraRank == nil && (loraTargets != nil || loraDType != "f32") {
            throw ValidationError("--lora-targets and --lora-dtype need --lora-rank.")
        }
        if let loraRank, loraRank < 1 || loraRank > TrainingMemoryOptions.maxRank {
            throw ValidationError("--lora-rank must be between 1 and \(TrainingMemoryOptions.maxRank).")
        }
        if LoRAParameterDType(rawValue: loraDType) == nil {
            throw ValidationError("--lora-dtype must be f32 or bf16.")
        }
        if let loraTargets, parsedTargets(loraTargets).isEmpty {
            throw ValidationError("--lora-targets names no module.")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let source = try ModelSource.openAny(path)
            var training: TrainingMemoryOptions?
            if let loraRank {
                training = TrainingMemoryOptions(
                    rank: loraRank, targets: loraTargets.map(parsedTargets),
                    adapterDType: LoRAParameterDType(rawValue: loraDType) ?? .f32)
            }
            let report = try InspectionReport.inspect(source, training: training)
            let text = json ? report.jsonText : InspectionTextRenderer(report: report, showTensors: tensors).render()
            print(text, terminator: "")
        }
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

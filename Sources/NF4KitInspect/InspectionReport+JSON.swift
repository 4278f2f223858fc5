public import NF4KitCore

extension InspectionReport {
    /// The report as one JSON document: camelCase keys, raw byte and element counts (no units), `schemaVersion`.
    ///
    /// Absent values (`bitsPerQuantizedParameter` without 4-bit weights, `adapter` for a model, `training` without
    /// options) are `null`. docs/inspect.md lists every field.
    public var jsonValue: JSONValue { JSONValue(members: jsonMembers) }

    /// The JSON text: sorted keys, 2-space indent, UTF-8, ending in a newline.
    public var jsonText: String { InspectionReport.jsonWriter.string(jsonValue) + "\n" }

    /// Writes ``jsonText`` to `sink` in pieces of about `threshold` UTF-8 bytes, making one tensor row at a time,
    /// so a header of millions of tensors never becomes one tree or one string.
    public func writeJSON(flushingEvery threshold: Int = 1 << 20, to sink: (String) throws -> Void) rethrows {
        try InspectionReport.jsonWriter.writeObject(jsonMembers, flushingEvery: threshold, to: sink)
        try sink("\n")
    }

    private static let jsonWriter = JSONWriter(indent: 2, sortKeys: true, itemSeparator: ",", keySeparator: ": ")

    /// The document's members, the tensor rows made on demand: the one field list both ``jsonValue`` and
    /// ``writeJSON(flushingEvery:to:)`` write.
    private var jsonMembers: [(key: String, value: JSONPiece)] {
        let rows = tensors
        return [
            ("schemaVersion", .value(.integer(InspectionReport.schemaVersion))),
            ("summary", .value(summaryJSON)),
            ("tensors", .elements(count: rows.count) { InspectionReport.json(rows[$0]) }),
            ("memory", .value(memoryJSON)),
            ("adapter", .value(adapter.map(InspectionReport.json(_:)) ?? .null)),
            ("gguf", .value(gguf?.jsonValue ?? .null)),
            ("training", .value(training.map(InspectionReport.json(_:)) ?? .null)),
        ]
    }

    private var summaryJSON: JSONValue {
        object([
            ("path", .string(summary.path)),
            ("format", .string(summary.format)),
            ("kind", .string(summary.kind.rawValue)),
            ("files", .array(summary.files.map(JSONValue.string))),
            ("fileByteCount", .integer(summary.fileByteCount)),
            ("architecture", summary.architecture.map(JSONValue.string) ?? .null),
            ("storedTensorCount", .integer(summary.storedTensorCount)),
            ("tensorCount", .integer(summary.tensorCount)),
            ("parameterCount", .integer(summary.parameterCount)),
            ("byteCount", .integer(summary.byteCount)),
            ("quantizedTensorCount", .integer(summary.quantizedTensorCount)),
            ("quantTypes", .array(summary.quantTypes.map(JSONValue.string))),
            ("blockSizes", .array(summary.blockSizes.map { .integer($0) })),
            ("doubleQuantizedTensorCount", .integer(summary.doubleQuantizedTensorCount)),
        ])
    }

    private static func json(_ row: TensorRow) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(row.name)),
            ("dtype", .string(row.dtype.rawValue)),
            ("shape", shape(row.shape)),
            ("parameterCount", .integer(row.parameterCount)),
            ("byteCount", .integer(row.byteCount)),
        ]
        if let q = row.fourBit {
            members.append(
                (
                    "fourBit",
                    object([
                        ("quantType", .string(q.quantType)),
                        ("blockSize", .integer(q.blockSize)),
                        ("doubleQuantized", .bool(q.isDoubleQuantized)),
                        ("weightDType", .string(q.weightDType)),
                        ("storedShape", shape(q.storedShape)),
                        ("codeByteCount", .integer(q.codeByteCount)),
                        ("absmaxByteCount", .integer(q.absmaxByteCount)),
                        ("nestedByteCount", .integer(q.nestedByteCount)),
                        ("nestedBlockSize", q.nestedBlockSize.map { .integer($0) } ?? .null),
                        ("nestedOffset", q.nestedOffset.map(JSONValue.double) ?? .null),
                    ])
                ))
        } else {
            members.append(("fourBit", .null))
        }
        return object(members)
    }

    private var memoryJSON: JSONValue {
        let m = memory
        return object([
            ("quantizedTensorCount", .integer(m.quantizedTensorCount)),
            ("quantizedParameterCount", .integer(m.quantizedParameterCount)),
            ("codeByteCount", .integer(m.codeByteCount)),
            ("absmaxByteCount", .integer(m.absmaxByteCount)),
            ("nestedAbsmaxByteCount", .integer(m.nestedAbsmaxByteCount)),
            ("codeMapByteCount", .integer(m.codeMapByteCount)),
            ("quantStateByteCount", .integer(m.quantStateByteCount)),
            ("nestedConstantByteCount", .integer(m.nestedConstantByteCount)),
            ("quantizedByteCount", .integer(m.quantizedByteCount)),
            ("unquantizedByteCount", .integer(m.unquantizedByteCount)),
            ("totalByteCount", .integer(m.totalByteCount)),
            (
                "unquantized",
                .array(
                    m.unquantized.map { usage in
                        object(
                            [
                                ("dtype", .string(usage.dtype.rawValue)),
                                ("tensorCount", .integer(usage.tensorCount)),
                                ("parameterCount", .integer(usage.parameterCount)),
                                ("byteCount", .integer(usage.byteCount)),
                            ] + (usage.ggmlType.map { [("ggmlType", JSONValue.string($0))] } ?? []))
                    })
            ),
            ("bitsPerQuantizedParameter", m.bitsPerQuantizedParameter.map(JSONValue.double) ?? .null),
            (
                "bitsPerQuantizedParameterWithTables",
                m.bitsPerQuantizedParameterWithTables.map(JSONValue.double) ?? .null
            ),
            (
                "costBasis",
                object([
                    ("fromFourBitWeights", .bool(m.costBasis.fromFourBitWeights)),
                    ("quantizableTensorCount", .integer(m.costBasis.quantizableTensorCount)),
                    ("quantizableParameterCount", .integer(m.costBasis.quantizableParameterCount)),
                    ("otherFloatParameterCount", .integer(m.costBasis.otherFloatParameterCount)),
                    ("nonFloatByteCount", .integer(m.costBasis.nonFloatByteCount)),
                    ("blockSize", .integer(m.costBasis.blockSize)),
                    ("nestedBlockSize", .integer(m.costBasis.nestedBlockSize)),
                ])
            ),
            (
                "costs",
                .array(
                    m.costs.map { cost in
                        object([
                            ("representation", .string(cost.representation.rawValue)),
                            ("byteCount", .integer(cost.byteCount)),
                            ("savingsVersusFP16Percent", cost.savingsVersusFP16Percent.map(JSONValue.double) ?? .null),
                            ("factorVersusFP16", cost.factorVersusFP16.map(JSONValue.double) ?? .null),
                        ])
                    })
            ),
        ])
    }

    private static func json(_ a: AdapterSummary) -> JSONValue {
        object([
            ("peftType", a.peftType.map(JSONValue.string) ?? .null),
            ("rank", .integer(a.rank)),
            ("alpha", .double(a.alpha)),
            ("scaling", .double(a.scaling)),
            ("usesRSLoRA", .bool(a.usesRSLoRA)),
            ("usesDoRA", .bool(a.usesDoRA)),
            ("targetModules", .array(a.targetModules.map(JSONValue.string))),
            ("targetModulesIsRegex", .bool(a.targetModulesIsRegex)),
            ("baseModel", a.baseModel.map(JSONValue.string) ?? .null),
            ("taskType", a.taskType.map(JSONValue.string) ?? .null),
            ("tensorRanks", .array(a.tensorRanks.map { .integer($0) })),
            ("loraModuleCount", .integer(a.loraModuleCount)),
            ("loraModuleNames", .array(a.loraModuleNames.map(JSONValue.string))),
            ("loraParameterCount", .integer(a.loraParameterCount)),
            ("trainableParameterCount", .integer(a.trainableParameterCount)),
            ("byteCount", .integer(a.byteCount)),
        ])
    }

    private static func json(_ t: TrainingMemory) -> JSONValue {
        object([
            ("rank", .integer(t.options.rank)),
            ("targets", t.options.targets.map { .array($0.map(JSONValue.string)) } ?? .null),
            ("adapterDType", .string(t.options.adapterDType.rawValue)),
            ("targetModuleCount", .integer(t.targets.count)),
            ("loraParameterCount", .integer(t.loraParameterCount)),
            ("fullParameterCount", .integer(t.fullParameterCount)),
            (
                "rows",
                .array(
                    t.rows.map { row in
                        object([
                            ("method", .string(row.method.rawValue)),
                            ("trainableParameterCount", .integer(row.trainableParameterCount)),
                            ("weightByteCount", .integer(row.weightByteCount)),
                            ("trainableByteCount", .integer(row.trainableByteCount)),
                            ("gradientByteCount", .integer(row.gradientByteCount)),
                            ("optimizerStateByteCount", .integer(row.optimizerStateByteCount)),
                            ("optimizerState8BitByteCount", .integer(row.optimizerState8BitByteCount)),
                            ("totalByteCount", .integer(row.totalByteCount)),
                            ("total8BitByteCount", .integer(row.total8BitByteCount)),
                        ])
                    })
            ),
        ])
    }

    private static func shape(_ shape: Shape) -> JSONValue { .array(shape.dimensions.map { .integer($0) }) }

    private static func object(_ members: [(String, JSONValue)]) -> JSONValue {
        .object(JSONObject(members.map { (key: $0.0, value: $0.1) }))
    }

    private func object(_ members: [(String, JSONValue)]) -> JSONValue { InspectionReport.object(members) }
}

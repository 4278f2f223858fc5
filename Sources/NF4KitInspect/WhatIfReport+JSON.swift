public import NF4KitCore

extension WhatIfReport {
    /// The report as JSON: raw byte counts, GPU sizes in GiB. docs/sensitivity.md lists every field.
    public var jsonValue: JSONValue {
        jsonObject([
            ("schemaVersion", .integer(WhatIfReport.schemaVersion)),
            ("loraRank", .integer(loraRank)),
            ("gpuSizesGiB", .array(WhatIfReport.gpuSizesGiB.map { .integer($0) })),
            ("models", .array(models.map(WhatIfReport.json(_:)))),
        ])
    }

    private static func json(_ model: Model) -> JSONValue {
        let architecture: JSONValue = model.architecture.map { a in
            jsonObject([
                ("hiddenSize", .integer(a.hidden)),
                ("intermediateSize", .integer(a.intermediate)),
                ("layers", .integer(a.layers)),
                ("heads", .integer(a.heads)),
                ("kvHeads", .integer(a.kvHeads)),
                ("vocabularySize", .integer(a.vocabulary)),
                ("tiedEmbeddings", .bool(a.tiedEmbeddings)),
            ])
        } ?? .null
        return jsonObject([
            ("label", .string(model.label)),
            ("architecture", architecture),
            ("parameterCount", .integer(model.parameterCount)),
            ("quantizableParameterCount", .integer(model.quantizableParameterCount)),
            ("loraParameterCount", .integer(model.loraParameterCount)),
            (
                "scenarios",
                .array(
                    model.scenarios.map { s in
                        jsonObject([
                            ("setup", .string(s.setup.rawValue)),
                            ("weightByteCount", .integer(s.weightByteCount)),
                            ("trainingByteCount", .integer(s.trainingByteCount)),
                            ("weightsFitGiB", .array(s.weightsFitGiB.map { .integer($0) })),
                            ("trainingFitsGiB", .array(s.trainingFitsGiB.map { .integer($0) })),
                        ])
                    })
            ),
        ])
    }
}

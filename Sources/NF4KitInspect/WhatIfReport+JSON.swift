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
        let architecture: JSONValue =
            model.architecture.map { a in
                jsonObject([
                    ("hiddenSize", .integer(a.hidden)),
                    ("intermediateSize", .integer(a.intermediate)),
                    ("layers", .integer(a.layers)),
                    ("heads", .integer(a.heads)),
                    ("kvHeads", .integer(a.kvHeads)),
                    ("vocabularySize", .integer(a.vocabulary)),
                    ("tiedEmbeddings", .bool(a.tiedEmbeddings)),
                    ("attentionBias", .bool(a.attentionBias)),
                ])
            } ?? .null
        return jsonObject([
            ("label", .string(model.label)),
            ("publishedModel", model.publishedModel.map(JSONValue.string) ?? .null),
            ("architecture", architecture),
            ("parameterCount", .integer(model.parameterCount)),
            ("quantizableParameterCount", .integer(model.quantizableParameterCount)),
            ("loraParameterCount", .integer(model.loraParameterCount)),
            (
                "fits",
                .array(
                    model.fits.map { f in
                        jsonObject([
                            ("use", .string(f.use.rawValue)),
                            ("byteCount", .integer(f.byteCount)),
                            ("fitsGiB", .array(f.fitsGiB.map { .integer($0) })),
                        ])
                    })
            ),
        ])
    }
}

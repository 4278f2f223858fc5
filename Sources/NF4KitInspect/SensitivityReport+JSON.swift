public import NF4KitCore

extension SensitivityReport {
    /// The report as JSON: camelCase keys, raw counts; an infinite SNR (no error) is `null`. docs/sensitivity.md
    /// lists every field.
    public var jsonValue: JSONValue {
        jsonObject([
            ("schemaVersion", .integer(SensitivityReport.schemaVersion)),
            ("blocksize", .integer(blocksize)),
            ("schemes", .array(schemes.map { .string($0.rawValue) })),
            ("tensors", .array(tensors.map(SensitivityReport.json(_:)))),
            ("byLayerType", .array(byLayerType.map(SensitivityReport.json(_:)))),
            ("byComponent", .array(byComponent.map(SensitivityReport.json(_:)))),
            ("model", SensitivityReport.json(model)),
        ])
    }

    private static func json(_ tensor: TensorResult) -> JSONValue {
        jsonObject([
            ("name", .string(tensor.name)),
            ("dtype", .string(tensor.dtype.rawValue)),
            ("shape", .array(tensor.shape.dimensions.map { .integer($0) })),
            ("layerType", .string(tensor.layerType)),
            ("component", .string(tensor.component.rawValue)),
            ("parameterCount", .integer(tensor.parameterCount)),
            ("byteCount", .integer(tensor.byteCount)),
            ("schemes", .array(tensor.schemes.map(json(_:)))),
        ])
    }

    private static func json(_ aggregate: Aggregate) -> JSONValue {
        jsonObject([
            ("label", .string(aggregate.label)),
            ("tensorCount", .integer(aggregate.tensorCount)),
            ("parameterCount", .integer(aggregate.parameterCount)),
            ("byteCount", .integer(aggregate.byteCount)),
            ("schemes", .array(aggregate.schemes.map(json(_:)))),
        ])
    }

    private static func json(_ result: SchemeResult) -> JSONValue {
        let e = result.error
        return jsonObject([
            ("scheme", .string(result.scheme.rawValue)),
            ("tensorCount", .integer(result.tensorCount)),
            ("parameterCount", .integer(result.parameterCount)),
            ("byteCount", .integer(result.byteCount)),
            ("bitsPerParameter", finite(result.bitsPerParameter)),
            ("rmse", finite(e.rootMeanSquaredError)),
            ("maxAbsError", finite(e.maxAbsoluteError)),
            ("snrDb", finite(e.signalToNoiseDecibels)),
            ("relativeFrobeniusError", finite(e.relativeFrobeniusError)),
            ("sumSquaredError", finite(e.sumSquaredError)),
            ("sumSquaredReference", finite(e.sumSquaredReference)),
        ])
    }
}

/// A finite number, or `null` (JSON has no infinity or NaN); shared by the sensitivity and what-if JSON.
func finite(_ value: Double) -> JSONValue { value.isFinite ? .double(value) : .null }

func jsonObject(_ members: [(String, JSONValue)]) -> JSONValue {
    .object(JSONObject(members.map { (key: $0.0, value: $0.1) }))
}

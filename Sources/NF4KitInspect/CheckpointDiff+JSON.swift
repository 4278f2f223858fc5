public import NF4KitCore

extension CheckpointDiff {
    /// The comparison as one JSON document: `schemaVersion` 1, raw numbers, `snrDb` null when there is no error.
    public func jsonValue(a: String, b: String) -> JSONValue {
        func number(_ x: Double) -> JSONValue { x.isFinite ? .double(x) : .null }
        func statistics(_ s: ErrorStatistics) -> [(key: String, value: JSONValue)] {
            [
                ("maxAbsError", number(s.maxAbsoluteError)), ("relativeError", number(s.relativeFrobeniusError)),
                ("rmse", number(s.rootMeanSquaredError)), ("snrDb", number(s.signalToNoiseDecibels)),
            ]
        }
        let tensors: [JSONValue] = rows.map { row in
            var members: [(key: String, value: JSONValue)] = [
                ("dtypeA", .string(row.dtypeA)), ("dtypeB", .string(row.dtypeB)),
                ("elementCount", .integer(row.elementCount)),
                ("equalCount", .integer(row.equalCount)), ("name", .string(row.name)),
                ("shapeA", .array(row.shapeA.dimensions.map { .integer($0) })),
                ("shapeB", .array(row.shapeB.dimensions.map { .integer($0) })),
                ("status", .string(row.status.rawValue)),
            ]
            if let s = row.statistics { members += statistics(s) }
            return .object(JSONObject(members))
        }
        let identical = rows.filter(\.isIdentical).count
        let summary: [(key: String, value: JSONValue)] =
            [
                ("comparedElements", .integer(overall.elementCount)), ("identicalTensors", .integer(identical)),
                ("tensorsInBoth", .integer(rows.count)),
            ] + statistics(overall)
        return .object(
            JSONObject([
                ("a", .string(a)), ("b", .string(b)), ("onlyInA", .array(onlyInA.map { .string($0) })),
                ("onlyInB", .array(onlyInB.map { .string($0) })), ("schemaVersion", .integer(1)),
                ("summary", .object(JSONObject(summary))), ("tensors", .array(tensors)),
            ]))
    }
}

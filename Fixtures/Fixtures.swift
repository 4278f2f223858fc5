import Foundation

/// Committed test files, reached by their path below `Fixtures/files`.
public enum Fixture {
    /// The path of a fixture file or folder, e.g. `Fixture.path("llama-tiny/fp16")`.
    public static func path(_ relative: String) -> String {
        guard let root = Bundle.module.resourceURL?.appendingPathComponent("files") else {
            preconditionFailure("Fixture bundle has no resources")
        }
        return root.appendingPathComponent(relative).path
    }
}

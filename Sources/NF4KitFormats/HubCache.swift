public import NF4KitCore

/// The local Hugging Face Hub cache, read the way `huggingface_hub` lays it out, offline.
///
/// A model `org/name` lives in `ROOT/models--org--name/`: `refs/<revision>` holds the commit hash a branch or tag
/// points at (`refs/main` by default), and `snapshots/<commit>/` is the model folder (its files are links into
/// `blobs/`). ROOT is `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `HF_HOME/hub`, else
/// `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`, as `huggingface_hub` decides it.
///
/// Nothing here touches the network: a model that is not in the cache is reported with the places looked at.
/// ``ModelSource`` resolves a path that does not exist through ``resolve(_:)``, so every command accepts Hub ids;
/// a local path that exists always wins.
public struct HubCache: Sendable, Hashable {
    /// The cache folder (`.../huggingface/hub`).
    public var root: String
    /// What chose ``root``, for messages: `HF_HUB_CACHE`, `HF_HOME`, ... or `the default`.
    public var origin: String

    /// A cache rooted at `root`.
    public init(root: String, origin: String = "given") {
        self.root = root
        self.origin = origin
    }

    /// The cache the environment names (see the type's discussion).
    public static var current: HubCache {
        func variable(_ name: String) -> String? {
            guard let value = FileAccess.environment(name), !value.isEmpty else { return nil }
            return expandingHome(value)
        }
        if let hub = variable("HF_HUB_CACHE") { return HubCache(root: hub, origin: "HF_HUB_CACHE") }
        if let hub = variable("HUGGINGFACE_HUB_CACHE") { return HubCache(root: hub, origin: "HUGGINGFACE_HUB_CACHE") }
        if let home = variable("HF_HOME") { return HubCache(root: home + "/hub", origin: "HF_HOME") }
        if let cache = variable("XDG_CACHE_HOME") {
            return HubCache(root: cache + "/huggingface/hub", origin: "XDG_CACHE_HOME")
        }
        return HubCache(root: expandingHome("~/.cache/huggingface/hub"), origin: "the default")
    }

    /// A model named by its Hub id, `org/name`, with an optional `@revision` (branch, tag or commit hash).
    public struct ModelID: Sendable, Hashable, CustomStringConvertible {
        /// The owner (`TinyLlama`).
        public var organization: String
        /// The repository name (`TinyLlama-1.1B-Chat-v1.0`).
        public var name: String
        /// The branch, tag or commit after `@`, or `nil` for `main`.
        public var revision: String?

        /// Parses `org/name` or `org/name@revision`; `nil` for anything that is not a Hub id.
        ///
        /// Both parts follow the Hub's rules for repository ids: letters, digits, `-`, `_` and `.`, at most 96
        /// characters in all, not starting or ending with `-` or `.`, without `--` or `..`. A revision is not empty
        /// and has no `..` component (it names a file under `refs/`).
        public init?(_ text: String) {
            var id = Substring(text)
            var revision: String?
            if let at = text.firstIndex(of: "@") {
                id = text[..<at]
                let rev = String(text[text.index(after: at)...])
                let parts = rev.split(separator: "/", omittingEmptySubsequences: false)
                guard !rev.isEmpty, !rev.hasPrefix("/"),
                    !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
                    !rev.contains("\0")
                else { return nil }
                revision = rev
            }
            let parts = id.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, id.count <= 96, parts.allSatisfy(Self.isValidPart) else { return nil }
            organization = String(parts[0])
            name = String(parts[1])
            self.revision = revision
        }

        /// `org/name`, without the revision.
        public var repository: String { organization + "/" + name }
        /// `org/name[@revision]`.
        public var description: String { repository + (revision.map { "@" + $0 } ?? "") }
        /// The cache folder's name, `models--org--name`.
        public var folderName: String { "models--\(organization)--\(name)" }

        private static func isValidPart(_ part: Substring) -> Bool {
            guard let first = part.first, let last = part.last else { return false }
            let allowed = part.allSatisfy {
                $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".")
            }
            return allowed && !"-.".contains(first) && !"-.".contains(last) && !part.contains("--")
                && !part.contains("..")
        }
    }

    /// The snapshot folder of `model` in this cache.
    ///
    /// A revision of 40 hexadecimal digits names the commit itself; any other revision (default `main`) is looked
    /// up in `refs/`, whose file holds the commit.
    /// - Throws: ``CheckpointError`` `.notFound` saying where it looked (and which snapshots are there, if any);
    ///   `.malformedHeader` for a `refs/` file that does not hold a commit hash.
    public func snapshot(of model: ModelID) throws(CheckpointError) -> String {
        let folder = root + "/" + model.folderName
        let revision = model.revision ?? "main"
        let commit: String
        if Self.isCommitHash(revision) {
            commit = revision
        } else {
            let ref = folder + "/refs/" + revision
            guard FileAccess.exists(ref), !FileAccess.isDirectory(ref) else {
                throw notFound(model, looked: ref, folder: folder)
            }
            let text = String(decoding: try FileAccess.readSmallFile(ref, limit: 4096), as: UTF8.self)
            let trimmed = text.trimmingWhitespace
            guard Self.isCommitHash(trimmed) else {
                throw CheckpointError(
                    .malformedHeader, "expected the commit hash (40 hexadecimal digits) of revision '\(revision)'",
                    file: ref, byteOffset: 0)
            }
            commit = trimmed
        }
        let snapshot = folder + "/snapshots/" + commit
        guard FileAccess.isDirectory(snapshot) else { throw notFound(model, looked: snapshot, folder: folder) }
        return snapshot
    }

    /// The snapshot folder for `path` when it is a Hub id (`org/name[@revision]`) and no local file or folder of
    /// that name exists; `nil` when it is not a Hub id.
    ///
    /// - Throws: ``CheckpointError`` `.notFound` when `path` is a Hub id that is not in ``current``, saying where it
    ///   looked.
    public static func resolve(_ path: String) throws(CheckpointError) -> String? {
        guard !FileAccess.exists(path), let model = ModelID(path) else { return nil }
        return try current.snapshot(of: model)
    }

    /// The Hub repository (`org/name`) of a path inside a cache folder (`.../models--org--name/snapshots/<commit>`,
    /// or a file in it), or `nil`.
    public static func repository(containing path: String) -> String? {
        let components = path.split(separator: "/")
        for (i, component) in components.enumerated() where component.hasPrefix("models--") {
            guard i + 1 < components.count, components[i + 1] == "snapshots" else { continue }
            let parts = component.dropFirst("models--".count).split(separator: "-", omittingEmptySubsequences: false)
            // `org--name`: the Hub forbids `--` inside either part, so the first empty piece separates them.
            guard let gap = parts.firstIndex(of: ""), gap > 0, gap + 1 < parts.count else { continue }
            let org = parts[..<gap].joined(separator: "-")
            let name = parts[(gap + 1)...].joined(separator: "-")
            if let model = ModelID(org + "/" + name) { return model.repository }
        }
        return nil
    }

    private func notFound(_ model: ModelID, looked: String, folder: String) -> CheckpointError {
        var message =
            "no such file or folder, and Hub model '\(model)' is not in the Hugging Face cache: looked for \(looked) "
            + "(cache \(root), from \(origin); set HF_HUB_CACHE or HF_HOME to use another; nf4kit never downloads)"
        if let snapshots = try? FileAccess.list(folder + "/snapshots"), !snapshots.isEmpty {
            message += "; snapshots there: \(snapshots.joined(separator: ", ")) (name one with @<commit>)"
        }
        return CheckpointError(.notFound, message, file: model.description)
    }

    private static func isCommitHash(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    private static func expandingHome(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        return (FileAccess.environment("HOME") ?? "") + path.dropFirst()
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and line breaks.
    fileprivate var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}

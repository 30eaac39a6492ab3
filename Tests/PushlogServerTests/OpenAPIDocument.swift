import Foundation
import PushlogCore
import Yams

/// docs/openapi.yaml read as plain YAML: its operations, their examples, and a check of a JSON
/// answer against a schema of the document (the subset of JSON Schema the document uses).
struct OpenAPIDocument {
    struct Failed: Error, CustomStringConvertible { var description: String }

    struct Operation {
        var method: String
        var path: String
        var spec: [String: Any]
        /// Parameters declared on the path item, shared by its operations.
        var sharedParameters: [Any]

        var id: String { spec["operationId"] as? String ?? "\(method) \(path)" }
        var parameters: [[String: Any]] { (sharedParameters + (spec["parameters"] as? [Any] ?? [])).compactMap { $0 as? [String: Any] } }
    }

    let root: [String: Any]

    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml")

    static func load() throws -> OpenAPIDocument {
        guard let root = try Yams.load(yaml: try String(contentsOf: url, encoding: .utf8)) as? [String: Any] else {
            throw Failed(description: "\(url.path) is not a YAML map")
        }
        return OpenAPIDocument(root: root)
    }

    var operations: [Operation] {
        let paths = root["paths"] as? [String: Any] ?? [:]
        return paths.keys.sorted().flatMap { path -> [Operation] in
            let item = paths[path] as? [String: Any] ?? [:]
            return ["get", "put", "post", "delete", "patch", "head", "options"].compactMap { method in
                (item[method] as? [String: Any]).map {
                    Operation(method: method.uppercased(), path: path, spec: $0, sharedParameters: item["parameters"] as? [Any] ?? [])
                }
            }
        }
    }

    /// True when the operation's security (or the document's) requires a scheme: an empty
    /// requirement `{}` among the alternatives makes it optional.
    func needsToken(_ op: Operation) -> Bool {
        let requirements = (op.spec["security"] ?? root["security"]) as? [Any] ?? []
        return !requirements.isEmpty && !requirements.contains { ($0 as? [String: Any])?.isEmpty ?? false }
    }

    /// The object a `$ref` (`#/components/...`) points to, followed until it is not a reference.
    func resolve(_ node: Any) throws -> [String: Any] {
        guard var object = node as? [String: Any] else { throw Failed(description: "not an object: \(node)") }
        while let ref = object["$ref"] as? String {
            var target: Any = root
            for part in ref.dropFirst(2).split(separator: "/") {
                guard let next = (target as? [String: Any])?[String(part)] else { throw Failed(description: "dangling $ref \(ref)") }
                target = next
            }
            guard let resolved = target as? [String: Any] else { throw Failed(description: "$ref \(ref) is not an object") }
            object = resolved
        }
        return object
    }

    /// What in `value` disagrees with `schema`, one line each; empty when it conforms. Understands
    /// `$ref`, `allOf`, `oneOf`, `type`, `const`, `enum`, `required`, `properties`, `items`, `minimum`.
    func problems(_ value: JSON, _ schemaNode: Any, at path: String = "body") throws -> [String] {
        let schema = try resolve(schemaNode)
        var found: [String] = []
        for part in schema["allOf"] as? [Any] ?? [] { found += try problems(value, part, at: path) }
        if let alternatives = schema["oneOf"] as? [Any] {
            let matching = try alternatives.filter { try problems(value, $0, at: path).isEmpty }.count
            if matching != 1 { found.append("\(path): matches \(matching) of the \(alternatives.count) alternatives of oneOf") }
        }
        if let type = schema["type"] {
            let allowed = (type as? [Any] ?? [type]).compactMap { $0 as? String }
            if !allowed.contains(where: { Self.isType(value, $0) }) { found.append("\(path): \(value.typeName) is not \(allowed)") }
        }
        if let constant = schema["const"] as? String, value.stringValue != constant { found.append("\(path): is not \(constant)") }
        if let options = schema["enum"] as? [Any], let s = value.stringValue, !options.contains(where: { $0 as? String == s }) {
            found.append("\(path): \(s) is not one of \(options)")
        }
        if let minimum = schema["minimum"] as? Int, let i = value.intValue, i < minimum { found.append("\(path): \(i) < \(minimum)") }
        if case .object(let object) = value {
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { found.append("\(path).\(key): is missing") }
            for (key, sub) in schema["properties"] as? [String: Any] ?? [:] {
                if let v = object[key] { found += try problems(v, sub, at: "\(path).\(key)") }
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (i, item) in items.enumerated() { found += try problems(item, itemSchema, at: "\(path)[\(i)]") }
        }
        return found
    }

    static func isType(_ value: JSON, _ type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("integer", .int), ("number", .int), ("number", .double),
             ("string", .string), ("array", .array), ("object", .object): true
        default: false
        }
    }

    /// A YAML value (an example) as JSON.
    static func json(_ yaml: Any) throws -> JSON {
        switch yaml {
        case is NSNull: return .null
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let d as Double: return .double(d)
        case let s as String: return .string(s)
        case let a as [Any]: return .array(try a.map(json))
        case let o as [String: Any]: return .object(try o.mapValues(json))
        default: throw Failed(description: "cannot turn \(type(of: yaml)) into JSON")
        }
    }
}

import ArgumentParser

/// A mistyped subcommand gets a suggestion, as a mistyped flag does from ArgumentParser:
/// `pushlog stat` says `Unknown command 'stat'. Did you mean 'stats'?` (exit 64) instead of
/// ArgumentParser's bare "Unexpected argument".
enum CommandSuggestion {
    /// The usage error, in ArgumentParser's words, for `arguments` (without the program name)
    /// when a word in a subcommand's place names none; nil when every such word names one
    /// (ArgumentParser then parses as usual).
    static func check(_ arguments: [String], root: any ParsableCommand.Type) -> String? {
        var command = root
        var path = [root._commandName]
        func usage(_ message: String) -> String {
            let name = path.joined(separator: " ")
            return "Error: \(message)\nUsage: \(name) <subcommand>\n  See '\(name) --help' for more information.\n"
        }
        for word in arguments {
            // Options end the subcommand path (and no group takes any of its own).
            if word.hasPrefix("-") { return nil }
            let configuration = command.configuration
            guard !configuration.subcommands.isEmpty else { return nil }
            let named = configuration.subcommands.map { ($0._commandName, $0) }
            if let next = named.first(where: { $0.0 == word || $0.1.configuration.aliases.contains(word) })?.1 {
                command = next
                path.append(next._commandName)
                continue
            }
            // `help` is ArgumentParser's own subcommand.
            if ObjectIdentifier(command) == ObjectIdentifier(root) && word == "help" { return nil }
            // A group with a default subcommand may take the word as that subcommand's argument:
            // only a near miss of a subcommand's name is taken for one (`cursors rewnid`).
            if configuration.defaultSubcommand != nil {
                guard let closest = closest(to: word, among: named.map(\.0)) else { return nil }
                return usage("Unknown command '\(word)'. Did you mean '\(closest)'?")
            }
            return usage(message(for: word, among: named.map(\.0)))
        }
        return nil
    }

    static func message(for word: String, among names: [String]) -> String {
        if let closest = closest(to: word, among: names) { return "Unknown command '\(word)'. Did you mean '\(closest)'?" }
        return "Unknown command '\(word)'. The commands are: \(names.joined(separator: ", "))."
    }

    /// The name nearest to `word`, within ArgumentParser's distance for flag suggestions.
    static func closest(to word: String, among names: [String]) -> String? {
        names.map { ($0, editDistance($0, word)) }.filter { $0.1 < 4 }.min { $0.1 < $1.1 }?.0
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var row = [i + 1]
            for (j, y) in b.enumerated() {
                row.append(Swift.min(previous[j + 1] + 1, row[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = row
        }
        return previous[b.count]
    }
}

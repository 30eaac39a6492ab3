/// Numbers given on the command line. A bad one is refused saying what was wanted; ArgumentParser
/// puts the words after its own: `The value 'x' is invalid for '--from <pos>': wants a log
/// position, a whole number from 1`.
enum Number {
    struct Wanted: Error, CustomStringConvertible {
        let description: String
    }

    /// A count of things, such as a batch size: a whole number from 1.
    static func count(_ text: String) throws -> Int {
        guard let n = Int(text), n > 0 else { throw Wanted(description: "wants a whole number from 1, such as 10000") }
        return n
    }

    /// A log position: a whole number from 1 (positions start at 1).
    static func position(_ text: String) throws -> UInt64 {
        guard let n = UInt64(text), n > 0 else {
            throw Wanted(description: "wants a log position, a whole number from 1 (positions start at 1)")
        }
        return n
    }
}

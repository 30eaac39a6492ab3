import Testing
@testable import PushlogMail

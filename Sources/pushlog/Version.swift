/// What `pushlog --version` prints: bumped with each release of the contract.
let pushlogVersion = "0.2.0"

//go:build chaos

package chaos

// full is true under `make chaos` (-tags chaos): every scenario at full size.
const full = true

//go:build !chaos

package chaos

// full is false in `make test`: scenarios run with loads of a few thousand reports so
// that the suite fits CI's time; `make chaos` (-tags chaos) runs them at full size.
const full = false

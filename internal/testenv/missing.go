package testenv

import (
	"fmt"
	"testing"
)

// Missing stops t because a component it needs is not here, such as a browser, a real
// MySQL or a Linux host; format and args say which. Under MONITOR_TEST_REAL=1 the test
// fails, because a run that demands the real components must never pass without one.
// Otherwise it is skipped with the same message. Call it only for a missing component,
// never to leave out a slow test.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Real() {
		t.Fatalf("MONITOR_TEST_REAL=1 but %s", msg)
	}
	t.Skip(msg)
}
